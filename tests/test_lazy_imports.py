"""The deferred import of lancedb's REST client package: it must save the work it claims to,
and leave lancedb (and the REST client itself, when asked for) working."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mcp_memory.lazy_imports import defer_package_init

API = "lance_namespace_urllib3_client.api.table_api"


def python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_plain_lancedb_imports_the_rest_client_apis():
    """Why the deferral exists: if lancedb stops importing them, this fails and the shim can go."""
    assert python(f"import sys, lancedb; print({API!r} in sys.modules)").strip() == "True"


def test_deferred_lancedb_works_without_them_and_they_load_when_asked(tmp_path: Path):
    out = python(f"""
import sys
from mcp_memory.lazy_imports import defer_lance_rest_client
assert defer_lance_rest_client()
assert not defer_lance_rest_client()  # once
import lancedb, pyarrow as pa
db = lancedb.connect({str(tmp_path / "db")!r})
table = db.create_table("t", schema=pa.schema([pa.field("id", pa.string()), pa.field("text", pa.string())]))
table.add([{{"id": "a", "text": "bees in the garden"}}, {{"id": "b", "text": "a blue bicycle"}}])
table.create_fts_index("text")
print(table.count_rows(), table.search("bees", query_type="fts").limit(1).to_list()[0]["id"])
print({API!r} in sys.modules)
import lance_namespace_urllib3_client as client
print(client.ApiClient.__name__, {API!r} in sys.modules)
""")
    assert out.split() == ["2", "a", "False", "ApiClient", "True"]


def test_nothing_to_defer():
    assert not defer_package_init("sys")  # already imported
    assert not defer_package_init("no_such_package_for_mcp_memory")
    assert "colorsys" not in sys.modules
    assert not defer_package_init("colorsys")  # a module, not a package
    assert "colorsys" not in sys.modules

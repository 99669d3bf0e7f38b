"""Process settings the server applies at start, and only there."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_malloc_arenas_can_be_capped_after_every_module_is_imported():
    code = ("import mcp_memory.service, mcp_memory.process as p, mcp_memory.cli; "
            "print(p.limit_malloc_arenas())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True"

"""Import-time savings on the start-up path, for imports this project does not own.

`lancedb` imports `lance_namespace`, which imports the models of its generated REST
client package, `lance_namespace_urllib3_client`; that package's ``__init__`` also
imports every REST API class, whose pydantic ``validate_call`` wrappers cost ~0.5 s
of CPU (measured: about half of `import lancedb`), while a local store never uses
them. `defer_lance_rest_client` registers the package without running its
``__init__``: submodules (the models) import as usual, and the first attribute asked
of the package itself runs the real ``__init__``, so any code that does use the REST
client still gets it whole.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from typing import Any

_lock = threading.Lock()
LANCE_REST_CLIENT = "lance_namespace_urllib3_client"


def defer_package_init(name: str) -> bool:
    """Register package ``name`` with its ``__init__`` deferred to first attribute access.
    Returns False (and changes nothing) if it is already imported or not installed."""
    if name in sys.modules:
        return False
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return False
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return False
    module = importlib.util.module_from_spec(spec)

    def __getattr__(attr: str) -> Any:  # noqa: N807  (the module-level hook, PEP 562)
        with _lock:
            if module.__dict__.get("__getattr__") is __getattr__:
                del module.__dict__["__getattr__"]
                spec.loader.exec_module(module)  # type: ignore[union-attr]
        try:
            return module.__dict__[attr]
        except KeyError:
            raise AttributeError(f"module {name!r} has no attribute {attr!r}") from None

    module.__dict__["__getattr__"] = __getattr__
    sys.modules[name] = module
    return True


def defer_lance_rest_client() -> bool:
    return defer_package_init(LANCE_REST_CLIENT)

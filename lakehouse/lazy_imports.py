"""Third-party modules that do expensive work when imported, deferred to their first use.

``rfc3987_syntax`` (the IRI format checker of ``jsonschema[format-nongpl]``, which the notebooks'
Jupyter packages install) compiles about 38 Earley grammars with Lark when imported: 2-5 s on
two cores. ``jsonschema`` imports it eagerly to register its ``iri`` and ``iri-reference`` format
checks, and dbt (hence dagster-dbt, hence every load of the code location) imports
``jsonschema``. Nothing here checks IRIs; a process that does gets the real module at its first
check (upstream: python-jsonschema/jsonschema#1428).
"""

import importlib
import importlib.util
import sys
import types
from typing import Any

RFC3987_SYNTAX = "rfc3987_syntax"


def _real(name: str, stub: types.ModuleType) -> types.ModuleType:
    if sys.modules.get(name) is stub:
        del sys.modules[name]
    return importlib.import_module(name)


def _defer_rfc3987_syntax() -> None:
    name = RFC3987_SYNTAX
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None:
        return
    stub = types.ModuleType(name, "rfc3987_syntax, imported at its first use "
                                  "(lakehouse.lazy_imports)")
    # Where the package is: find_spec answers as before and a submodule imported directly
    # (rfc3987_syntax.utils) is found there.
    stub.__spec__ = spec
    stub.__path__ = list(spec.submodule_search_locations or [])

    def is_valid_syntax(term: str, value: str) -> bool:
        return _real(name, stub).is_valid_syntax(term, value)

    def __getattr__(attribute: str) -> Any:  # noqa: N807 - a module's own __getattr__ (PEP 562)
        return getattr(_real(name, stub), attribute)

    stub.is_valid_syntax = is_valid_syntax  # type: ignore[attr-defined] - what jsonschema imports
    stub.__getattr__ = __getattr__  # type: ignore[method-assign]
    sys.modules[name] = stub


def defer_slow_imports() -> None:
    """Install the deferrals (before anything imports ``jsonschema``; idempotent)."""
    _defer_rfc3987_syntax()

"""What loading the code location costs: nothing is computed at import that no one asked for."""

import importlib.util
import subprocess
import sys

import pytest

from lakehouse.settings import PROJECT_DIR


def _fresh(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], cwd=PROJECT_DIR, check=True,
                          capture_output=True, text=True, timeout=300).stdout


@pytest.mark.skipif(importlib.util.find_spec("rfc3987_syntax") is None,
                    reason="rfc3987-syntax (jsonschema's IRI checker) is not installed")
def test_jsonschema_iri_checker_is_built_on_first_use_not_at_import() -> None:
    # rfc3987-syntax (pulled in by the notebooks' jsonschema[format-nongpl]) compiles ~38 Earley
    # grammars when imported, 2-5 s on 2 cores, and dbt imports jsonschema: every code location
    # load paid it. The check itself must work as before.
    out = _fresh(
        "import sys, lakehouse, jsonschema\n"
        "print('compiled at import:', 'rfc3987_syntax.syntax_helpers' in sys.modules)\n"
        "checker = jsonschema.FormatChecker()\n"
        "print('valid:', checker.conforms('https://example.com/ä?q=1#f', 'iri'))\n"
        "print('invalid:', checker.conforms('http://exa mple.com/', 'iri'))\n"
        "print('reference:', checker.conforms('../a/b', 'iri-reference'))\n")
    assert out.splitlines() == ["compiled at import: False", "valid: True", "invalid: False",
                                "reference: True"]


LOAD = """
import json, sys
from lakehouse.definitions import defs
metadata = defs().get_repository_def().metadata["plugin_component_types_json"].value
print(json.dumps({"types": metadata, "aws_imported": "dagster_aws.components" in sys.modules}))
"""


def test_catalogue_of_component_types_is_computed_once_per_installed_libraries(tmp_path) -> None:
    # Dagster computes it on every load (importing dagster-aws, boto3 and a JSON schema per
    # component type) for the UI's list of component types; it changes only with an install.
    import json
    import os

    from dagster.components.core.load_defs import get_library_json_enriched_defs

    env = {**os.environ, "LAKEHOUSE_CACHE_DIR": str(tmp_path)}
    runs = [json.loads(subprocess.run(
        [sys.executable, "-c", LOAD], cwd=PROJECT_DIR, env=env, check=True, capture_output=True,
        text=True, timeout=300).stdout.splitlines()[-1]) for _ in range(2)]
    expected = get_library_json_enriched_defs(None).metadata["plugin_component_types_json"].value
    assert runs[0]["types"] == runs[1]["types"] == json.loads(json.dumps(expected))
    assert {namespace["name"] for namespace in expected} >= {"dagster", "dagster_dbt"}
    assert [run["aws_imported"] for run in runs] == [True, False]

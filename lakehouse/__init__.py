"""lakehouse: Telegram updates, tweets and movie data to bronze/silver/gold Delta tables."""

from lakehouse.lazy_imports import defer_slow_imports as _defer_slow_imports
from lakehouse.secrets import install as _install_redaction

# Before anything logs: every log record of a process running our code is redacted.
_install_redaction()
# Before dbt (through dagster-dbt) imports jsonschema: see lakehouse/lazy_imports.py.
_defer_slow_imports()

"""lakehouse: Telegram updates, tweets and movie data to bronze/silver/gold Delta tables."""

import os as _os

# Before Polars and delta-rs load: both link jemalloc (with its background purging threads),
# which reads this variable at its first allocation. Pages a load frees go back to the system
# after a second instead of jemalloc's default ten, so what one step freed is not still
# resident (and counted) while the next step of the batch allocates its own: a tweets batch
# takes a few seconds, so with ten seconds every step's pages were still held at the next
# batch's peak. 1M tweets in 100k batches, the same CPU time: about 60 MiB less peak RSS.
# Returning them at once (0 ms) cost 30-60% more CPU time (every allocation faulted pages in).
# An operator's own setting wins.
_os.environ.setdefault("_RJEM_MALLOC_CONF",
                       "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0")

from lakehouse.lazy_imports import defer_slow_imports as _defer_slow_imports
from lakehouse.secrets import install as _install_redaction

# Before anything logs: every log record of a process running our code is redacted.
_install_redaction()
# Before dbt (through dagster-dbt) imports jsonschema: see lakehouse/lazy_imports.py.
_defer_slow_imports()

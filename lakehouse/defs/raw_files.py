"""Run config of the assets that load raw files: which files, or all of them."""

from collections.abc import Iterable

import dagster as dg

from lakehouse.lake.location import Lake


class RawFilesConfig(dg.Config):
    files: list[str] = []
    """Raw keys to (re)load. Empty: every raw file of the source (a full, idempotent reload,
    reading the whole landing zone: a repair tool; sensors pass the new files)."""


def raw_keys_to_load(lake: Lake, config: RawFilesConfig, prefixes: Iterable[str]) -> list[str]:
    if config.files:
        return sorted(config.files)
    return sorted(k for prefix in prefixes for k in lake.list_keys(prefix))

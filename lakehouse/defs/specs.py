"""The spec of a Delta table that Polars writes, built the same way in every domain."""

from collections.abc import Sequence
from typing import Any

import dagster as dg

DELTA_KINDS = frozenset({"polars", "delta"})


def delta_table_spec(key: dg.AssetKey | Sequence[str], group: str, *, description: str,
                     deps: Sequence[Any] = (), **attributes: Any) -> dg.AssetSpec:
    """A bronze, silver or quarantine table: its domain's group, the kinds ``polars`` and
    ``delta``, the tables it is read from, and a description of its own (``tags`` and other
    ``dg.AssetSpec`` attributes pass through)."""
    return dg.AssetSpec(key, group_name=group, kinds=set(DELTA_KINDS), deps=list(deps),
                        description=description, **attributes)

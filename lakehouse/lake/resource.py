"""The lake as a Dagster resource, so every asset finds it the same way."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from lakehouse.lake.location import Lake


class LakeResource(dg.ConfigurableResource):
    """Root of the lake: a local folder or ``s3://bucket/prefix``.

    Unset, it is read when a run starts from ``LAKEHOUSE_ROOT`` (default ``./data/lake``);
    S3 credentials and endpoint come from the usual AWS variables (``AWS_ENDPOINT_URL`` too).
    """

    root: str | None = Field(default=None, description="Overrides LAKEHOUSE_ROOT when set.")

    def lake(self) -> Lake:
        return Lake.from_env(self.root)

"""Resources shared by every domain."""

import dagster as dg

from lakehouse.lake.resource import LakeResource


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"lake": LakeResource()})

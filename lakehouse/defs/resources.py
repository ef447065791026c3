"""Resources shared by every domain, and the code location's executor.

Runs execute in process: the multiprocess executor starts a process and loads the code
location again for every step, which on two cores was most of a small run's wall time
(a one-file Twitter run: 2 min 49 s, of which its two steps did 16.5 s of work).
"""

import dagster as dg

from lakehouse.lake.resource import LakeResource
from lakehouse.settings import env_fields


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"lake": LakeResource(**env_fields({"root": "LAKEHOUSE_ROOT"}))},
                          executor=dg.in_process_executor)

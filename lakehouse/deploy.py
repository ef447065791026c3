"""Deployment glue the Dagster instance config (``deploy/dagster-production.yaml``) names.

``EcsRunLauncher``: dagster-aws's launcher, taking its region from ``AWS_REGION`` as well.
botocore reads only ``AWS_DEFAULT_REGION``, while ECS tasks, Lambda and most AWS tooling set
``AWS_REGION`` (the variable this project's lake reads too); with only the latter set, the stock
launcher fails every instance load (``dagster instance info``, the daemon) with NoRegionError.
"""

import os

from dagster_aws.ecs import EcsRunLauncher as _EcsRunLauncher


def aws_region() -> str | None:
    """The region the environment names: ``AWS_DEFAULT_REGION``, else ``AWS_REGION``."""
    return os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or None


class EcsRunLauncher(_EcsRunLauncher):
    """``dagster_aws.ecs.EcsRunLauncher`` whose boto3 clients find the region in
    ``AWS_REGION`` when ``AWS_DEFAULT_REGION`` is unset."""

    def __init__(self, *args, **kwargs):
        region = aws_region()
        if region:
            # The stock launcher also builds an EC2 resource without a client config: only the
            # environment reaches it, so the region is made visible to botocore there too.
            os.environ.setdefault("AWS_DEFAULT_REGION", region)
        super().__init__(*args, **kwargs)

"""What the sensor daemon does with a tick of telegram_silver_sensor, for the tests."""

import dagster as dg

from lakehouse.defs.telegram.sensors import telegram_silver_sensor


def silver_tick(definitions: dg.Definitions, instance: dg.DagsterInstance,
                cursor: str | None = None) -> dg.SensorResult:
    result = telegram_silver_sensor(dg.build_sensor_context(
        instance=instance, cursor=cursor, definitions=definitions,
        resources=definitions.resources))
    assert isinstance(result, dg.SensorResult)
    return result


def as_the_daemon(definitions: dg.Definitions, instance: dg.DagsterInstance,
                  result: dg.SensorResult) -> list[tuple[str, str]]:
    """Add the tick's partitions, then run its requests (in order); returns their ranges."""
    for request in result.dynamic_partitions_requests or []:
        assert isinstance(request, dg.AddDynamicPartitionsRequest)
        instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
    ranges = []
    for request in result.run_requests or []:
        ranges.append((request.tags["dagster/asset_partition_range_start"],
                       request.tags["dagster/asset_partition_range_end"]))
        assert definitions.resolve_job_def("telegram_daily_etl_job").execute_in_process(
            instance=instance, tags=request.tags).success
    return ranges

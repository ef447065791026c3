"""Gold updates itself: silver changing is what requests the gold models that read it."""

import dagster as dg

from lakehouse.definitions import defs
from lakehouse.defs.telegram.assets import message_days


def _requested(result, definitions: dg.Definitions) -> set[str]:
    keys = definitions.get_repository_def().asset_graph.get_all_asset_keys()
    return {key.to_user_string() for key in keys if result.get_requested_partitions(key)}


def test_a_silver_update_requests_exactly_the_gold_models_reading_it() -> None:
    definitions = defs()
    instance = dg.DagsterInstance.ephemeral()
    quiet = dg.evaluate_automation_conditions(defs=definitions, instance=instance)
    assert quiet.total_requested == 0  # nothing changed: no run (after `make demo` too)

    # Silver's partitions are the days with messages, added as bronze loads them.
    instance.add_dynamic_partitions(message_days.name, ["2026-11-12"])
    instance.report_runless_asset_event(
        dg.AssetMaterialization(asset_key=dg.AssetKey(["silver", "telegram_messages"]),
                                partition="2026-11-12"))
    after = dg.evaluate_automation_conditions(defs=definitions, instance=instance,
                                              cursor=quiet.cursor)
    requested = _requested(after, definitions)
    assert requested == {"gold/telegram_messages_per_day",
                         "gold/telegram_messages_per_user_per_day",
                         "gold/telegram_avg_message_length_per_user_per_day",
                         "gold/telegram_messages_per_hour_weekday_week"}

    handled = dg.evaluate_automation_conditions(defs=definitions, instance=instance,
                                                cursor=after.cursor)
    assert handled.total_requested == 0  # requested once per update, not on every tick


def test_gold_models_carry_the_condition_and_the_sensor_runs_by_default() -> None:
    repo = defs().get_repository_def()
    graph = repo.asset_graph
    gold = [k for k in graph.get_all_asset_keys() if k.path[0] == "gold"]
    assert gold and all(graph.get(k).automation_condition is not None for k in gold)
    sensor = repo.get_sensor_def("gold_automation_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    jobs = {job.name for job in repo.get_all_jobs()}
    assert "twitter_gold_job" not in jobs


def test_a_gold_model_waits_for_the_gold_model_it_reads() -> None:
    definitions = defs()
    instance = dg.DagsterInstance.ephemeral()
    quiet = dg.evaluate_automation_conditions(defs=definitions, instance=instance)
    # Only twitter_sentiment changed: twitter_tweets_by_sentiment also reads gold/fct_tweets,
    # which was never built and is not asked for now, so dbt would fail on it.
    instance.report_runless_asset_event(
        dg.AssetMaterialization(asset_key=dg.AssetKey(["silver", "twitter_sentiment"])))
    first = dg.evaluate_automation_conditions(defs=definitions, instance=instance,
                                              cursor=quiet.cursor)
    assert "gold/twitter_tweets_by_sentiment" not in _requested(first, definitions)

    instance.report_runless_asset_event(
        dg.AssetMaterialization(asset_key=dg.AssetKey(["gold", "fct_tweets"])))
    second = dg.evaluate_automation_conditions(defs=definitions, instance=instance,
                                               cursor=first.cursor)
    assert "gold/twitter_tweets_by_sentiment" in _requested(second, definitions)

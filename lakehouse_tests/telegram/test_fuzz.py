"""Generated raw Telegram lines (valid updates, broken JSON, wrong types, huge numbers,
non-objects, bytes that are not UTF-8) through the bronze and silver path: every record ends in
bronze (and, for messages, silver) or in the quarantine, once, and nothing raises."""

import json
import tempfile
from datetime import UTC, date, datetime, timedelta

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lakehouse.lake.delta import open_table, scan
from lakehouse.lake.location import Lake
from lakehouse.lake.rawfiles import ndjson_lines
from lakehouse.load.telegram import load_bronze, rebuild_silver_days
from lakehouse.sources.telegram_landing import WEBHOOK_PREFIX, decode_records, decode_updates
from lakehouse.transforms.telegram import (
    MESSAGE_UPDATE_TYPES,
    RAW_RECORD_SCHEMA,
    bronze_updates,
    latest_versions,
    message_versions,
    quarantine_records,
)

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
DAYS = (date(2013, 8, 14), NOW.date() + timedelta(days=1))
KEY = f"{WEBHOOK_PREFIX}/{NOW:%Y/%m/%d}/{NOW:%Y%m%dT%H%M%S%fZ}-1-0001.ndjson"

huge = st.integers(min_value=-(2**80), max_value=2**80)
plausible_time = st.integers(min_value=1_376_438_400, max_value=int(NOW.timestamp()))
scalar = st.one_of(st.none(), st.booleans(), huge, st.floats(allow_nan=False, allow_infinity=False),
                   st.text(max_size=12))
anything = st.recursive(scalar, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=6)
message = st.fixed_dictionaries(
    {"message_id": st.one_of(st.integers(1, 10_000), anything),
     "date": st.one_of(plausible_time, plausible_time, huge, anything),
     "chat": st.one_of(st.fixed_dictionaries({"id": st.integers(-10**13, 10**13)}), anything)},
    optional={"text": st.one_of(st.text(max_size=30), anything),
              "edit_date": st.one_of(plausible_time, huge, anything),
              "from": st.one_of(st.fixed_dictionaries({"id": st.integers(1, 10**10)}), anything),
              "photo": anything, "reply_to_message": anything})
update = st.fixed_dictionaries(
    {"update_id": st.one_of(st.integers(1, 2**40), st.integers(1, 2**40), anything)},
    optional={kind: st.one_of(message, message, anything) for kind in MESSAGE_UPDATE_TYPES}
    | {"message_reaction": anything, "callback_query": anything})
record = st.one_of(
    update.map(json.dumps).map(str.encode),
    update.map(json.dumps).map(str.encode),
    anything.map(json.dumps).map(str.encode),
    update.map(json.dumps).map(lambda text: text[: len(text) // 2].encode()),  # cut short
    st.binary(min_size=1, max_size=40).map(lambda b: b"x" + b.replace(b"\n", b"")),
)
lines = st.lists(st.one_of(record, record, record, st.sampled_from([b"", b"  ", b"\r"])),
                 min_size=1, max_size=80)


def expected_records(raw: list[bytes]) -> int:
    return sum(1 for line in raw if line.decode("utf-8", "replace").strip())


def records_of(raw: list[bytes]) -> pl.DataFrame:
    frame = ndjson_lines(b"\n".join(raw), "update_text").with_columns(
        pl.lit(KEY).alias("_source_file"), pl.lit(NOW).alias("_ingested_at"))
    return decode_records(frame.select(list(RAW_RECORD_SCHEMA)).cast(RAW_RECORD_SCHEMA))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines)
def test_every_generated_record_lands_in_bronze_or_quarantine_once(raw: list[bytes]) -> None:
    records = records_of(raw)
    bronze = bronze_updates(records.lazy(), days=DAYS).collect()
    quarantine = quarantine_records(records.lazy(), DAYS).collect()
    assert records.height == expected_records(raw)
    indexes = bronze["_record_index"].to_list() + quarantine["_record_index"].to_list()
    assert sorted(indexes) == sorted(records["_record_index"].to_list())
    assert quarantine["reason"].null_count() == 0
    assert bronze["date"].is_between(*DAYS).all()

    # Silver: every message-kind bronze row is a version, the latest per key a silver row.
    messages = bronze.filter(pl.col("update_type").is_in(MESSAGE_UPDATE_TYPES))
    versions = message_versions(messages.lazy()).collect()
    # A lake loaded before bronze kept the typed message decodes its text to the same message.
    assert decode_updates(messages.drop("message"))["message"].to_list() == \
        messages["message"].to_list()
    assert versions.height == messages.height
    assert versions["date"].is_between(*DAYS).all()
    silver = latest_versions(versions.lazy()).collect()
    assert silver.height == versions.select("chat_id", "message_id").unique().height


@settings(max_examples=5, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(lines)
def test_generated_files_load_into_delta_bronze_and_silver_without_failing(
        raw: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as root:
        lake = Lake.from_env(root)
        lake.write_bytes(KEY, b"\n".join(raw))
        load = load_bronze(lake, [KEY], days=DAYS)
        assert load.records == expected_records(raw)
        assert load.bronze_rows + load.quarantined == load.records
        bronze = (scan(lake, lake.table_uri("bronze", "telegram_updates")).collect()
                  if open_table(lake, lake.table_uri("bronze", "telegram_updates"))
                  else pl.DataFrame())
        assert bronze.height == load.bronze_rows
        silver = rebuild_silver_days(lake, sorted(load.dates))
        written = (scan(lake, lake.table_uri("silver", "telegram_messages")).collect()
                   if open_table(lake, lake.table_uri("silver", "telegram_messages"))
                   else pl.DataFrame())
        kinds = (bronze.filter(pl.col("update_type").is_in(MESSAGE_UPDATE_TYPES))
                 if bronze.height else bronze)
        keys = kinds.height and kinds.select(
            pl.col("message").struct.field("chat").struct.field("id"),
            pl.col("message").struct.field("message_id")).unique().height
        assert silver.rows == written.height == keys

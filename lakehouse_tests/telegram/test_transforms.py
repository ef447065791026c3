"""Bronze and silver Telegram transforms on fixtures in the Bot API's own format."""

import json
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest

from lakehouse.lake.delta import append_replacing_sources, scan
from lakehouse.lake.location import Lake
from lakehouse.lake.rawfiles import ndjson_lines
from lakehouse.load.telegram import BRONZE, SILVER, load_bronze, rebuild_silver_days
from lakehouse.sources.telegram_landing import (
    decode_records,
    message_updates_first,
    read_raw_records,
)
from lakehouse.transforms.telegram import (
    BRONZE_SCHEMA,
    RAW_RECORD_SCHEMA,
    SILVER_SCHEMA,
    bronze_updates,
    quarantine_records,
    silver_messages,
)
from lakehouse_tests.conftest import FIXTURES

GROUP_ID = -1001987654321
ANSWER_KEY = "raw/telegram/getupdates/2026/11/17/20261117T080000000000Z-731000001-731000999.json"
SEGMENT_KEY = "raw/telegram/webhook/2026/11/17/20261117T090000000000Z-1-0001.ndjson"


@pytest.fixture
def landed(lake: Lake) -> Lake:
    lake.write_bytes(ANSWER_KEY, (FIXTURES / "telegram/getupdates_answer.json").read_bytes())
    lake.write_bytes(SEGMENT_KEY, (FIXTURES / "telegram/webhook_segment.ndjson").read_bytes())
    return lake


@pytest.fixture
def records(landed: Lake) -> pl.DataFrame:
    frame, broken = read_raw_records(landed, [ANSWER_KEY, SEGMENT_KEY])
    assert broken.is_empty()
    return frame


@pytest.fixture
def silver(records: pl.DataFrame) -> pl.DataFrame:
    return silver_messages(bronze_updates(records.lazy())).collect()


def test_every_record_of_both_raw_formats_is_read_with_its_text(records: pl.DataFrame) -> None:
    answer = json.loads((FIXTURES / "telegram/getupdates_answer.json").read_text())
    from_answer = records.filter(pl.col("_source_file") == ANSWER_KEY)
    assert from_answer.height == len(answer["result"])
    assert [json.loads(t) for t in from_answer["update_text"]] == answer["result"]
    from_segment = records.filter(pl.col("_source_file") == SEGMENT_KEY)
    segment_lines = (FIXTURES / "telegram/webhook_segment.ndjson").read_text().splitlines()
    assert from_segment["update_text"].to_list() == segment_lines
    assert from_segment["_ingested_at"].unique().to_list() == [datetime(2026, 11, 17, 9, tzinfo=UTC)]


def test_bronze_has_one_row_per_update_with_type_and_message_day(records: pl.DataFrame) -> None:
    bronze = bronze_updates(records.lazy()).collect()
    assert bronze.schema == pl.Schema(BRONZE_SCHEMA)
    assert bronze.height == 22  # 20 in the answer, 2 valid lines in the segment
    types = dict(bronze.group_by("update_type").len().iter_rows())
    assert types == {"message": 16, "edited_message": 1, "channel_post": 1,
                     "edited_channel_post": 1, "message_reaction": 1, "callback_query": 1,
                     "chat_member": 1}
    edit = bronze.filter(pl.col("update_type") == "edited_channel_post").row(0, named=True)
    assert edit["date"] == date(2026, 11, 10)  # the day of the original post


def test_malformed_records_go_to_quarantine_with_the_reason(records: pl.DataFrame) -> None:
    quarantine = quarantine_records(records.lazy()).collect()
    reasons = dict(zip(quarantine["_record_index"], quarantine["reason"], strict=True))
    assert reasons == {1: "not valid JSON", 3: "JSON without a numeric update_id",
                       4: "not valid JSON"}
    assert quarantine.filter(pl.col("_record_index") == 1)["record"].item() == "this is not json"


def _segment(lake: Lake, lines: list[str]) -> pl.DataFrame:
    lake.write_bytes(SEGMENT_KEY, ("\n".join(lines) + "\n").encode())
    records, _ = read_raw_records(lake, [SEGMENT_KEY])
    return records


def test_the_update_type_is_the_first_type_key_present_whatever_its_value(lake: Lake) -> None:
    sent = int(datetime(2026, 11, 17, 8, tzinfo=UTC).timestamp())
    chat = {"id": GROUP_ID, "type": "supergroup"}
    post = {"message_id": 9, "date": sent, "chat": chat, "text": "null and void"}
    records = _segment(lake, [
        json.dumps({"update_id": 1, "message": post}),
        json.dumps({"update_id": 2, "message": None, "edited_message": post}),
        json.dumps({"update_id": 3, "edited_message": post, "message": post}),
        json.dumps({"update_id": 4, "business_connection": None, "message_reaction": {}}),
        json.dumps({"update_id": 5, "a_future_update": {"chat": chat, "date": sent}}),
        '{"update_id": 6, "channel_post": ',
        json.dumps({"update_id": 7, "channel_post": post}),
        json.dumps({"update_id": 8, "edited_message": None}),
    ])
    bronze = bronze_updates(records.lazy()).collect()
    assert bronze.select("_record_index", "update_type", "chat_id").rows() == [
        (0, "message", GROUP_ID), (2, "message", GROUP_ID), (3, "business_connection", None),
        (4, "other", GROUP_ID), (6, "channel_post", GROUP_ID)]
    assert bronze.filter(pl.col("update_type") == "other")["date"].to_list() == [date(2026, 11, 17)]
    assert bronze["message"].struct.field("text").to_list() == [
        "null and void", "null and void", None, None, "null and void"]
    quarantine = quarantine_records(records.lazy()).collect()
    assert quarantine.select("_record_index", "reason").rows() == [
        (1, "message is not a JSON object"), (5, "not valid JSON"),
        (7, "message is not a JSON object")]


def test_records_keep_their_line_in_a_large_file(lake: Lake) -> None:
    sent = int(datetime(2026, 11, 17, 8, tzinfo=UTC).timestamp())
    lines = [json.dumps({"update_id": i, "message": {
        "message_id": i, "date": sent, "chat": {"id": GROUP_ID}, "text": f"m{i}"}})
        for i in range(40_000)]
    lines[20_000] = lines[20_000][:30]  # cut short, far into the file
    lines[33_333] = json.dumps({"update_id": 33_333, "message": {"message_id": 1}})
    records = _segment(lake, lines)
    bronze = bronze_updates(records.lazy()).collect()
    assert bronze.height == 39_998
    assert (bronze["update_id"] == bronze["_record_index"]).all()
    assert (bronze["message"].struct.field("text") == "m" + bronze["update_id"].cast(pl.String)).all()
    quarantine = quarantine_records(records.lazy()).collect()
    assert quarantine.select("_record_index", "reason").rows() == [
        (20_000, "not valid JSON"), (33_333, "message without an integer chat.id")]


def test_a_broken_getupdates_answer_is_quarantined_whole(lake: Lake) -> None:
    key = "raw/telegram/getupdates/2026/11/17/20261117T100000000000Z-1-2.json"
    lake.write_bytes(key, b'{"ok":false,"error_code":502}')
    records, broken = read_raw_records(lake, [key])
    assert records.is_empty()
    assert broken["reason"].to_list() == ["getUpdates answer is not ok JSON with a result array"]
    assert broken["record"].to_list() == ['{"ok":false,"error_code":502}']


def test_every_message_type_is_classified(silver: pl.DataFrame) -> None:
    kinds = set(silver["message_type"])
    assert kinds >= {"text", "photo", "video", "voice", "audio", "document", "sticker",
                     "animation", "dice", "poll", "location", "contact"}
    animation = silver.filter(pl.col("message_type") == "animation")
    assert animation.height == 1  # carries a document too, but is an animation


def test_non_text_messages_keep_their_type_and_have_no_text(silver: pl.DataFrame) -> None:
    others = silver.filter(pl.col("message_type") != "text")
    assert others["text"].null_count() == others.height
    assert others["text_length"].null_count() == others.height
    texts = silver.filter(pl.col("message_type") == "text")
    assert (texts["text_length"] == texts["text"].str.len_chars()).all()


def test_edited_message_replaces_original_in_silver(silver: pl.DataFrame) -> None:
    edited = silver.filter(pl.col("is_edited") & (pl.col("chat_id") == GROUP_ID))
    assert edited.height == 1
    row = edited.row(0, named=True)
    assert row["text"].endswith("(editado)")
    assert row["edited_at"] > row["sent_at"]
    assert silver.select("chat_id", "message_id").is_unique().all()


def test_channel_posts_are_messages_without_a_user(silver: pl.DataFrame) -> None:
    posts = silver.filter(pl.col("chat_type") == "channel")
    assert posts.height == 1
    post = posts.row(0, named=True)
    assert post["user_id"] is None
    assert post["text"] == "📢 Sessão da semana: dia 10/11! (horário novo)"  # the edit won
    assert post["is_edited"]


def test_non_message_updates_stay_in_bronze_only(silver: pl.DataFrame) -> None:
    # 15 group messages + the other chat's message + 1 channel post (edited once); the
    # reaction, callback query and membership change are not messages.
    assert silver.height == 17
    assert silver.schema == pl.Schema(SILVER_SCHEMA)
    assert set(silver["chat_type"]) == {"supergroup", "channel"}


def test_replies_and_forwards_are_flagged(silver: pl.DataFrame) -> None:
    assert silver["reply_to_message_id"].drop_nulls().len() >= 1
    assert silver["is_forwarded"].sum() >= 1


def test_allow_list_drops_other_chats_and_keeps_chatless_updates(records: pl.DataFrame) -> None:
    everything = bronze_updates(records.lazy()).collect()
    allowed = bronze_updates(records.lazy(), allowed_chat_ids={GROUP_ID}).collect()
    dropped = everything.join(allowed, on=["_source_file", "_record_index"], how="anti")
    assert sorted(dropped["chat_id"].unique().to_list()) == [-1005555555555, -1001122334455]
    assert allowed.filter(pl.col("chat_id").is_null()).height == \
        everything.filter(pl.col("chat_id").is_null()).height


def _silver(lake: Lake) -> pl.DataFrame:
    return scan(lake, lake.table_uri(*SILVER)).collect().sort("chat_id", "message_id")


def test_silver_reads_a_bronze_written_before_bronze_kept_the_typed_message(
        landed: Lake, tmp_path: Path) -> None:
    """A lake loaded by an older version: its bronze has no ``message`` column (the answer's
    rows), then a newer load adds the column (the segment's rows) and the old rows read it as
    null. Silver decodes those rows' text and comes out as from a lake loaded today."""
    load = load_bronze(landed, [ANSWER_KEY, SEGMENT_KEY])
    rebuild_silver_days(landed, sorted(load.dates))
    expected = _silver(landed)

    old = Lake.from_env(str(tmp_path / "old_lake"))
    for key in (ANSWER_KEY, SEGMENT_KEY):
        old.write_bytes(key, landed.read_bytes(key))
    old_rows = (scan(landed, landed.table_uri(*BRONZE)).drop("message")
                .filter(pl.col("_source_file") == ANSWER_KEY).collect())
    append_replacing_sources(old, old.table_uri(*BRONZE), old_rows, [ANSWER_KEY],
                             partition_by=["date"])
    only_old = rebuild_silver_days(old, sorted(load.dates))
    answer_only = Lake.from_env(str(tmp_path / "answer_only"))
    answer_only.write_bytes(ANSWER_KEY, landed.read_bytes(ANSWER_KEY))
    rebuild_silver_days(answer_only, sorted(load_bronze(answer_only, [ANSWER_KEY]).dates))
    assert only_old.rows == _silver(old).height > 0
    assert _silver(old).to_dicts() == _silver(answer_only).to_dicts()

    load_bronze(old, [SEGMENT_KEY])
    mixed = rebuild_silver_days(old, sorted(load.dates))
    assert mixed.rows == expected.height
    assert _silver(old).to_dicts() == expected.to_dicts()


def test_latest_edit_wins_across_files_and_batches(lake: Lake,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Silver reads a day in batches and picks each message's latest version on the keys
    alone: versions of one message in different files and batches, an older edit landed
    after a newer one and a repeated delivery still give one row, the latest edit's."""
    from lakehouse.load import telegram as tables

    monkeypatch.setattr(tables, "SILVER_BATCH_ROWS", 4)  # many batches from a few rows
    sent = int(datetime(2026, 11, 17, 8, tzinfo=UTC).timestamp())
    chat = {"id": GROUP_ID, "type": "supergroup", "title": "cinema"}

    def update(update_id: int, message_id: int, text: str, edited: int | None = None) -> str:
        body = {"message_id": message_id, "date": sent + message_id, "chat": chat,
                "from": {"id": 7, "is_bot": False, "first_name": "Ana"}, "text": text}
        kind = "message"
        if edited is not None:
            body["edit_date"], kind = sent + edited, "edited_message"
        return json.dumps({"update_id": update_id, kind: body})

    segments = [
        [update(m, m, "v0") for m in range(1, 21)],
        [update(100 + m, m, "v1", edited=100) for m in range(1, 11)] + [update(15, 15, "v0")],
        [update(200 + m, m, "v2", edited=200) for m in range(1, 6)]
        + [update(300, 6, "older edit", edited=50)],
    ]
    keys = []
    for seq, lines in enumerate(segments, start=1):
        key = f"raw/telegram/webhook/2026/11/17/20261117T0{seq}0000000000Z-1-000{seq}.ndjson"
        lake.write_bytes(key, ("\n".join(lines) + "\n").encode())
        keys.append(key)
    monkeypatch.setattr(tables, "BRONZE_COMMIT_FILES", 1)  # a commit (a Parquet file) a file
    load = load_bronze(lake, keys)
    silver = rebuild_silver_days(lake, sorted(load.dates))

    rows = _silver(lake)
    assert silver.rows == rows.height == 20
    texts = dict(zip(rows["message_id"], rows["text"], strict=True))
    assert texts == {m: "v2" if m <= 5 else "v1" if m <= 10 else "v0" for m in range(1, 21)}
    edited = dict(zip(rows["message_id"], rows["is_edited"], strict=True))
    assert edited == {m: m <= 10 for m in range(1, 21)}
    assert rows.filter(pl.col("message_id") == 6)["edited_at"].item() == \
        datetime.fromtimestamp(sent + 100, UTC)


def test_silver_read_from_bronze_files_equals_the_transform_of_the_same_records(
        landed: Lake, records: pl.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    """Silver finds each message's winner on the key fields read alone from bronze's files,
    then reads the files again for the winners' rows: batch by batch, file by file, the table
    it writes holds exactly the rows the pure transform gives for the same records."""
    from lakehouse.load import telegram as tables

    monkeypatch.setattr(tables, "BRONZE_COMMIT_FILES", 1)  # a Parquet file per raw file
    monkeypatch.setattr(tables, "SILVER_BATCH_ROWS", 3)  # winners spread over many batches
    load = load_bronze(landed, [ANSWER_KEY, SEGMENT_KEY])
    written = rebuild_silver_days(landed, sorted(load.dates))
    expected = silver_messages(bronze_updates(records.lazy())).collect()
    assert written.rows == expected.height > 0
    assert _silver(landed).to_dicts() == expected.sort("chat_id", "message_id").to_dicts()


def test_message_rows_without_their_typed_message_in_a_file_that_has_it_are_decoded(
        landed: Lake, tmp_path: Path) -> None:
    """One bronze file holding typed rows beside message rows whose ``message`` is null
    (rows of a version before bronze kept it, rewritten with newer ones): silver decodes the
    null ones from their text, and the winners are the same as from a lake loaded today."""
    load = load_bronze(landed, [ANSWER_KEY, SEGMENT_KEY])
    rebuild_silver_days(landed, sorted(load.dates))
    expected = _silver(landed)

    mixed = Lake.from_env(str(tmp_path / "mixed"))
    rows = scan(landed, landed.table_uri(*BRONZE)).collect().with_columns(
        pl.when(pl.col("_source_file") == ANSWER_KEY).then(None).otherwise(pl.col("message"))
        .alias("message"))
    assert rows.filter(pl.col("message").is_null()
                       & pl.col("update_type").is_in(["message", "edited_message"])).height > 0
    append_replacing_sources(mixed, mixed.table_uri(*BRONZE), rows, [ANSWER_KEY, SEGMENT_KEY],
                             partition_by=["date"])
    rebuilt = rebuild_silver_days(mixed, sorted(load.dates))
    assert rebuilt.rows == expected.height
    assert _silver(mixed).to_dicts() == expected.to_dicts()


def test_silver_refuses_a_bronze_whose_files_it_cannot_read_as_the_table(lake: Lake) -> None:
    """Silver reads bronze's Parquet files itself: a table with deletion vectors (rows the
    files still hold but the table no longer has) stops it with the reason, writing nothing."""
    import pyarrow as pa
    from deltalake import DeltaTable

    schema = pl.DataFrame(schema=BRONZE_SCHEMA).to_arrow().schema
    DeltaTable.create(lake.table_uri(*BRONZE), schema=pa.schema(schema), partition_by=["date"],
                      configuration={"delta.enableDeletionVectors": "true"})
    with pytest.raises(ValueError, match="deletionVectors"):
        rebuild_silver_days(lake, [date(2026, 11, 17)])
    assert not Path(lake.table_uri(*SILVER)).exists()


def test_records_decoded_message_updates_first_are_decoded_as_in_landed_order() -> None:
    # Records that look like message updates and are not (a callback query's nested message,
    # an edit holding a "message" key, a spaced or broken message) and the other kinds: the
    # load decodes them message-looking first and must type each as in their landed order.
    lines = [
        '{"update_id":1,"message":{"message_id":1,"chat":{"id":7},"date":1763251200,"text":"a"}}',
        '{"update_id":2,"callback_query":{"id":"q","from":{"id":3},'
        '"message":{"message_id":1,"chat":{"id":7},"date":1763251200}}}',
        '{"update_id":3,"edited_message":{"message_id":1,"chat":{"id":7},"date":1763251200,'
        '"edit_date":1763251300,"text":"b","external_reply":{"message":{"x":1}}}}',
        '{"update_id": 4, "message": {"message_id": 2, "chat": {"id": 7}, "date": 1763251200}}',
        'not json "message":{',
        '{"update_id":5,"message":null}',
        '{"update_id":6,"channel_post":{"message_id":3,"chat":{"id":-100},"date":1763251200}}',
        '{"update_id":7,"message_reaction":{"chat":{"id":7},"message_id":1,"date":1763251400}}',
        '{"update_id":8.5,"message":{"message_id":4,"chat":{"id":7},"date":1763251200}}',
        '{"update_id":9,"message":{"message_id":5,"chat":{"id":7},"date":1763251200,"caption":"c"}}',
    ]
    records = (ndjson_lines("\n".join(lines).encode(), "update_text")
               .with_columns(pl.lit(SEGMENT_KEY).alias("_source_file"),
                             pl.lit(datetime(2026, 11, 17, tzinfo=UTC)).alias("_ingested_at"))
               .select(list(RAW_RECORD_SCHEMA)).cast(RAW_RECORD_SCHEMA))
    in_order = decode_records(records)
    ordered = message_updates_first(records)
    assert ordered["_record_index"].to_list()[:6] == [0, 1, 2, 4, 8, 9]  # the message-looking
    decoded = decode_records(ordered)
    assert decoded["_record_index"].to_list() == ordered["_record_index"].to_list()
    assert decoded.sort("_record_index").equals(in_order, null_equal=True)
    assert decoded.sort("_record_index")["_update_type"].to_list() == [
        "message", "callback_query", "edited_message", "message", "other", "message", "channel_post",
        "message_reaction", "message", "message"]
    edit = decoded.filter(pl.col("_record_index") == 2)["_message"].struct.field("text")
    assert edit.to_list() == ["b"]
    # Without an edit among the message-looking records, and with the message-looking alone.
    plain = message_updates_first(records.filter(pl.col("_record_index") != 2))
    assert decode_records(plain).sort("_record_index").equals(
        in_order.filter(pl.col("_record_index") != 2), null_equal=True)
    looking = plain.head(5)
    assert decode_records(looking).sort("_record_index").equals(
        in_order.filter(pl.col("_record_index").is_in([0, 1, 4, 8, 9])), null_equal=True)

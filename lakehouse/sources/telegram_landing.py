"""Landing Telegram updates as received: getUpdates answers and webhook segments.

Layout in the landing zone:

- ``raw/telegram/getupdates/YYYY/MM/DD/<landed>-<first_id>-<last_id>.json``: one
  ``getUpdates`` answer, bytes unchanged.
- ``raw/telegram/webhook/YYYY/MM/DD/<opened>-<writer id>-<seq>.ndjson``: one webhook body per line,
  bytes unchanged (see ``lakehouse.lake.segments``).

The polling offset is derived from the landing zone itself (the newest file's last update_id),
so a crash between landing and the next call loses nothing and needs no extra state.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import duckdb
import polars as pl

from lakehouse.lake.jsondecode import duckdb_structure, json_decoder
from lakehouse.lake.location import Lake, raw_key, raw_prefix
from lakehouse.lake.rawfiles import landed_at, ndjson_lines
from lakehouse.lake.segments import landing_stamp, parse_landing_stamp
from lakehouse.sources.telegram import ALLOWED_UPDATES, UpdatesSource
from lakehouse.transforms.telegram import (
    DECODED_RECORD_SCHEMA,
    MESSAGE_DTYPE,
    MESSAGE_UPDATE_TYPES,
    QUARANTINE_SCHEMA,
    RAW_RECORD_SCHEMA,
    UPDATE_TYPES,
)

# The raw assets' keys; their files land under the keys' paths.
RAW_GETUPDATES, RAW_WEBHOOK = ("raw", "telegram", "getupdates"), ("raw", "telegram", "webhook")
GETUPDATES_PREFIX = raw_prefix(RAW_GETUPDATES)
WEBHOOK_PREFIX = raw_prefix(RAW_WEBHOOK)
RAW_PREFIXES = (GETUPDATES_PREFIX, WEBHOOK_PREFIX)
# After a week without updates the Bot API may restart update_id at a random value, so an old
# offset could silently confirm (drop) new updates.
OFFSET_TRUST = timedelta(days=7)


def getupdates_key(landed_at: datetime, first_id: int, last_id: int) -> str:
    name = f"{landing_stamp(landed_at)}-{first_id}-{last_id}.json"
    return raw_key(GETUPDATES_PREFIX, landed_at.astimezone(UTC).date(), name)


def webhook_key(segment_name: str, opened_at: datetime) -> str:
    return raw_key(WEBHOOK_PREFIX, opened_at.astimezone(UTC).date(), segment_name)


def last_landed_update(lake: Lake, now: datetime) -> tuple[int, datetime] | None:
    """(last update_id, landing time) of the newest getUpdates file within the trust window."""
    day = now.date()
    oldest = (now - OFFSET_TRUST).date()
    while day >= oldest:
        keys = lake.list_keys(f"{GETUPDATES_PREFIX}/{day:%Y/%m/%d}")
        if keys:
            name = keys[-1].rsplit("/", 1)[-1]
            landed_at = parse_landing_stamp(name)
            last_id = int(name.removesuffix(".json").rsplit("-", 1)[-1])
            if landed_at and now - landed_at <= OFFSET_TRUST:
                return last_id, landed_at
            return None
        day -= timedelta(days=1)
    return None


@dataclass
class PollResult:
    keys: list[str] = field(default_factory=list)
    updates: int = 0
    first_offset: int | None = None


def landed_offset(lake: Lake, now: datetime) -> int | None:
    """The getUpdates offset that confirms exactly what has landed (None: confirm nothing)."""
    mark = last_landed_update(lake, now)
    return mark[0] + 1 if mark else None


def peek_pending_update(source: UpdatesSource, lake: Lake, *,
                        clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> int | None:
    """The first update waiting at Telegram, or None: one ``getUpdates`` of one update.

    It asks with the landed offset, so it confirms only updates already in the landing zone:
    a sensor can look every minute without risking a single update.
    """
    body = source.get_updates_raw(offset=landed_offset(lake, clock()), limit=1, timeout=0,
                                  allowed_updates=ALLOWED_UPDATES)
    pending = json.loads(body)["result"]
    return int(pending[0]["update_id"]) if pending else None


def poll_updates(source: UpdatesSource, lake: Lake, *, max_batches: int = 200,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> PollResult:
    """Call getUpdates until it answers empty, landing each answer before moving the offset.

    The final empty answer (asked with offset = last + 1) is what confirms the landed updates
    to Telegram; if the run dies before it, the next run gets them again and bronze drops the
    duplicates.
    """
    result = PollResult()
    offset = landed_offset(lake, clock())
    result.first_offset = offset
    for _ in range(max_batches):
        body = source.get_updates_raw(offset=offset, limit=100, timeout=0,
                                      allowed_updates=ALLOWED_UPDATES)
        ids = [u["update_id"] for u in json.loads(body)["result"]]
        if not ids:
            break
        key = getupdates_key(clock(), min(ids), max(ids))
        lake.write_bytes(key, body)
        result.keys.append(key)
        result.updates += len(ids)
        offset = max(ids) + 1
    return result


def read_raw_records(lake: Lake, keys: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``raw_records`` with the records decoded (``decode_records``)."""
    records, broken = raw_records(lake, keys)
    return decode_records(records), broken


def raw_records(lake: Lake, keys: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(records, broken files) for the given raw keys.

    Records follow ``RAW_RECORD_SCHEMA``: one row per Update, its JSON text as received. A webhook
    segment gives one record per line; a getUpdates answer one per element of ``result``
    (split by DuckDB's JSON reader, which keeps each element's text). A getUpdates file that is
    not an ok answer comes back whole in the second frame, for the quarantine.
    """
    frames: list[pl.DataFrame] = []
    answers: list[dict[str, object]] = []
    for key in keys:
        data = lake.read_bytes(key)
        landed = landed_at(key)
        if key.endswith(".ndjson"):
            frames.append(
                ndjson_lines(data, "update_text")
                .with_columns(pl.lit(key).alias("_source_file"),
                              pl.lit(landed).alias("_ingested_at"))
            )
        else:
            answers.append({"_source_file": key, "body": data.decode("utf-8", errors="replace"),
                            "_ingested_at": landed})
    broken = pl.DataFrame(schema=QUARANTINE_SCHEMA)
    if answers:
        exploded, broken = _explode_answers(pl.DataFrame(answers))
        frames.append(exploded)
    if not frames:
        return pl.DataFrame(schema=RAW_RECORD_SCHEMA), broken
    return pl.concat([f.select(list(RAW_RECORD_SCHEMA)).cast(RAW_RECORD_SCHEMA)
                      for f in frames]), broken


def _update_type_sql(keys: str) -> str:
    """DuckDB SQL naming an update's type from its top-level keys (the first of
    ``UPDATE_TYPES`` present, else 'other')."""
    whens = " ".join(f"when list_contains({keys}, '{name}') then '{name}'" for name in UPDATE_TYPES)
    return f"case {whens} else 'other' end"


# How a Bot API update carrying a ``message`` reads as Telegram sends it (no spaces): a record
# holding it is very likely of that type. Only a hint for the cost: every record is typed by
# the same decoding wherever it stands.
_MESSAGE_MARK = '"message":{'


def message_updates_first(records: pl.DataFrame) -> pl.DataFrame:
    """``records`` with those that look like ``message`` updates first, each part in its own
    order, for ``decode_records`` (rows of one kind together cost it less). Rows are keyed by
    (``_source_file``, ``_record_index``), not by their order."""
    likely = (records.get_column("update_text").str.contains(_MESSAGE_MARK, literal=True)
              .fill_null(False))
    return pl.concat([records.filter(likely), records.filter(~likely)])


def decode_records(records: pl.DataFrame,
                   con: duckdb.DuckDBPyConnection | None = None) -> pl.DataFrame:
    """``DECODED_RECORD_SCHEMA``: each record's validity, update id and its JSON type, update
    type, the chat id and date of a non-message update, and the message a message-like update
    carries, typed: one DuckDB pass over the JSON text, the only decoding of it. The rows are
    ``records``' own, in their order.

    Most records are parsed once: one ``from_json`` into the update id and a ``message``, the
    first of ``UPDATE_TYPES``, so a record holding one is of that type whatever else it holds.
    Only the others are parsed again: the text that is not JSON to say so, the rest for their
    top-level keys (the first of ``UPDATE_TYPES`` present names the type, even one whose value
    is null) and then, for an edit or a channel post, into a struct of that type (decoding cost
    grows with the width of the target struct, and a ``case`` evaluates only its own rows).
    The update id is kept as JSON text, so its JSON type tells a double from an integer.

    Records ordered by ``message_updates_first`` cost less: DuckDB picks each ``case``'s
    branch once per vector of rows of one kind, where rows of every kind mixed made it copy
    the typed message of each row into the result (a 32 MiB chunk of 1M updates in landed
    order: about 25% more CPU time). Decoding the message-looking records apart, with the
    ``message`` taken without a ``case`` (and the whole part again should one be another
    kind), took about 10% more CPU time than this one query over the ordered records.
    ``con``: a ``json_decoder()`` connection, for a load decoding chunk after chunk (opening
    one costs about 25 ms of CPU time).
    """
    if con is None:
        with json_decoder() as own:
            return decode_records(records, own)
    message = duckdb_structure(MESSAGE_DTYPE)
    first, *rest = MESSAGE_UPDATE_TYPES
    kinds = ", ".join(f"'{k}'" for k in MESSAGE_UPDATE_TYPES)
    head = json.dumps({"update_id": "JSON", first: message})
    rest_decoded = ",\n".join(
        f"""case when _update_type = '{kind}' then from_json(update_text,
                '{json.dumps({kind: message})}')."{kind}" end as "_m_{kind}\""""
        for kind in rest)
    rest_messages = " ".join(f"when '{kind}' then \"_m_{kind}\"" for kind in rest)
    # Polars' own layout (string views): DuckDB reads the texts without a copy.
    con.register("records",
                 records.select("update_text").to_arrow(compat_level=pl.CompatLevel.newest()))
    try:
        decoded = con.sql(f"""
            with parsed as (
                -- ``try``: a text that is not JSON gives null instead of failing the batch
                select update_text, try(from_json(update_text, '{head}')) as _d from records),
            checked as (
                select *, case when _d is not null then true else json_valid(update_text) end
                    as _json_valid
                from parsed),
            keyed as (
                select *, case when _d."{first}" is null and _json_valid
                    then json_keys(update_text) end as _keys
                from checked),
            typed as (
                select *, case when _d."{first}" is not null then '{first}'
                    else {_update_type_sql("_keys")} end as _update_type
                from keyed),
            decoded as (
                select _json_valid, _d, _update_type, {rest_decoded},
                       case when _json_valid and _update_type not in ({kinds}) then coalesce(
                           try_cast(json_extract(update_text, '$.*.chat.id')[1] as bigint),
                           try_cast(json_extract(update_text, '$.*.message.chat.id')[1]
                                    as bigint))
                       end as _other_chat_id,
                       case when _json_valid and _update_type not in ({kinds}) then coalesce(
                           try_cast(json_extract(update_text, '$.*.date')[1] as bigint),
                           try_cast(json_extract(update_text, '$.*.message.date')[1] as bigint))
                       end as _other_date
                from typed)
            select _json_valid,
                   struct_pack(update_id := case when json_type(_d.update_id)
                       in ('BIGINT', 'UBIGINT') then try_cast(_d.update_id as bigint) end)
                       as _envelope,
                   _update_type, _other_chat_id, _other_date,
                   json_type(_d.update_id) as _update_id_type,
                   case _update_type when '{first}' then _d."{first}" {rest_messages} end
                       as _message
            from decoded""").pl()
    finally:
        con.unregister("records")
    frame = pl.concat([records, decoded], how="horizontal")
    # Only what differs: a cast to the very same struct type still copied the message
    # (0.4 s CPU per 1M records).
    return frame.cast({name: dtype for name, dtype in DECODED_RECORD_SCHEMA.items()
                       if frame.schema[name] != dtype})


def decode_updates(bronze: pl.DataFrame) -> pl.DataFrame:
    """Bronze rows written before bronze kept the typed message (its ``message`` column null or
    missing), with ``message`` decoded from their ``update_json``: how silver reads a lake
    loaded by an older version without reloading it."""
    records = bronze.select(pl.col("update_json").alias("update_text"))
    decoded = decode_records(records.with_columns(
        pl.lit(None, RAW_RECORD_SCHEMA[c]).alias(c) for c in RAW_RECORD_SCHEMA
        if c != "update_text").select(list(RAW_RECORD_SCHEMA)))
    return bronze.with_columns(decoded.get_column("_message").alias("message"))


def _explode_answers(answers: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    checked = """
        select *, json_valid(body) and coalesce(try_cast(json_extract(body, '$.ok') as boolean),
               false) and json_type(body, '$.result') = 'ARRAY' as is_ok
        from answers
    """
    with duckdb.connect() as con:
        con.register("answers", answers.to_arrow())
        records = con.sql(f"""
            with checked as ({checked})
            select _source_file,
                   unnest(range(cast(json_array_length(body, '$.result') as bigint)))
                       as _record_index,
                   cast(unnest(cast(json_extract(body, '$.result') as json[])) as varchar)
                       as update_text,
                   _ingested_at
            from checked where is_ok
        """).pl()
        broken = con.sql(f"""
            with checked as ({checked})
            select _source_file, cast(-1 as bigint) as _record_index,
                   'getUpdates answer is not ok JSON with a result array' as reason,
                   body as record, _ingested_at
            from checked where not is_ok
        """).pl()
    return records, broken.cast(QUARANTINE_SCHEMA)

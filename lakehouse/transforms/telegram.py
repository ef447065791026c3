"""Telegram updates: raw records -> bronze updates -> silver messages. Pure Polars.

Input of ``bronze_updates`` is one row per received record (``DECODED_RECORD_SCHEMA``): the
Update's JSON text as landed, its source file and index in that file, when the file was landed,
and what the reader decoded from it (validity, update id and its JSON type, top-level keys and
the update type they name, the chat id and date of non-message updates, and ``_message``: the
message, edited message, channel post or edited channel post the update carries, typed as
``MESSAGE_DTYPE``). The decoding is DuckDB's (``lakehouse.lake.jsondecode``), several times
faster than Polars' here, and happens once: bronze keeps the typed message (column
``message``), which is what ``silver_messages`` reads.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, date, datetime, timedelta

import polars as pl

MESSAGE_UPDATE_TYPES = ("message", "edited_message", "channel_post", "edited_channel_post")
# Every update type of Bot API 9.x; the first present one names the update.
UPDATE_TYPES = (
    *MESSAGE_UPDATE_TYPES, "business_connection", "business_message", "edited_business_message",
    "deleted_business_messages", "message_reaction", "message_reaction_count", "inline_query",
    "chosen_inline_result", "callback_query", "shipping_query", "pre_checkout_query",
    "purchased_paid_media", "poll", "poll_answer", "my_chat_member", "chat_member",
    "chat_join_request", "chat_boost", "removed_chat_boost",
)
MESSAGE_TYPES = ("text", "photo", "video", "voice", "audio", "document", "sticker", "animation",
                 "dice", "poll", "location", "contact", "other")

RAW_RECORD_SCHEMA = {
    "_source_file": pl.String,
    "_record_index": pl.Int64,
    "update_text": pl.String,
    "_ingested_at": pl.Datetime("us", "UTC"),
}
QUARANTINE_SCHEMA = {
    "_source_file": pl.String,
    "_record_index": pl.Int64,
    "reason": pl.String,
    "record": pl.String,
    "_ingested_at": pl.Datetime("us", "UTC"),
}
SILVER_SCHEMA = {
    "chat_id": pl.Int64,
    "message_id": pl.Int64,
    "chat_type": pl.String,
    "chat_title": pl.String,
    "user_id": pl.Int64,
    "user_is_bot": pl.Boolean,
    "user_first_name": pl.String,
    "user_username": pl.String,
    "sent_at": pl.Datetime("us", "UTC"),
    "date": pl.Date,
    "text": pl.String,
    "caption": pl.String,
    "message_type": pl.String,
    "text_length": pl.Int64,
    "is_edited": pl.Boolean,
    "edited_at": pl.Datetime("us", "UTC"),
    "reply_to_message_id": pl.Int64,
    "is_forwarded": pl.Boolean,
    "update_id": pl.Int64,
    "_source_file": pl.String,
}

_CHAT = pl.Struct({"id": pl.Int64, "type": pl.String, "title": pl.String})
_USER = pl.Struct({"id": pl.Int64, "is_bot": pl.Boolean, "first_name": pl.String,
                   "username": pl.String})
_FILE = pl.Struct({"file_id": pl.String})
MESSAGE_DTYPE = pl.Struct({
    "message_id": pl.Int64,
    "date": pl.Int64,
    "edit_date": pl.Int64,
    "chat": _CHAT,
    "from": _USER,
    "sender_chat": _CHAT,
    "text": pl.String,
    "caption": pl.String,
    "reply_to_message": pl.Struct({"message_id": pl.Int64}),
    "forward_origin": pl.Struct({"type": pl.String}),
    "forward_date": pl.Int64,
    "photo": pl.List(_FILE),
    "video": _FILE,
    "voice": _FILE,
    "audio": _FILE,
    "document": _FILE,
    "sticker": _FILE,
    "animation": _FILE,
    "dice": pl.Struct({"emoji": pl.String}),
    "poll": pl.Struct({"id": pl.String}),
    "location": pl.Struct({"latitude": pl.Float64}),
    "contact": pl.Struct({"phone_number": pl.String}),
})
BRONZE_SCHEMA = {
    "update_id": pl.Int64,
    "update_type": pl.String,
    "chat_id": pl.Int64,
    "date": pl.Date,
    "update_json": pl.String,
    "message": MESSAGE_DTYPE,  # null for other update types
    "_source_file": pl.String,
    "_record_index": pl.Int64,
    "_ingested_at": pl.Datetime("us", "UTC"),
}
# What the reader decodes from every record besides its message. Which update type a record is
# comes from its top-level keys, and the chat of other update types (reactions, membership,
# callback queries) from a JSON path.
ENVELOPE_DTYPE = pl.Struct({"update_id": pl.Int64})
DECODED_RECORD_SCHEMA = {
    **RAW_RECORD_SCHEMA,
    "_json_valid": pl.Boolean,
    "_envelope": ENVELOPE_DTYPE,
    "_update_type": pl.String,
    "_other_chat_id": pl.Int64,
    "_other_date": pl.Int64,
    "_update_id_type": pl.String,
    "_message": MESSAGE_DTYPE,
}


def _epoch_to_utc(expr: pl.Expr) -> pl.Expr:
    return pl.from_epoch(expr, time_unit="s").dt.replace_time_zone("UTC").dt.cast_time_unit("us")


_INTEGER_JSON_TYPES = ("BIGINT", "UBIGINT")


def _epoch(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def record_problem(days: tuple[date, date] | None = None) -> pl.Expr:
    """Why a record cannot become a bronze row (null when it can), in words for the quarantine.

    A record must be a JSON object with an integer ``update_id``; an update carrying a message
    needs its ``message_id``, ``chat.id`` and an integer ``date``, and with ``days`` (first, last)
    that date's UTC day must lie in that range (the silver partitions), as its ``edit_date``.
    """
    message = pl.col("_message")
    is_message = pl.col("_update_type").is_in(MESSAGE_UPDATE_TYPES)
    sent = message.struct.field("date")
    edited = message.struct.field("edit_date")
    update_id_type = pl.col("_update_id_type")
    problem = (
        pl.when(~pl.col("_json_valid")).then(pl.lit("not valid JSON"))
        .when(update_id_type.is_null() | ~update_id_type.is_in(_INTEGER_JSON_TYPES + ("DOUBLE",)))
        .then(pl.lit("JSON without a numeric update_id"))
        .when(~update_id_type.is_in(_INTEGER_JSON_TYPES)
              | pl.col("_envelope").struct.field("update_id").is_null())
        .then(pl.lit("update_id is not a 64-bit integer"))
        .when(is_message & message.is_null())
        .then(pl.lit("message is not a JSON object"))
        .when(is_message & message.struct.field("message_id").is_null())
        .then(pl.lit("message without an integer message_id"))
        .when(is_message & message.struct.field("chat").struct.field("id").is_null())
        .then(pl.lit("message without an integer chat.id"))
        .when(is_message & sent.is_null())
        .then(pl.lit("message without an integer date"))
    )
    if days is not None:
        first, last = days
        start, end = _epoch(first), _epoch(last + timedelta(days=1))
        problem = (
            problem
            .when(is_message & (sent < start))
            .then(pl.format("message date {} is before the partitions' start {} "
                            "(TELEGRAM_PARTITIONS_START)", sent, pl.lit(first.isoformat())))
            .when(is_message & (sent >= end))
            .then(pl.format("message date {} is after the partitions' end {}", sent,
                            pl.lit(last.isoformat())))
            .when(is_message & edited.is_not_null()
                  & ((edited < start) | (edited >= end)))
            .then(pl.format("edit_date {} is outside the partitions {}..{}", edited,
                            pl.lit(first.isoformat()), pl.lit(last.isoformat())))
        )
    return problem.otherwise(None)


def quarantine_records(records: pl.LazyFrame,
                       days: tuple[date, date] | None = None) -> pl.LazyFrame:
    """Records that cannot become bronze rows (``record_problem``), with the reason."""
    return (
        records.with_columns(record_problem(days).alias("reason"))
        .filter(pl.col("reason").is_not_null())
        .select("_source_file", "_record_index", "reason", pl.col("update_text").alias("record"),
                "_ingested_at")
    )


def bronze_updates(records: pl.LazyFrame, allowed_chat_ids: Collection[int] = (),
                   days: tuple[date, date] | None = None) -> pl.LazyFrame:
    """One row per Update (key: ``_source_file``, ``_record_index``), ``BRONZE_SCHEMA``; the
    records with a ``record_problem`` are left to ``quarantine_records``.

    ``date`` is the UTC day of the message the update is about (an edit keeps the day of the
    original message), else the day the record was landed. With an allow-list, updates of other
    chats are dropped (updates with no chat, like inline queries, are kept).
    """
    message = pl.col("_message")
    other_date = pl.col("_other_date")
    if days is not None:  # a non-message update's own date is only a hint: keep it in range
        other_date = (pl.when(other_date.is_between(_epoch(days[0]),
                                                   _epoch(days[1] + timedelta(days=1)),
                                                   closed="left"))
                      .then(other_date))
    else:
        other_date = pl.when(other_date.is_between(0, _epoch(date(9999, 1, 1)))).then(other_date)
    dated = pl.coalesce(message.struct.field("date"), other_date)
    chat_id = pl.coalesce(message.struct.field("chat").struct.field("id"),
                          pl.col("_other_chat_id"))
    frame = (
        records.filter(record_problem(days).is_null())
        .select(
            pl.col("_envelope").struct.field("update_id").alias("update_id"),
            pl.col("_update_type").alias("update_type"),
            chat_id.alias("chat_id"),
            pl.coalesce(_epoch_to_utc(dated).dt.date(),
                        pl.col("_ingested_at").dt.date()).alias("date"),
            pl.col("update_text").alias("update_json"),
            pl.col("_message").alias("message"),
            "_source_file",
            "_record_index",
            "_ingested_at",
        )
    )
    return only_allowed_chats(frame, allowed_chat_ids)


def only_allowed_chats(bronze: pl.LazyFrame, allowed_chat_ids: Collection[int]) -> pl.LazyFrame:
    """Bronze rows of the allowed chats, and those with no chat; every row without a list."""
    if not allowed_chat_ids:
        return bronze
    return bronze.filter(pl.col("chat_id").is_null()
                         | pl.col("chat_id").is_in(list(allowed_chat_ids)))


def message_type_expr(m: pl.Expr) -> pl.Expr:
    """The kind of content; animation is tested before document, which the API also sets."""
    chain = pl.when(m.struct.field("text").is_not_null()).then(pl.lit("text"))
    for kind in ("animation", "photo", "video", "voice", "audio", "document", "sticker", "dice",
                 "poll", "location", "contact"):
        chain = chain.when(m.struct.field(kind).is_not_null()).then(pl.lit(kind))
    return chain.otherwise(pl.lit("other"))


def _version_key_columns(m: pl.Expr) -> list[pl.Expr]:
    """The columns ordering a message's versions, as ``message_versions`` and ``version_keys``
    both compute them (from the message's ``message_id``, ``chat.id`` and ``edit_date``)."""
    edit_date = m.struct.field("edit_date")
    return [m.struct.field("chat").struct.field("id").alias("chat_id"),
            m.struct.field("message_id").alias("message_id"),
            _epoch_to_utc(edit_date).alias("edited_at"),
            edit_date.is_not_null().alias("is_edited")]


def _versions_only(frame: pl.LazyFrame) -> pl.LazyFrame:
    return frame.filter(pl.col("chat_id").is_not_null() & pl.col("message_id").is_not_null())


def message_versions(bronze: pl.LazyFrame, keep: Sequence[str] = ()) -> pl.LazyFrame:
    """One row per message-like update (every version of a message), typed; row-wise only.

    Input: bronze rows (``update_type``, ``message`` as ``MESSAGE_DTYPE``, ``update_id``,
    ``_source_file``, ``_record_index``, and the ``keep`` columns, passed through); the bronze
    key is kept, so a version can be found again. Being row-wise, it can run batch by batch
    before ``latest_versions``.
    """
    m = pl.col("message")
    user = m.struct.field("from")
    chat = m.struct.field("chat")
    text = m.struct.field("text")
    chat_id, message_id, edited_at, is_edited = _version_key_columns(m)
    return _versions_only(
        bronze.filter(pl.col("update_type").is_in(MESSAGE_UPDATE_TYPES))
        .select(
            chat_id,
            message_id,
            chat.struct.field("type").alias("chat_type"),
            chat.struct.field("title").alias("chat_title"),
            user.struct.field("id").alias("user_id"),
            user.struct.field("is_bot").alias("user_is_bot"),
            user.struct.field("first_name").alias("user_first_name"),
            user.struct.field("username").alias("user_username"),
            _epoch_to_utc(m.struct.field("date")).alias("sent_at"),
            _epoch_to_utc(m.struct.field("date")).dt.date().alias("date"),
            text.alias("text"),
            m.struct.field("caption").alias("caption"),
            message_type_expr(m).alias("message_type"),
            text.str.len_chars().cast(pl.Int64).alias("text_length"),
            is_edited,
            edited_at,
            m.struct.field("reply_to_message").struct.field("message_id")
            .alias("reply_to_message_id"),
            (m.struct.field("forward_origin").is_not_null()
             | m.struct.field("forward_date").is_not_null()).alias("is_forwarded"),
            pl.col("update_id"),
            pl.col("_source_file"),
            pl.col("_record_index"),
            *keep,
        )
    )


def version_keys(bronze: pl.LazyFrame, keep: Sequence[str] = ()) -> pl.LazyFrame:
    """What ``winning_versions`` needs of each message version (the rows ``message_versions``
    gives, the same values), from bronze rows whose ``message`` holds only ``message_id``,
    ``chat.id`` and ``edit_date``: a reader can fetch those fields alone."""
    return _versions_only(
        bronze.filter(pl.col("update_type").is_in(MESSAGE_UPDATE_TYPES))
        .select(*_version_key_columns(pl.col("message")), "update_id", *keep))


_VERSION_ORDER = ["chat_id", "message_id", "edited_at", "update_id"]


def winning_versions(versions: pl.LazyFrame, identity: list[str]) -> pl.LazyFrame:
    """One row per (chat_id, message_id): the ``identity`` columns of its latest version and
    ``is_edited``, true when any version was an edit.

    Versions are ordered by edit time (the original has none), then by update_id for repeated
    deliveries of the same version. Only the narrow key columns are sorted, so this can run
    over a large day's keys alone, the wide rows gathered afterwards by ``identity``.
    """
    return (
        versions.select(*identity, *_VERSION_ORDER, "is_edited")
        .sort(_VERSION_ORDER, nulls_last=False)
        .group_by("chat_id", "message_id", maintain_order=True)
        .agg(*(pl.col(column).last() for column in identity), pl.col("is_edited").any())
    )


def latest_versions(versions: pl.LazyFrame) -> pl.LazyFrame:
    """One row per (chat_id, message_id), the latest edit winning (``winning_versions``);
    ``SILVER_SCHEMA``, in key order."""
    keyed = versions.with_row_index("_row")
    # The winners are in key order already: joining onto them in their order gathers each wide
    # row once, with no sort of the wide rows afterwards.
    return (
        winning_versions(keyed, ["_row"]).select("_row", "is_edited")
        .join(keyed.drop("is_edited"), on="_row", how="left", maintain_order="left")
        .select(list(SILVER_SCHEMA))
        .cast(SILVER_SCHEMA)
    )


def silver_messages(bronze: pl.LazyFrame) -> pl.LazyFrame:
    """Bronze rows to silver messages: ``message_versions`` then ``latest_versions``."""
    return bronze.pipe(message_versions).pipe(latest_versions)

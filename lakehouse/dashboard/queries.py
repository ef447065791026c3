"""What the dashboard shows, read from the Delta tables the pipelines land.

Tweet sentiment (all languages, from gold):

- ``gold/twitter_tweets_by_sentiment`` (sentiment_label, tweet_count): the total and the count per label.
- ``gold/twitter_tweets_per_hour_by_sentiment`` (hour, sentiment_label, tweet_count): the counts over time.

With a language chosen, the same numbers come from ``silver/twitter_sentiment`` (one row per scored
tweet, partitioned by day) for that language: the hourly series over the newest week of data only,
so a refresh reads a week of partitions, not the history.

Telegram activity: ``gold/telegram_messages_per_day`` (messages per UTC day, every chat) and
``gold/telegram_messages_per_hour_weekday_week`` (summed to messages per UTC hour of the day).
Action & Adventure: ``gold/action_adventure_overview`` (one row per release year).

Each request reads the tables' current Delta version, so a new batch shows as soon as its commit
lands; a table that does not exist yet reads as empty (the page says it is waiting).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
import pyarrow as pa
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from lakehouse.lake.location import Lake

BY_SENTIMENT = "twitter_tweets_by_sentiment"
PER_HOUR = "twitter_tweets_per_hour_by_sentiment"
SCORED = "twitter_sentiment"  # silver
TELEGRAM_PER_DAY = "telegram_messages_per_day"
TELEGRAM_PER_HOUR = "telegram_messages_per_hour_weekday_week"
ACTION_ADVENTURE = "action_adventure_overview"
TELEGRAM_DAYS = 30  # the per-day chart ends at the newest day with messages
LABELS = ("Negative", "Neutral", "Positive")
# The chart spans at most this many hours, ending at the newest hour with tweets: a week of
# hourly points stays readable on one screen.
MAX_HOURS = 168


def _open(lake: Lake, table: str, layer: str = "gold") -> DeltaTable | None:
    try:
        return DeltaTable(lake.table_uri(layer, table), storage_options=lake.storage_options or None)
    except TableNotFoundError:
        return None


def _read(lake: Lake, table: str, columns: list[str]) -> tuple[pa.Table | None, int | None]:
    delta = _open(lake, table)
    if delta is None:
        return None, None
    return delta.to_pyarrow_table(columns=columns), delta.version()


def _labels(seen: set[str]) -> list[str]:
    """The three labels first, in their natural order, then any other label a model adds."""
    return [*LABELS, *sorted(seen - set(LABELS))]


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _scored_for_language(lake: Lake, lang: str) -> tuple[pa.Table | None, pa.Table | None, int | None]:
    """Counts per label and per (hour, label) of one language, from silver (newest week of hours)."""
    delta = _open(lake, SCORED, "silver")
    if delta is None:
        return None, None, None
    scored = pl.scan_delta(delta).filter(pl.col("lang") == lang)
    counts = (scored.group_by("sentiment_label").agg(pl.len().cast(pl.Int64).alias("tweet_count"))
              .collect())
    newest = scored.select(pl.col("date").max()).collect().item()
    hourly = pl.DataFrame(schema={"hour": pl.Datetime("us", "UTC"), "sentiment_label": pl.String,
                                  "tweet_count": pl.Int64})
    if newest is not None:
        # Partition pruning on date: only the week the chart can show is read.
        hourly = (scored.filter(pl.col("date") >= newest - timedelta(days=MAX_HOURS // 24))
                  .group_by(pl.col("created_at").dt.truncate("1h").alias("hour"), "sentiment_label")
                  .agg(pl.len().cast(pl.Int64).alias("tweet_count")).collect())
    return counts.to_arrow(), hourly.to_arrow(), delta.version()


def languages(lake: Lake) -> list[str]:
    """The languages scored in the newest week of ``silver/twitter_sentiment`` (the filter's choices)."""
    delta = _open(lake, SCORED, "silver")
    if delta is None:
        return []
    scored = pl.scan_delta(delta)
    newest = scored.select(pl.col("date").max()).collect().item()
    if newest is None:
        return []
    recent = scored.filter(pl.col("date") >= newest - timedelta(days=MAX_HOURS // 24))
    return sorted(v for v in recent.select(pl.col("lang").unique()).collect()["lang"] if v)


def read_summary(lake: Lake, lang: str | None = None) -> dict[str, Any]:
    """The dashboard's JSON: tweet total, count per label, hourly series per label (of one language
    when ``lang`` is given), Telegram activity, the Action & Adventure overview, table versions."""
    if lang:
        counts_table, hours_table, scored_version = _scored_for_language(lake, lang)
        counts_version = hours_version = scored_version
    else:
        counts_table, counts_version = _read(lake, BY_SENTIMENT, ["sentiment_label", "tweet_count"])
        hours_table, hours_version = _read(lake, PER_HOUR, ["hour", "sentiment_label", "tweet_count"])

    by_label: dict[str, int] = {}
    for row in counts_table.to_pylist() if counts_table is not None else []:
        label = row["sentiment_label"]
        by_label[label] = by_label.get(label, 0) + int(row["tweet_count"] or 0)

    per_hour: dict[tuple[datetime, str], int] = {}
    for row in hours_table.to_pylist() if hours_table is not None else []:
        if row["hour"] is None:
            continue
        key = (_as_utc(row["hour"]), row["sentiment_label"])
        per_hour[key] = per_hour.get(key, 0) + int(row["tweet_count"] or 0)

    labels = _labels(set(by_label) | {label for _, label in per_hour})
    hours: list[datetime] = []
    if per_hour:
        last = max(hour for hour, _ in per_hour)
        first = max(min(hour for hour, _ in per_hour), last - timedelta(hours=MAX_HOURS - 1))
        # Every hour of the span, zeros included: a quiet hour is a point at 0, not a gap.
        hours = [first + timedelta(hours=i) for i in range(int((last - first) / timedelta(hours=1)) + 1)]

    return {
        "ready": counts_table is not None,
        "total": sum(by_label.values()),
        "by_sentiment": {label: by_label.get(label, 0) for label in labels},
        "hours": [hour.strftime("%Y-%m-%dT%H:%M:%SZ") for hour in hours],
        "series": {label: [per_hour.get((hour, label), 0) for hour in hours] for label in labels},
        "versions": ({SCORED: counts_version} if lang
                     else {BY_SENTIMENT: counts_version, PER_HOUR: hours_version}),
        "lang": lang or "",
        "languages": languages(lake),
        "telegram": read_telegram(lake),
        "action_adventure": read_action_adventure(lake),
        "read_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def read_telegram(lake: Lake) -> dict[str, Any]:
    """Messages per UTC day (every chat, the newest 30 days with zeros filled) and per UTC hour."""
    days_table, days_version = _read(lake, TELEGRAM_PER_DAY, ["date", "message_count"])
    hours_table, hours_version = _read(lake, TELEGRAM_PER_HOUR, ["hour", "message_count"])
    per_day: dict[date, int] = {}
    for row in days_table.to_pylist() if days_table is not None else []:
        if row["date"] is not None:
            per_day[row["date"]] = per_day.get(row["date"], 0) + int(row["message_count"] or 0)
    days: list[date] = []
    if per_day:
        last = max(per_day)
        first = max(min(per_day), last - timedelta(days=TELEGRAM_DAYS - 1))
        days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    per_hour = [0] * 24
    for row in hours_table.to_pylist() if hours_table is not None else []:
        if row["hour"] is not None:
            per_hour[int(row["hour"])] += int(row["message_count"] or 0)
    return {
        "ready": days_table is not None,
        "days": [d.isoformat() for d in days],
        "per_day": [per_day.get(d, 0) for d in days],
        "per_hour": per_hour,
        "total": sum(per_day.values()),
        "versions": {TELEGRAM_PER_DAY: days_version, TELEGRAM_PER_HOUR: hours_version},
    }


def read_action_adventure(lake: Lake) -> dict[str, Any]:
    """The Action & Adventure overview, one row per release year (oldest first)."""
    columns = ["year", "title_count", "action_count", "adventure_count", "avg_imdb_rating",
               "avg_tmdb_rating", "avg_movielens_rating", "roi"]
    table, version = _read(lake, ACTION_ADVENTURE, columns)
    rows = sorted((r for r in (table.to_pylist() if table is not None else []) if r["year"] is not None),
                  key=lambda r: r["year"])
    return {"ready": table is not None, "rows": rows, "version": version,
            "titles": sum(int(r["title_count"] or 0) for r in rows)}

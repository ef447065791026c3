"""What the dashboard shows, read from the gold Delta tables the twitter pipeline lands.

- ``gold/tweets_by_sentiment`` (sentiment_label, tweet_count): the total and the count per label.
- ``gold/tweets_per_hour_by_sentiment`` (hour, sentiment_label, tweet_count): the counts over time.

Each request reads the tables' current Delta version, so a new batch shows as soon as its gold
commit lands; a table that does not exist yet reads as empty (the page says it is waiting).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from lakehouse.lake.location import Lake

BY_SENTIMENT = "tweets_by_sentiment"
PER_HOUR = "tweets_per_hour_by_sentiment"
LABELS = ("Negative", "Neutral", "Positive")
# The chart spans at most this many hours, ending at the newest hour with tweets: a week of
# hourly points stays readable on one screen.
MAX_HOURS = 168


def _read(lake: Lake, table: str, columns: list[str]) -> tuple[pa.Table | None, int | None]:
    try:
        delta = DeltaTable(lake.table_uri("gold", table), storage_options=lake.storage_options or None)
    except TableNotFoundError:
        return None, None
    return delta.to_pyarrow_table(columns=columns), delta.version()


def _labels(seen: set[str]) -> list[str]:
    """The three labels first, in their natural order, then any other label a model adds."""
    return [*LABELS, *sorted(seen - set(LABELS))]


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def read_summary(lake: Lake) -> dict[str, Any]:
    """The dashboard's JSON: total, count per label, hourly series per label, table versions."""
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
        "versions": {BY_SENTIMENT: counts_version, PER_HOUR: hours_version},
        "read_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }

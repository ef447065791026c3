"""Generated raw Twitter stream lines (valid posts, posts with ids, dates or texts that cannot be
typed, other JSON, broken JSON, bytes that are not UTF-8, blank lines) through the raw -> bronze
and quarantine path: every record ends in bronze or in the quarantine, every tweet of a usable
record is in bronze or quarantined on its own, and no valid post is ever lost."""

import json
from datetime import UTC, datetime

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lakehouse.sources.twitter import decode_records, records_of_file, stream_key
from lakehouse.transforms.twitter import bronze_records, quarantine_records

KEY = stream_key("20261117T090000000000Z-1-0001.ndjson", datetime(2026, 11, 17, 9, tzinfo=UTC))
FIRST_ID = 1_860_000_000_000_000_000

scalar = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                   st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12))
anything = st.recursive(scalar, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=6)
bad_id = st.one_of(st.sampled_from(["abc", "12345678901234567890123", "9999999999999999999",
                                    "0123", "", "-5", "1.5"]),
                   st.integers(-(2**70), 2**70), st.none(), anything)
bad_created_at = st.one_of(st.sampled_from(["yesterday", "2026-13-45T99:00:00.000Z", ""]),
                           st.integers(), st.none(), anything)
bad_tweet = st.one_of(
    st.fixed_dictionaries({"id": bad_id, "text": st.text(max_size=20),
                           "created_at": st.just("2026-11-17T08:00:00.000Z")}),
    st.fixed_dictionaries({"id": st.just("1700000000000000001"), "text": st.text(max_size=20),
                           "created_at": bad_created_at}),
    st.fixed_dictionaries({"id": st.just("1700000000000000002"), "text": anything,
                           "created_at": st.just("2026-11-17T08:00:00.000Z")}),
)
other = st.one_of(
    bad_tweet.map(lambda t: {"data": t}),
    anything.map(lambda a: {"data": a}),
    st.fixed_dictionaries({"errors": st.lists(st.fixed_dictionaries(
        {"title": st.text(max_size=10), "detail": st.text(max_size=10)}), max_size=2)}),
    anything,
)


def _valid(n: int, text: str) -> bytes:
    return json.dumps({"data": {"id": str(FIRST_ID + n), "text": text, "lang": "en",
                                "created_at": "2026-11-17T08:00:00.000Z", "author_id": "42"},
                       "includes": {"users": [{"id": "42", "username": "ana", "name": "Ana"}]}}
                      ).encode()


line = st.one_of(
    st.text(max_size=40).map(lambda text: ("valid", text)),
    st.text(max_size=40).map(lambda text: ("valid", text)),
    other.map(lambda value: ("other", json.dumps(value).encode())),
    other.map(lambda value: ("other", json.dumps(value).encode()[:9])),  # cut short
    st.binary(min_size=1, max_size=30).map(lambda b: ("other", b"\xff" + b.replace(b"\n", b""))),
    st.sampled_from([("other", b""), ("other", b"   "), ("other", b"\r")]),
)


@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(line, min_size=1, max_size=80))
def test_every_generated_line_ends_in_bronze_or_quarantine(generated) -> None:
    raw, valid_ids = [], []
    for n, (kind, payload) in enumerate(generated):
        if kind == "valid":
            raw.append(_valid(n, payload))
            valid_ids.append(str(FIRST_ID + n))
        else:
            raw.append(payload)
    records = decode_records(records_of_file(KEY, b"\n".join(raw) + b"\n"))
    bronze = bronze_records(records.lazy()).collect()
    quarantine = quarantine_records(records.lazy()).collect()

    # Every record (non-blank line) is either usable or set aside whole, never both, never none.
    whole = quarantine.filter(pl.col("json_path").is_null())["_record_index"].to_list()
    in_bronze = bronze["_record_index"].to_list()
    assert len(whole) == len(set(whole)) and len(in_bronze) == len(set(in_bronze))
    assert not set(whole) & set(in_bronze)
    per_tweet = quarantine.filter(pl.col("json_path").is_not_null())
    accounted = set(whole) | set(in_bronze) | set(per_tweet["_record_index"].to_list())
    assert accounted == set(records["_record_index"].to_list())

    # A usable record's tweets: each in bronze or quarantined on its own, with its path.
    data_tweets = dict(zip(records["_record_index"].to_list(),
                           records["tweets"].list.len().fill_null(0).to_list(), strict=True))
    kept = dict(zip(in_bronze, bronze["tweet_count"].to_list(), strict=True))
    set_aside = per_tweet.filter(pl.col("json_path").str.starts_with("$.data"))
    rejected = set_aside.group_by("_record_index").len()
    rejected_by_record = dict(zip(rejected["_record_index"].to_list(), rejected["len"].to_list(),
                                  strict=True))
    for index, count in data_tweets.items():
        if index not in set(whole):
            assert kept.get(index, 0) + rejected_by_record.get(index, 0) == count, index
    assert per_tweet["reason"].is_not_null().all() and quarantine["record"].is_not_null().all()

    # No valid post is lost: each is in bronze, typed, under its own id.
    landed = bronze.select(pl.col("tweets").explode().struct.field("id")).to_series().to_list()
    assert sorted(valid_ids) == sorted(i for i in landed if i in set(valid_ids))

"""Benchmark: N tweets from raw stream NDJSON batches to silver tweets with sentiment.

Input, generated here in the sample stream's v2 format (one ``{"data", "includes"}`` line per
tweet): about half retweets (``RT @user: ...`` repeating a recent original's text, as in the
1% sample stream, the original in ``includes.tweets`` as the ``referenced_tweets.id``
expansion puts it), originals in Portuguese and English (and a few other languages) built from
film-talk phrases plus random words, so almost every original text is distinct.

Compared, each in its own process (so its peak RSS is its own):
- ``lakehouse``: what the assets run per raw batch: decode (DuckDB), bronze Delta write,
  bronze read back, silver tweets + tweet_sentiment (Polars: vectorised cleaning, lexicon join
  over distinct cleaned texts), upserted into Delta;
- ``lakehouse_direct``: the same without the bronze write and read-back;
- ``reference``: the streaming-sentiment pipeline's way (README, Origins): per row
  ``json.loads``, ``re`` cleaning and one TextBlob / LeIA call per tweet, rows deduplicated by
  id, Parquet. It is run on the first ``--reference-tweets`` tweets and its time scaled linearly
  to N (it is per-row work);
- ``floor_polars`` / ``floor_pyarrow`` / ``floor_duckdb``: read the same NDJSON and write the
  fields silver needs (id, text, lang, created_at, author_id) as Parquet; the fastest is the
  floor.

Usage: python bench/tweets.py [--tweets 1000000] [--batches 10] [--reference-tweets 50000]
"""

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from harness import print_report, report_child, run_children

PREFIX = "raw/twitter/stream/2026/11/16"


def _words(text: str) -> list[str]:
    return text.split()


WORDS = {
    "en": _words("good great bad awful love hate boring amazing terrible beautiful slow fun sad "
                 "happy best worst brilliant weak strong perfect dull nice ugly scary funny long "
                 "short today tonight again really very not never movie film scene actor cast "
                 "plot ending trailer ticket popcorn sequel director music story screen night "
                 "friends weekend"),
    "pt": _words("bom ótimo ruim péssimo amo odeio chato incrível lindo lento divertido triste "
                 "feliz melhor pior brilhante fraco forte perfeito feio assustador engraçado "
                 "longo curto hoje noite de novo muito não nunca filme cena ator elenco roteiro "
                 "final trailer ingresso pipoca sequência diretor trilha história tela amigos "
                 "sábado"),
    "es": _words("bueno malo película cine final noche amigos genial aburrido"),
    "ja": _words("映画 最高 面白い 悲しい 今日"),
}


def generate(root: Path, tweets: int, batches: int, retweet_share: float = 0.5) -> list[str]:
    from lakehouse.sources.twitter_sample import FILMS, TEXTS, USERS, iso_ms, snowflake, user_object

    rng = random.Random(2026)
    users = [user_object(i) for i in range(len(USERS))]
    start_ms = int(datetime(2026, 11, 16, tzinfo=UTC).timestamp() * 1000)
    step = 86_400_000 / tweets
    # id, text, lang, author username, the tweet itself (a retweet's includes.tweets)
    originals: list[tuple[str, str, str, str, dict]] = []
    folder = root / PREFIX
    folder.mkdir(parents=True, exist_ok=True)
    keys, per_batch, n = [], -(-tweets // batches), 0
    langs, weights = ["pt", "en", "es", "ja"], [45, 45, 6, 4]
    for batch in range(batches):
        lines = []
        for _ in range(min(per_batch, tweets - n)):
            moment = start_ms + int(n * step)
            tid = str(snowflake(moment, n))
            author = users[n % len(users)]
            tweet: dict = {"id": tid, "created_at": iso_ms(moment), "author_id": author["id"],
                           "conversation_id": tid, "edit_history_tweet_ids": [tid],
                           "public_metrics": {"retweet_count": 0, "reply_count": 0,
                                              "like_count": 0, "quote_count": 0}}
            if originals and rng.random() < retweet_share:
                # Popular tweets get retweeted many times: pick among the recent ones.
                oid, text, lang, username, original = originals[
                    -1 - min(int(rng.expovariate(1 / 300)), len(originals) - 1)]
                text = f"RT @{username}: {text}"
                tweet["text"] = text[:139] + "…" if len(text) > 140 else text
                tweet["referenced_tweets"] = [{"type": "retweeted", "id": oid}]
                tweet["entities"] = {"mentions": [{"start": 3, "end": 4 + len(username),
                                                   "username": username, "id": "1"}]}
            else:
                lang = rng.choices(langs, weights)[0]
                phrase = rng.choice(TEXTS[lang]).format(film=rng.choice(FILMS),
                                                        url=f"https://t.co/{tid[-10:]}")
                extra = " ".join(rng.choices(WORDS[lang], k=rng.randint(3, 9)))
                text = f"{phrase} {extra}"
                tweet["text"] = text
                originals.append((tid, text, lang, author["username"], tweet))
                if len(originals) > 5000:
                    del originals[:1000]
            tweet["lang"] = lang
            includes: dict = {"users": [author]}
            if "referenced_tweets" in tweet:  # the referenced_tweets.id expansion
                includes["tweets"] = [original]
            lines.append(json.dumps({"data": tweet, "includes": includes},
                                    ensure_ascii=False, separators=(",", ":")))
            n += 1
        name = f"20261116T{batch:06d}000000Z-1-{batch:04d}.ndjson"
        (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
        keys.append(f"{PREFIX}/{name}")
    return keys


# -- methods (each runs in a child process) ---------------------------------------------------


def run_lakehouse(root: Path, keys: list[str], out: Path, direct: bool) -> int:
    import polars as pl

    from lakehouse.lake.delta import append_replacing_sources, scan
    from lakehouse.lake.location import Lake
    from lakehouse.load.twitter import BRONZE, SILVER_INPUT_COLUMNS, merge_days, upsert_tweets
    from lakehouse.sources.twitter import decode_records, records_of_file
    from lakehouse.transforms.sentiment import tweet_sentiment
    from lakehouse.transforms.twitter import bronze_records, sentiment_input, silver_tweets

    lake = Lake.from_env(str(root))
    rows = 0
    for key in keys:  # one raw batch per run, as the sensor asks
        bronze = bronze_records(decode_records(
            records_of_file(key, lake.read_bytes(key))).lazy()).collect()
        if not direct:
            uri = lake.table_uri(*BRONZE)
            append_replacing_sources(lake, uri, bronze, [key])
            bronze = (scan(lake, uri).select(SILVER_INPUT_COLUMNS)
                      .filter(pl.col("_source_file") == key).collect())
        tweets = silver_tweets(bronze.lazy()).collect(engine="in-memory")
        del bronze
        sentiment = tweet_sentiment(sentiment_input(tweets.lazy())).collect()
        upsert_tweets(lake, str(out / "tweets"), tweets)
        merge_days(lake, str(out / "tweet_sentiment"), sentiment, ["id"])
        rows += sentiment.height
    return rows


def run_reference(root: Path, keys: list[str], out: Path, limit: int) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from lakehouse.transforms.sentiment import clean_text_py, reference_sentiment

    rows: dict[str, dict] = {}
    seen = 0
    for key in keys:
        with open(root / key, encoding="utf-8") as f:
            for line in f:
                if seen >= limit:
                    break
                seen += 1
                tweet = json.loads(line)["data"]
                if tweet.get("lang") not in ("en", "pt"):
                    continue
                clean = clean_text_py(tweet["text"])
                polarity, subjectivity, label = reference_sentiment(clean, tweet["lang"])
                created = datetime.strptime(tweet["created_at"], "%Y-%m-%dT%H:%M:%S.%f%z")
                rows[tweet["id"]] = {"id": tweet["id"], "lang": tweet["lang"],
                                     "clean_text": clean, "polarity": polarity,
                                     "subjectivity": subjectivity, "sentiment_label": label,
                                     "created_at": created, "date": created.date()}
    table = pa.Table.from_pylist(list(rows.values()))
    pq.write_table(table, out / "reference.parquet")
    return seen


def run_floor(engine: str, root: Path, keys: list[str], out: Path) -> int:
    files = [str(root / k) for k in keys]
    target = str(out / f"floor_{engine}.parquet")
    if engine == "duckdb":
        import duckdb

        con = duckdb.connect()
        con.execute(f"""copy (select data.id as id, data.text as text, data.lang as lang,
            data.created_at as created_at, data.author_id as author_id
            from read_ndjson({files!r}, columns={{'data': 'STRUCT(id VARCHAR, text VARCHAR,
              lang VARCHAR, created_at VARCHAR, author_id VARCHAR)'}})) to '{target}'
            (format parquet)""")
        return con.execute(f"select count(*) from '{target}'").fetchone()[0]
    if engine == "polars":
        import polars as pl

        data = pl.Struct({"id": pl.String, "text": pl.String, "lang": pl.String,
                          "created_at": pl.String, "author_id": pl.String})
        pl.scan_ndjson(files, schema={"data": data}).select(
            pl.col("data").struct.unnest()).sink_parquet(target)
        return pl.scan_parquet(target).select(pl.len()).collect().item()
    import pyarrow as pa
    import pyarrow.json as pj
    import pyarrow.parquet as pq

    data_type = pa.struct([(n, pa.string()) for n in
                           ("id", "text", "lang", "created_at", "author_id")])
    options = pj.ParseOptions(explicit_schema=pa.schema([("data", data_type)]),
                              unexpected_field_behavior="ignore")
    writer, rows = None, 0
    for f in files:
        data = pj.read_json(f, parse_options=options).column("data").combine_chunks()
        table = pa.Table.from_struct_array(data)
        writer = writer or pq.ParquetWriter(target, table.schema)
        writer.write_table(table)
        rows += table.num_rows
    if writer:
        writer.close()
    return rows


def child(method: str, root: Path, keys: list[str], out: Path, reference_limit: int) -> None:
    # Library imports are not the work being measured (Dagster alone takes about a second).
    if method.startswith("lakehouse"):
        import lakehouse.defs.twitter.assets  # noqa: F401
        from lakehouse.transforms.sentiment import english_lexicon, portuguese_lexicon
        english_lexicon(), portuguese_lexicon()  # loading the lexicons is a one-off per process
    if method == "reference":
        from textblob import TextBlob

        from lakehouse.transforms.sentiment import reference_sentiment
        TextBlob("warm up").sentiment, reference_sentiment("aquecer", "pt")
    if method in ("lakehouse", "lakehouse_direct"):
        report_child(method, lambda: run_lakehouse(root, keys, out,
                                                   direct=method == "lakehouse_direct"))
    elif method == "reference":
        report_child(method, lambda: run_reference(root, keys, out, reference_limit))
    else:
        report_child(method, lambda: run_floor(method.removeprefix("floor_"), root, keys, out))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tweets", type=int, default=1_000_000)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--reference-tweets", type=int, default=50_000,
                        help="Tweets the per-row reference runs on; its time is scaled to N.")
    parser.add_argument("--generate", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        keys = generate(Path(args.root), args.tweets, args.batches)
        (Path(args.root) / "keys.json").write_text(json.dumps(keys))
        return
    if args.child:
        root = Path(args.root)
        keys = json.loads((root / "keys.json").read_text())
        out = root / f"out_{args.child}"
        out.mkdir()
        child(args.child, root, keys, out, args.reference_tweets)
        return
    root = Path(tempfile.mkdtemp(prefix="bench_tweets_"))
    try:
        t0 = time.perf_counter()
        # Generated in a child too: a child's peak RSS counts its parent's at fork time.
        subprocess.run([sys.executable, __file__, "--generate", "--root", str(root), "--tweets",
                        str(args.tweets), "--batches", str(args.batches)], check=True)
        keys = json.loads((root / "keys.json").read_text())
        size = sum((root / k).stat().st_size for k in keys) / 2**20
        print(f"{args.tweets:,} tweets in {len(keys)} stream batches, {size:,.0f} MiB raw NDJSON "
              f"(generated in {time.perf_counter() - t0:.1f} s)", flush=True)
        results = run_children(__file__, root, (
            "reference", "floor_duckdb", "floor_polars", "floor_pyarrow", "lakehouse_direct",
            "lakehouse"), ["--reference-tweets", str(args.reference_tweets)])
        ref = results["reference"]
        measured = ref["seconds"]
        ref["seconds"] = measured * args.tweets / ref["rows"]
        ref["rows"] = args.tweets
        print(f"reference measured on {min(args.reference_tweets, args.tweets):,} tweets in "
              f"{measured:.2f} s, scaled to {args.tweets:,}: {ref['seconds']:.1f} s")
        print_report(results, args.tweets, "lakehouse rows = scored tweets (en + pt) in "
                     "silver.twitter_sentiment")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

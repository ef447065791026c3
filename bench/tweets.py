"""Benchmark: N tweets from raw stream NDJSON batches through bronze to every silver table.

Input, generated here in the filtered stream's v2 format (one ``{"data", "includes",
"matching_rules"}`` line per tweet): about half retweets (``RT @user: ...`` repeating a recent
original's text, as in the 1% sample stream, the original in ``includes.tweets`` as the
``referenced_tweets.id`` expansion puts it), originals in Portuguese and English (and a few
other languages) built from film-talk phrases plus random words, so almost every original text
is distinct, with their entities (hashtags, urls; a retweet's mention), posting client, film
context annotations, a photo on one original in ten (``includes.media``) and the rules that
matched. Batches of ``--batch-tweets`` lines (about 128 MB, the stream's flush size, at 100,000).

Compared, each in its own process (so its peak RSS is its own):
- ``lakehouse``: what the assets run, one raw batch per run as the sensor asks:
  ``load_bronze`` (decode, bronze and quarantine Delta writes, ledger; the rows kept for
  silver, as the bronze asset does when its run materialises silver too) then
  ``load_silver`` (from those rows; tweets, users, media, hashtags, mentions, urls, matching
  rules and sentiment upserted into Delta), each stage timed (wall, CPU, peak RSS);
- ``reference``: the streaming-sentiment pipeline's way (README, Origins): per row
  ``json.loads``, ``re`` cleaning and one TextBlob / LeIA call per tweet, rows deduplicated by
  id, Parquet. It is run on the first ``--reference-tweets`` tweets and its time scaled linearly
  to N (it is per-row work);
- ``floor_pyarrow`` / ``floor_duckdb``: read the NDJSON and write five string fields (id, text,
  lang, created_at, author_id) as Parquet; the faster is the report's "floor";
- ``honest_duckdb``: the honest floor: DuckDB reads every field silver keeps, typed as silver
  reads them (nested entities, includes, rules), a batch at a time, and writes each silver
  table's fields as Parquet (no dedup, quarantine, sentiment or Delta).

Figures: wall seconds, CPU seconds (every thread: on a shared machine they move far less than
wall time) and peak RSS per method; the ratios are what count.

Usage: python bench/tweets.py [--tweets 1000000] [--batch-tweets 100000]
                              [--reference-tweets 50000]
       python bench/tweets.py --scale --tweets 250000   (the assets' path at 1x, 2x, 4x)
Or from Python: ``run(n_tweets)`` / ``scale(base, batch_tweets)`` return the figures.
"""

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from harness import HONEST, print_honest, print_report, report_child, run_children

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


def generate(root: Path, tweets: int, batch_tweets: int,
             retweet_share: float = 0.5) -> list[str]:
    """Stream batches of ``batch_tweets`` lines each (the last one may be shorter), in the
    filtered stream's format: entities (hashtags, urls, mentions) where the text has them,
    the posting client, context annotations naming a film, a photo or video on some
    originals (``includes.media``), the rules that matched (``matching_rules``)."""
    from lakehouse.sources.twitter_sample import (
        CLIENTS,
        FILMS,
        MOVIE_DOMAIN,
        SAMPLE_RULES,
        TEXTS,
        USERS,
        _entities,
        iso_ms,
        snowflake,
        user_object,
    )

    rng = random.Random(2026)
    users = [user_object(i) for i in range(len(USERS))]
    start_ms = int(datetime(2026, 11, 16, tzinfo=UTC).timestamp() * 1000)
    step = 86_400_000 / tweets
    # id, text, lang, author username, the tweet itself (a retweet's includes.tweets)
    originals: list[tuple[str, str, str, str, dict]] = []
    folder = root / PREFIX
    folder.mkdir(parents=True, exist_ok=True)
    keys, n = [], 0
    langs, weights = ["pt", "en", "es", "ja"], [45, 45, 6, 4]
    rules = [{"id": r["id"], "tag": r["tag"]} for r in SAMPLE_RULES]
    for batch in range(-(-tweets // batch_tweets)):
        lines = []
        for _ in range(min(batch_tweets, tweets - n)):
            moment = start_ms + int(n * step)
            tid = str(snowflake(moment, n))
            author = users[n % len(users)]
            tweet: dict = {"id": tid, "created_at": iso_ms(moment), "author_id": author["id"],
                           "conversation_id": tid, "edit_history_tweet_ids": [tid],
                           "source": CLIENTS[n % len(CLIENTS)],
                           "public_metrics": {"retweet_count": 0, "reply_count": 0,
                                              "like_count": 0, "quote_count": 0}}
            media = None
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
                url = f"https://t.co/{tid[-10:]}"
                film = rng.choice(FILMS)
                phrase = rng.choice(TEXTS[lang]).format(film=film, url=url)
                extra = " ".join(rng.choices(WORDS[lang], k=rng.randint(3, 9)))
                text = f"{phrase} {extra}"
                tweet["text"] = text
                entities = _entities(text, {url: f"https://example.com/films/{tid[-5:]}"})
                if entities:
                    tweet["entities"] = entities
                if film in text:
                    tweet["context_annotations"] = [{"domain": MOVIE_DOMAIN, "entity": {
                        "id": f"15{FILMS.index(film):02d}000000000000001", "name": film}}]
                if rng.random() < 0.1:
                    media = {"media_key": f"3_{tid}", "type": "photo", "width": 1200,
                             "height": 675, "url": f"https://pbs.twimg.com/media/F{tid[-10:]}.jpg",
                             "alt_text": "Cartaz do filme / film poster"}
                    tweet["attachments"] = {"media_keys": [media["media_key"]]}
                originals.append((tid, text, lang, author["username"], tweet))
                if len(originals) > 5000:
                    del originals[:1000]
            tweet["lang"] = lang
            includes: dict = {"users": [author]}
            if "referenced_tweets" in tweet:  # the referenced_tweets.id expansion
                includes["tweets"] = [original]
            if media:
                includes["media"] = [media]
            line = {"data": tweet, "includes": includes,
                    "matching_rules": rules if lang == "pt" else rules[:1]}
            lines.append(json.dumps(line, ensure_ascii=False, separators=(",", ":")))
            n += 1
        name = f"20261116T{batch:06d}000000Z-1-{batch:04d}.ndjson"
        (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
        keys.append(f"{PREFIX}/{name}")
    return keys


# -- methods (each runs in a child process) ---------------------------------------------------


def run_lakehouse(root: Path, keys: list[str], out: Path) -> int:
    """What the assets run, one raw batch per run as the sensor asks: ``load_bronze`` (the
    bronze asset) then ``load_silver`` (the silver asset), each stage timed."""
    from lakehouse.lake.location import Lake
    from lakehouse.lake.stagetimes import StageTimes
    from lakehouse.load.twitter import load_bronze, load_silver

    lake = Lake.from_env(str(root))
    # stage: [wall s, CPU s, peak RSS MiB when it last ended, MiB the process peak rose in it]
    profile: dict[str, list[float]] = {}
    rows = 0
    for key in keys:
        # A fresh StageTimes per batch lists the stages in the order they ran, so how much the
        # process's peak RSS rose in each stage (what it held on top of what was already held)
        # is the difference from the stage before: the figure that says where memory goes.
        times = StageTimes()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        load_bronze(lake, [key], times=times, keep_for_silver=True)
        rows += load_silver(lake, [key], times=times).tweets.height
        for stage, seconds in times.seconds.items():
            peak = times.peak_rss_mib[stage]
            wall, cpu, _, rose = profile.get(stage, [0.0, 0.0, 0.0, 0.0])
            profile[stage] = [wall + seconds, cpu + times.cpu_seconds[stage], peak,
                              rose + max(peak - before, 0.0)]
            before = max(before, peak)
    (out / "profile.json").write_text(json.dumps(profile))
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


def _duckdb_type(dtype: object) -> str:
    """A Polars dtype as a DuckDB column type (the floors read the schemas silver reads)."""
    import polars as pl

    if isinstance(dtype, pl.Struct):
        return "STRUCT(" + ", ".join(f'"{f.name}" {_duckdb_type(f.dtype)}'
                                     for f in dtype.fields) + ")"
    if isinstance(dtype, pl.List):
        return _duckdb_type(dtype.inner) + "[]"
    return {pl.String: "VARCHAR", pl.Int64: "BIGINT", pl.Boolean: "BOOLEAN"}[dtype]


def _fields(struct: str, names: tuple[str, ...]) -> str:
    return ", ".join(f"{struct}.{name} as {name}" for name in names)


PUBLIC_METRICS = ("retweet_count", "reply_count", "like_count", "quote_count", "bookmark_count",
                  "impression_count")
USER_METRICS = ("followers_count", "following_count", "tweet_count", "listed_count",
                "like_count", "media_count")
_TS = "strptime({}, '%Y-%m-%dT%H:%M:%S.%gZ')::timestamptz"
# Every table silver keeps, every field typed and flattened, from the typed stream lines.
HONEST_TABLES = {
    "tweets": f"""
        with t as (select unnest([data] || coalesce(includes.tweets, [])) as t from lines)
        select t.id, coalesce(t.note_tweet.text, t.text) as text,
          t.note_tweet.text is not null as has_note_tweet,
          {_TS.format('t.created_at')} as created_at,
          {_TS.format('t.created_at')}::date as date, t.author_id, t.conversation_id, t.lang,
          t.source, t.possibly_sensitive,
          list_filter(t.referenced_tweets, lambda r: r.type = 'retweeted')[1].id as retweeted_id,
          list_filter(t.referenced_tweets, lambda r: r.type = 'replied_to')[1].id as replied_to_id,
          list_filter(t.referenced_tweets, lambda r: r.type = 'quoted')[1].id as quoted_id,
          t.in_reply_to_user_id, {_fields('t.public_metrics', PUBLIC_METRICS)}, t.geo.place_id,
          t.edit_history_tweet_ids, t.context_annotations,
          t.attachments.media_keys as media_keys from t""",
    "users": f"""
        with u as (select unnest(includes.users) as u from lines)
        select u.id, u.username, u.name, {_TS.format('u.created_at')} as created_at,
          u.location, u.verified, u.verified_type, u.protected, u.url, u.description,
          {_fields('u.public_metrics', USER_METRICS)} from u""",
    "media": """
        with m as (select unnest(includes.media) as m from lines)
        select m.media_key, m.type, m.url, m.preview_image_url, m.duration_ms, m.height,
          m.width, m.alt_text, m.public_metrics.view_count from m""",
    **{kind: f"""
        with e as (select data.id as tweet_id, {_TS.format('data.created_at')} as created_at,
            unnest(data.entities.{kind}) as e,
            unnest(range(len(data.entities.{kind}))) as position from lines)
        select tweet_id, created_at, created_at::date as date, position, e.* from e"""
       for kind in ("hashtags", "mentions", "urls")},
    "matching_rules": f"""
        select data.id as tweet_id, {_TS.format('data.created_at')} as created_at,
          unnest(matching_rules, recursive := true) from lines""",
}


def run_honest_floor(root: Path, keys: list[str], out: Path) -> int:
    """DuckDB reads the stream lines typed as silver reads them (every field, nested
    entities, includes) once, and writes every silver table's fields as Parquet: no dedup,
    no quarantine, no sentiment, no Delta."""
    import duckdb

    from lakehouse.transforms.twitter import STREAM_LINE_DTYPE

    columns = {f.name: _duckdb_type(f.dtype) for f in STREAM_LINE_DTYPE.fields}
    con, rows = duckdb.connect(), 0
    for n, key in enumerate(keys):  # a batch at a time, as the assets load them
        con.execute(f"create or replace table lines as select * from "
                    f"read_ndjson('{root / key}', columns={columns!r})")
        for table, query in HONEST_TABLES.items():
            (out / table).mkdir(exist_ok=True)
            con.execute(f"copy ({query}) to '{out / table / f'{n:05d}'}.parquet' "
                        "(format parquet)")
        rows += con.execute("select count(*) from lines").fetchone()[0]
    return rows


def run_floor(engine: str, root: Path, keys: list[str], out: Path) -> int:
    """Five string fields (id, text, lang, created_at, author_id) read and written."""
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
    if method == "lakehouse":
        import lakehouse.defs.twitter.assets  # noqa: F401
        from lakehouse.transforms.sentiment import english_lexicon, portuguese_lexicon
        english_lexicon(), portuguese_lexicon()  # loading the lexicons is a one-off per process
        report_child(method, lambda: run_lakehouse(root, keys, out))
    elif method == "reference":
        from textblob import TextBlob

        from lakehouse.transforms.sentiment import reference_sentiment
        TextBlob("warm up").sentiment, reference_sentiment("aquecer", "pt")
        report_child(method, lambda: run_reference(root, keys, out, reference_limit))
    elif method == HONEST:
        report_child(method, lambda: run_honest_floor(root, keys, out))
    else:
        report_child(method, lambda: run_floor(method.removeprefix("floor_"), root, keys, out))


# -- the parent: generate, run each method in its own process, report ------------------------

METHODS = ("reference", "floor_duckdb", "floor_pyarrow", HONEST, "lakehouse")


def _generate(root: Path, tweets: int, batch_tweets: int) -> list[str]:
    # Generated in a child too: a child's peak RSS counts its parent's at fork time.
    subprocess.run([sys.executable, __file__, "--generate", "--root", str(root), "--tweets",
                    str(tweets), "--batch-tweets", str(batch_tweets)], check=True)
    return json.loads((root / "keys.json").read_text())


def run(n_tweets: int = 1_000_000, batch_tweets: int = 100_000,
        reference_tweets: int = 50_000, methods: tuple[str, ...] = METHODS,
        verbose: bool = True) -> dict:
    """Generate ``n_tweets`` in stream batches of ``batch_tweets`` and run ``methods`` on them,
    each in its own process. Returns ``{"raw_mib", "results": {method: {seconds, rows,
    peak_rss_mib, cpu_seconds}}, "profile": {stage: [wall s, CPU s, peak RSS MiB at its
    end, MiB the peak rose in it]}}`` (the
    reference's times scaled to N)."""
    root = Path(tempfile.mkdtemp(prefix="bench_tweets_"))
    try:
        t0 = time.perf_counter()
        keys = _generate(root, n_tweets, batch_tweets)
        raw_mib = sum((root / k).stat().st_size for k in keys) / 2**20
        if verbose:
            print(f"{n_tweets:,} tweets in {len(keys)} stream batches, {raw_mib:,.0f} MiB raw "
                  f"NDJSON (generated in {time.perf_counter() - t0:.1f} s)", flush=True)
        results = run_children(__file__, root, methods,
                               ["--reference-tweets", str(reference_tweets)])
        if "reference" in results:
            ref = results["reference"]
            measured = ref["seconds"]
            ref["seconds"] = measured * n_tweets / ref["rows"]
            ref["cpu_seconds"] = ref["cpu_seconds"] * n_tweets / ref["rows"]
            ref["rows"] = n_tweets
            if verbose:
                print(f"reference measured on {min(reference_tweets, n_tweets):,} tweets in "
                      f"{measured:.2f} s, scaled to {n_tweets:,}: {ref['seconds']:.1f} s")
        profile_file = root / "out_lakehouse" / "profile.json"
        profile = json.loads(profile_file.read_text()) if profile_file.exists() else {}
        return {"tweets": n_tweets, "raw_mib": raw_mib, "results": results, "profile": profile}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def print_profile(profile: dict[str, list[float]]) -> None:
    """Wall and CPU seconds per stage of the assets' path (CPU: every thread of the process;
    it moves much less than wall time when other work shares the machine), and memory: how
    many MiB the process's peak RSS rose during the stage, over every batch (the stages'
    rises add up to the run's peak less what the process held before the first batch)."""
    wall = sum(p[0] for p in profile.values())
    cpu = sum(p[1] for p in profile.values())
    rose = sum(p[3] for p in profile.values())
    print(f"\nlakehouse, time per stage ({len(profile)} stages; wall {wall:.2f} s, "
          f"CPU {cpu:.2f} s; the peak RSS rose {rose:,.0f} MiB over the batches):")
    print(f"  {'stage':<32}{'wall s':>8}{'wall %':>8}{'CPU s':>8}{'CPU %':>8}"
          f"{'peak +MiB':>11}")
    for stage, (w, c, _, up) in sorted(profile.items(), key=lambda kv: -kv[1][0]):
        print(f"  {stage:<32}{w:>8.2f}{100 * w / wall:>8.1f}{c:>8.2f}{100 * c / cpu:>8.1f}"
              f"{up:>11,.0f}")


def scale(base: int, batch_tweets: int, factors: tuple[int, ...] = (1, 2, 4)) -> list[dict]:
    """The assets' path at ``factors`` times ``base`` tweets (same batch size: more raw
    files); time (wall and CPU) and peak RSS per size, and their ratios to the first size."""
    rows: list[dict] = []
    for factor in factors:
        result = run(base * factor, batch_tweets, methods=("lakehouse",), verbose=False)
        rows.append({"factor": factor, **result["results"]["lakehouse"],
                     "raw_mib": result["raw_mib"]})
        first, r = rows[0], rows[-1]
        print(f"{factor}x {base * factor:>11,} tweets {r['raw_mib']:>7,.0f} MiB raw: "
              f"{r['seconds']:>8.2f} s ({r['seconds'] / first['seconds']:.2f}x), CPU "
              f"{r['cpu_seconds']:>8.2f} s ({r['cpu_seconds'] / first['cpu_seconds']:.2f}x), "
              f"peak RSS {r['peak_rss_mib']:>6,.0f} MiB "
              f"({r['peak_rss_mib'] / first['peak_rss_mib']:.2f}x)", flush=True)
    last, first = rows[-1], rows[0]
    print(f"{last['factor']}x input: {last['seconds'] / first['seconds']:.2f}x wall time, "
          f"{last['cpu_seconds'] / first['cpu_seconds']:.2f}x CPU time (target <= "
          f"{1.1 * last['factor']:.1f}x), {last['peak_rss_mib'] / first['peak_rss_mib']:.2f}x "
          "peak RSS (target <= 1.25x)")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tweets", type=int, default=1_000_000)
    parser.add_argument("--batch-tweets", type=int, default=100_000,
                        help="Tweets per raw stream batch (one load run each).")
    parser.add_argument("--reference-tweets", type=int, default=50_000,
                        help="Tweets the per-row reference runs on; its time is scaled to N.")
    parser.add_argument("--scale", action="store_true",
                        help="Run only the assets' path at 1x, 2x and 4x --tweets.")
    parser.add_argument("--generate", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        keys = generate(Path(args.root), args.tweets, args.batch_tweets)
        (Path(args.root) / "keys.json").write_text(json.dumps(keys))
        return
    if args.child:
        root = Path(args.root)
        keys = json.loads((root / "keys.json").read_text())
        out = root / f"out_{args.child}"
        out.mkdir()
        child(args.child, root, keys, out, args.reference_tweets)
        return
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    if args.scale:
        scale(args.tweets, args.batch_tweets)
        return
    result = run(args.tweets, args.batch_tweets, args.reference_tweets)
    print_report(result["results"], args.tweets, "lakehouse rows = tweets upserted into "
                 "silver tweets (the stream's and the ones they reference)")
    print_honest(result["results"], "every field silver keeps, typed, nested entities, "
                 "includes and rules, written as Parquet")
    print_profile(result["profile"])


if __name__ == "__main__":
    main()

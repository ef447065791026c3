"""Benchmark: N Telegram updates from landed raw NDJSON segments to silver.

Compares, each in its own process (so peak RSS is its own):
- ``lakehouse``: our path, raw segments -> bronze Delta -> silver Delta, the very functions the
  bronze and silver assets call;
- ``reference``: the replaced Telegram ETL's way (README, Origins): stdlib json, a dict per
  record, a pyarrow table, Parquet;
- ``floor_*``: Polars, pyarrow and DuckDB reading the same raw input and writing just the fields
  silver needs as Parquet, no cleaning, no dedup;
- ``honest_duckdb``: DuckDB doing the work the layer contracts ask, as fast as it can: the raw
  lines kept and numbered per file, typed as bronze keeps them (envelope and message struct),
  written as bronze-like Parquet, then each message's latest version as silver's columns (no
  quarantine, no Delta). ``lakehouse`` is measured against it (wall and CPU), as in tweets.py.

The ``lakehouse`` method also prints where its time goes, per stage (wall and CPU seconds; CPU
counts every thread and moves less with the machine's load).

``--scale 1,2,4`` runs ``lakehouse``, ``floor_duckdb`` and ``honest_duckdb`` at 1x, 2x and 4x
``--updates`` instead, the input growing by days (``--updates`` a day, as a busy group over
months), and prints time and peak RSS per size against 1x: linear time, flat memory is the aim
(4x input <= 4.4x time, <= 1.25x peak RSS).

Usage: python bench/telegram_etl.py [--updates 1000000] [--segments 16] [--scale 1,2,4]
Other benches call ``run(n_updates) -> dict``.
"""

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # harness, also when imported from elsewhere
from harness import HONEST, print_honest, print_report, report_child, run_children  # noqa: E402

SILVER_FIELDS = ["chat_id", "message_id", "chat_type", "chat_title", "user_id", "user_is_bot",
                 "user_first_name", "user_username", "date", "text", "caption", "edit_date",
                 "reply_to_message_id"]
FIRST_DAY = datetime(2026, 11, 16, tzinfo=UTC)
METHODS = ("reference", "floor_duckdb", "floor_polars", "floor_pyarrow", HONEST, "lakehouse")
SCALE_METHODS = ("floor_duckdb", HONEST, "lakehouse")


def generate(root: Path, updates: int, segments: int, days: int = 1) -> list[str]:
    """Realistic updates (text, media, edits, replies, reactions) as webhook segments:
    ``updates`` a day over ``days`` days, ``segments`` segments a day."""
    keys: list[str] = []
    rng = random.Random(7)
    state = {"update_id": 900_000_000, "message_id": 0}
    for day in range(days):
        keys += _generate_day(root, rng, state, FIRST_DAY + timedelta(days=day), updates, segments)
    return keys


def _generate_day(root: Path, rng: random.Random, state: dict[str, int], day: datetime,
                  updates: int, segments: int) -> list[str]:
    from lakehouse.sources.telegram_sample import GROUP, PEOPLE, TEXTS

    base = int(day.timestamp())
    prefix = f"raw/telegram/webhook/{day:%Y/%m/%d}"
    per_segment = -(-updates // segments)
    keys, update_id, message_id = [], state["update_id"], state["message_id"]
    first_message = message_id + 1  # edits and reactions are about the day's own messages
    folder = root / prefix
    folder.mkdir(parents=True, exist_ok=True)
    for seg in range(segments):
        lines = []
        for _ in range(min(per_segment, updates - seg * per_segment)):
            update_id += 1
            roll = rng.random()
            when = base + rng.randrange(86_400)
            if roll < 0.05 and message_id >= first_message:
                body = {"update_id": update_id, "message_reaction": {
                    "chat": GROUP, "message_id": rng.randint(first_message, message_id),
                    "user": rng.choice(PEOPLE), "date": when, "old_reaction": [],
                    "new_reaction": [{"type": "emoji", "emoji": "👍"}]}}
            elif roll < 0.10 and message_id >= first_message:
                body = {"update_id": update_id, "edited_message": {
                    "message_id": rng.randint(first_message, message_id), "from": rng.choice(PEOPLE),
                    "chat": GROUP, "date": base + 10, "edit_date": when,
                    "text": rng.choice(TEXTS) + " (editado)"}}
            else:
                message_id += 1
                m = {"message_id": message_id, "from": rng.choice(PEOPLE), "chat": GROUP,
                     "date": when}
                if roll < 0.80:
                    m["text"] = rng.choice(TEXTS)
                elif roll < 0.90:
                    m["photo"] = [{"file_id": f"AgAC{message_id}", "file_unique_id": "x",
                                   "width": 1280, "height": 960}]
                    m["caption"] = "cartaz 😍"
                else:
                    m["sticker"] = {"file_id": "CAACsticker", "file_unique_id": "y",
                                    "type": "regular", "width": 512, "height": 512,
                                    "is_animated": False, "is_video": False, "emoji": "🍿"}
                if rng.random() < 0.1 and message_id > 1:
                    m["reply_to_message"] = {"message_id": message_id - 1, "chat": GROUP,
                                             "date": when - 5}
                body = {"update_id": update_id, "message": m}
            lines.append(json.dumps(body, ensure_ascii=False, separators=(",", ":")))
        name = f"{day:%Y%m%d}T{seg:06d}000000Z-1-{seg:04d}.ndjson"
        (folder / name).write_text("\n".join(lines) + "\n")
        keys.append(f"{prefix}/{name}")
    state["update_id"], state["message_id"] = update_id, message_id
    return keys


# -- methods (each runs in a child process) ---------------------------------------------------

def run_lakehouse(root: Path, keys: list[str]) -> int:
    """What the bronze and silver assets run: raw -> bronze Delta -> silver Delta. The stages'
    times go to ``stages.json`` beside the input for the parent to print."""
    from lakehouse.lake.location import Lake
    from lakehouse.load.telegram import load_bronze, rebuild_silver_days

    lake = Lake.from_env(str(root))
    load = load_bronze(lake, keys)
    silver = rebuild_silver_days(lake, sorted(load.dates))
    stages = {name: [times.seconds[name], times.cpu_seconds[name], times.peak_rss_mib[name]]
              for times in (load.stages, silver.stages) for name in times.seconds}
    (root / "stages.json").write_text(json.dumps(stages))
    return silver.rows


def run_reference(root: Path, keys: list[str], out: Path) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    latest: dict[tuple, dict] = {}
    for key in keys:
        with open(root / key, encoding="utf-8") as f:
            for line in f:
                update = json.loads(line)
                m = None
                for kind in ("message", "edited_message", "channel_post", "edited_channel_post"):
                    if kind in update:
                        m = update[kind]
                if m is None:
                    continue
                user = m.get("from") or {}
                row = {
                    "chat_id": m["chat"]["id"], "message_id": m["message_id"],
                    "chat_type": m["chat"].get("type"), "chat_title": m["chat"].get("title"),
                    "user_id": user.get("id"), "user_is_bot": user.get("is_bot"),
                    "user_first_name": user.get("first_name"), "user_username": user.get("username"),
                    "date": datetime.fromtimestamp(m["date"], UTC).date(),
                    "text": m.get("text"), "caption": m.get("caption"),
                    "edit_date": m.get("edit_date"),
                    "reply_to_message_id": (m.get("reply_to_message") or {}).get("message_id"),
                }
                key_ = (row["chat_id"], row["message_id"])
                old = latest.get(key_)
                if old is None or (row["edit_date"] or 0) >= (old["edit_date"] or 0):
                    latest[key_] = row
    table = pa.Table.from_pylist(list(latest.values()))
    pq.write_table(table, out / "reference.parquet")
    return table.num_rows


def run_floor(engine: str, root: Path, keys: list[str], out: Path) -> int:
    files = [str(root / k) for k in keys]
    target = str(out / f"floor_{engine}.parquet")
    if engine == "duckdb":
        import duckdb

        con = duckdb.connect()
        con.execute(f"""copy (select message.chat.id as chat_id, message.message_id as message_id,
            message.chat.type as chat_type, message.chat.title as chat_title,
            message."from".id as user_id, message."from".is_bot as user_is_bot,
            message."from".first_name as user_first_name, message."from".username as user_username,
            message.date as date, message.text as text, message.caption as caption,
            message.edit_date as edit_date, message.reply_to_message.message_id as reply_to_message_id
            from read_ndjson({files!r}, columns={{'update_id': 'BIGINT', 'message':
              'STRUCT(message_id BIGINT, date BIGINT, edit_date BIGINT, text VARCHAR, caption VARCHAR,
               chat STRUCT(id BIGINT, type VARCHAR, title VARCHAR),
               "from" STRUCT(id BIGINT, is_bot BOOLEAN, first_name VARCHAR, username VARCHAR),
               reply_to_message STRUCT(message_id BIGINT))'}})) to '{target}' (format parquet)""")
        return con.execute(f"select count(*) from '{target}'").fetchone()[0]
    if engine == "polars":
        import polars as pl

        from lakehouse.transforms.telegram import MESSAGE_DTYPE

        frame = pl.scan_ndjson(files, schema={"update_id": pl.Int64, "message": MESSAGE_DTYPE})
        m = pl.col("message")
        frame.select(
            m.struct.field("chat").struct.field("id").alias("chat_id"),
            m.struct.field("message_id"),
            m.struct.field("chat").struct.field("type").alias("chat_type"),
            m.struct.field("chat").struct.field("title").alias("chat_title"),
            m.struct.field("from").struct.field("id").alias("user_id"),
            m.struct.field("from").struct.field("is_bot").alias("user_is_bot"),
            m.struct.field("from").struct.field("first_name").alias("user_first_name"),
            m.struct.field("from").struct.field("username").alias("user_username"),
            m.struct.field("date"), m.struct.field("text"), m.struct.field("caption"),
            m.struct.field("edit_date"),
            m.struct.field("reply_to_message").struct.field("message_id")
            .alias("reply_to_message_id"),
        ).sink_parquet(target)
        return pl.scan_parquet(target).select(pl.len()).collect().item()
    import pyarrow.json as pj
    import pyarrow.parquet as pq

    tables = [pj.read_json(f) for f in files]
    import pyarrow as pa

    table = pa.concat_tables(tables, promote_options="permissive")
    message = table.column("message").combine_chunks()
    keep = pa.table({name: message.field(name) for name in
                     ("message_id", "date", "chat", "from", "text")
                     if name in [message.type.field(i).name for i in range(message.type.num_fields)]})
    pq.write_table(keep, target)
    return keep.num_rows


# The columns of the silver rows the honest floor writes, from a message version ``m`` (its
# row's ``update_id``, ``_source_file`` beside it): silver's columns, computed as it does.
_HONEST_SILVER = """m.chat.id as chat_id, m.message_id as message_id, m.chat.type as chat_type,
    m.chat.title as chat_title, m."from".id as user_id, m."from".is_bot as user_is_bot,
    m."from".first_name as user_first_name, m."from".username as user_username,
    to_timestamp(m.date) as sent_at, to_timestamp(m.date)::date as date, m.text as text,
    m.caption as caption, {message_type} as message_type, length(m.text) as text_length,
    is_edited, to_timestamp(m.edit_date) as edited_at,
    m.reply_to_message.message_id as reply_to_message_id,
    m.forward_origin is not null or m.forward_date is not null as is_forwarded, update_id,
    _source_file"""


def run_honest_floor(root: Path, keys: list[str], out: Path) -> int:
    """DuckDB doing the work the layer contracts ask, as fast as it can: each raw file's lines
    read as text (kept, numbered), typed as bronze keeps them (the update id, the update type
    and the message, edited message, channel post or edited channel post, typed as
    ``MESSAGE_DTYPE``), written as bronze-like Parquet, one row per record with its source
    file and index; then silver's columns of each message's latest version (the latest edit,
    then the highest update id) read back from those files and written as Parquet. No
    quarantine, no Delta, no idempotence bookkeeping."""
    import duckdb

    from lakehouse.lake.jsondecode import duckdb_structure
    from lakehouse.transforms.telegram import MESSAGE_DTYPE, MESSAGE_TYPES, MESSAGE_UPDATE_TYPES

    message = duckdb_structure(MESSAGE_DTYPE)
    first, *rest = MESSAGE_UPDATE_TYPES
    head = json.dumps({"update_id": "BIGINT", first: message})
    others = json.dumps({kind: message for kind in rest})
    update_type = " ".join(f"when o.{k} is not null then '{k}'" for k in rest)
    message_type = "case when m.text is not null then 'text' " + " ".join(
        f"when m.{k} is not null then '{k}'" for k in
        ("animation", *(t for t in MESSAGE_TYPES if t not in ("text", "animation", "other")))
    ) + " else 'other' end"
    con = duckdb.connect()
    (out / "bronze").mkdir()
    # A file at a time: its rows numbered as in the file (the generated files have no blank
    # line, which the CSV reader would pass over without a number).
    for n, key in enumerate(keys):
        con.execute(f"""create or replace temp table lines as select * from read_csv(
            '{root / key}', columns={{'update_json': 'VARCHAR'}}, delim=chr(31), quote='',
            escape='', header=false, auto_detect=false)""")
        # Most records are messages: parsed once, the others (a tenth) again for the other
        # kinds, in a part of their own (a ``case`` filled the wide structs of every row).
        con.execute(f"""copy (
            with parsed as (
                select rowid as _record_index, update_json,
                       try(from_json(update_json, '{head}')) as d from lines),
            others as (
                select *, try(from_json(update_json, '{others}')) as o
                from parsed where d.{first} is null),
            versions as (
                select d.update_id, '{first}' as update_type, d.{first} as message, update_json,
                       _record_index from parsed where d.{first} is not null
                union all
                select d.update_id, case {update_type} else 'other' end,
                       coalesce({", ".join(f"o.{k}" for k in rest)}), update_json, _record_index
                from others)
            select update_id, update_type, message, message.chat.id as chat_id,
                   to_timestamp(message.date)::date as date, update_json,
                   '{key}' as _source_file, _record_index
            from versions) to '{out / "bronze" / f"{n:05d}.parquet"}' (format parquet)""")
    silver = out / "silver.parquet"
    # A window per message over bronze's rows (an ``arg_max`` of the whole row took several
    # times as long: DuckDB copies the wide struct into its aggregate state).
    con.execute(f"""copy (
        select {_HONEST_SILVER.format(message_type=message_type)} from (
            select message as m, update_id, _source_file,
                   bool_or(message.edit_date is not null)
                       over (partition by message.chat.id, message.message_id) as is_edited
            from read_parquet('{out / "bronze" / "*.parquet"}')
            where message.chat.id is not null and message.message_id is not null
            qualify row_number() over (partition by message.chat.id, message.message_id
                                       order by message.edit_date desc nulls last,
                                                update_id desc) = 1)
        ) to '{silver}' (format parquet)""")
    return con.execute(f"select count(*) from '{silver}'").fetchone()[0]


def child(method: str, root: Path, keys: list[str], out: Path) -> None:
    # Library imports are not the work being measured (importing Dagster alone takes ~1 s).
    if method == "lakehouse":
        import lakehouse.load.telegram  # noqa: F401
    if method == "lakehouse":
        report_child(method, lambda: run_lakehouse(root, keys))
    elif method == "reference":
        report_child(method, lambda: run_reference(root, keys, out))
    elif method == HONEST:
        report_child(method, lambda: run_honest_floor(root, keys, out))
    else:
        report_child(method, lambda: run_floor(method.removeprefix("floor_"), root, keys, out))


def _prepare(root: Path, updates: int, segments: int, days: int) -> str:
    t0 = time.perf_counter()
    keys = generate(root, updates, segments, days)
    (root / "keys.json").write_text(json.dumps(keys))
    size = sum((root / k).stat().st_size for k in keys) / 2**20
    return (f"{updates * days:,} updates ({days} day(s) of {updates:,}) in {len(keys)} segments, "
            f"{size:,.0f} MiB raw NDJSON (generated in {time.perf_counter() - t0:.1f} s)")


def run(n_updates: int, segments: int = 16, days: int = 1,
        methods: Sequence[str] = METHODS) -> dict:
    """Generate ``n_updates`` a day for ``days`` days, run ``methods`` (each in its own process)
    and return ``{"input": str, "updates": int, "results": {method: {seconds, rows,
    peak_rss_mib}}, "stages": {stage: [wall, cpu, peak RSS MiB when it last ended]}}`` (stages:
    of ``lakehouse``, if run)."""
    root = Path(tempfile.mkdtemp(prefix="bench_telegram_"))
    try:
        described = _prepare(root, n_updates, segments, days)
        print(described, flush=True)
        results = run_children(__file__, root, methods)
        stages_file = root / "stages.json"
        stages = json.loads(stages_file.read_text()) if stages_file.exists() else {}
        return {"input": described, "updates": n_updates * days, "results": results,
                "stages": stages}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def print_stages(stages: dict[str, list[float]]) -> None:
    """Wall and CPU seconds per stage, and the process's peak RSS when the stage last ended
    (the first stage showing the run's peak is where it was reached, or a stage nested in it)."""
    if not stages:
        return
    wall_total = sum(w for w, *_ in stages.values())
    cpu_total = sum(c for _, c, *_ in stages.values())
    print(f"lakehouse by stage {'wall s':>25}{'share':>8}{'CPU s':>9}{'share':>8}"
          f"{'peak RSS MiB':>14}")
    for name, (wall, cpu, *peak) in stages.items():
        print(f"  {name:<40}{wall:>8.2f}{wall / wall_total:>8.0%}{cpu:>9.2f}"
              f"{cpu / cpu_total:>8.0%}{peak[0] if peak else float('nan'):>14,.0f}")
    print(f"  {'total':<40}{wall_total:>8.2f}{'':>8}{cpu_total:>9.2f}")


def print_scale(runs: dict[int, dict]) -> None:
    """Per size: wall time and peak RSS of each method against 1x, and the CPU seconds of
    lakehouse's stages (every thread; what moves least when others load the machine)."""
    base = runs[min(runs)]
    base_cpu = sum(c for _, c, *_ in base["stages"].values())
    print(f"{'scale':>6}{'updates':>12}{'method':>14}{'seconds':>9}{'time vs 1x':>12}"
          f"{'CPU s':>8}{'CPU vs 1x':>11}{'peak RSS MiB':>14}{'RSS vs 1x':>11}")
    for factor, result in runs.items():
        for method, r in result["results"].items():
            b = base["results"].get(method)
            cpu = (f"{sum(c for _, c, *_ in result['stages'].values()):>8.2f}"
                   f"{sum(c for _, c, *_ in result['stages'].values()) / base_cpu:>10.2f}x"
                   if method == "lakehouse" and base_cpu else f"{'':>8}{'':>11}")
            print(f"{factor:>5}x{result['updates']:>12,}{method:>14}{r['seconds']:>9.2f}"
                  f"{r['seconds'] / b['seconds'] if b else float('nan'):>11.2f}x{cpu}"
                  f"{r['peak_rss_mib']:>14,.0f}"
                  f"{r['peak_rss_mib'] / b['peak_rss_mib'] if b else float('nan'):>10.2f}x")
    print("wanted for lakehouse: time at 4x <= 4.4x the 1x time, peak RSS at 4x <= 1.25x")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--updates", type=int, default=1_000_000, help="updates a day")
    parser.add_argument("--segments", type=int, default=16, help="webhook segments a day")
    parser.add_argument("--scale", help="comma-separated factors (e.g. 1,2,4): days of input")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        root = Path(args.root)
        keys = json.loads((root / "keys.json").read_text())
        out = root / f"out_{args.child}"
        out.mkdir()
        child(args.child, root, keys, out)
        return
    if args.scale:
        runs = {}
        for factor in (int(f) for f in args.scale.split(",")):
            runs[factor] = run(args.updates, args.segments, days=factor, methods=SCALE_METHODS)
            print_stages(runs[factor]["stages"])
        print_scale(runs)
        return
    result = run(args.updates, args.segments)
    print_report(result["results"], result["updates"], "rows = messages in silver (after dedup)")
    print_honest(result["results"], "the raw lines kept and numbered per file, typed as bronze "
                 "keeps them, written as bronze-like Parquet, then each message's latest "
                 "version as silver's columns, as Parquet")
    print_stages(result["stages"])


if __name__ == "__main__":
    main()

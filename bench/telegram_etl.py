"""Benchmark: N Telegram updates from landed raw NDJSON segments to silver.

Compares, each in its own process (so peak RSS is its own):
- ``lakehouse``: our path, raw segments -> bronze Delta -> silver Delta, the very functions the
  bronze and silver assets call;
- ``reference``: the replaced Telegram ETL's way (README, Origins): stdlib json, a dict per
  record, a pyarrow table, Parquet;
- ``floor_*``: Polars, pyarrow and DuckDB reading the same raw input and writing just the fields
  silver needs as Parquet, no cleaning, no dedup.

Usage: python bench/telegram_etl.py [--updates 1000000] [--segments 16]
"""

import argparse
import json
import random
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from harness import print_report, report_child, run_children

SILVER_FIELDS = ["chat_id", "message_id", "chat_type", "chat_title", "user_id", "user_is_bot",
                 "user_first_name", "user_username", "date", "text", "caption", "edit_date",
                 "reply_to_message_id"]
SEGMENT_PREFIX = "raw/telegram/webhook/2026/11/16"


def generate(root: Path, updates: int, segments: int) -> list[str]:
    """Realistic updates (text, media, edits, replies, reactions) as webhook segments."""
    from lakehouse.sources.telegram_sample import GROUP, PEOPLE, TEXTS

    rng = random.Random(7)
    base = int(datetime(2026, 11, 16, tzinfo=UTC).timestamp())
    per_segment = -(-updates // segments)
    keys, update_id, message_id = [], 900_000_000, 0
    folder = root / SEGMENT_PREFIX
    folder.mkdir(parents=True, exist_ok=True)
    for seg in range(segments):
        lines = []
        for _ in range(min(per_segment, updates - seg * per_segment)):
            update_id += 1
            roll = rng.random()
            when = base + rng.randrange(86_400)
            if roll < 0.05 and message_id:
                body = {"update_id": update_id, "message_reaction": {
                    "chat": GROUP, "message_id": rng.randint(1, message_id),
                    "user": rng.choice(PEOPLE), "date": when, "old_reaction": [],
                    "new_reaction": [{"type": "emoji", "emoji": "👍"}]}}
            elif roll < 0.10 and message_id:
                body = {"update_id": update_id, "edited_message": {
                    "message_id": rng.randint(1, message_id), "from": rng.choice(PEOPLE),
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
        name = f"20261116T{seg:06d}000000Z-1-{seg:04d}.ndjson"
        (folder / name).write_text("\n".join(lines) + "\n")
        keys.append(f"{SEGMENT_PREFIX}/{name}")
    return keys


# -- methods (each runs in a child process) ---------------------------------------------------

def run_lakehouse(root: Path, keys: list[str]) -> int:
    """What the bronze and silver assets run: raw -> bronze Delta -> silver Delta."""
    from lakehouse.lake.location import Lake
    from lakehouse.load.telegram import load_bronze, rebuild_silver_days

    lake = Lake.from_env(str(root))
    load = load_bronze(lake, keys)
    return rebuild_silver_days(lake, sorted(load.dates)).height


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


def child(method: str, root: Path, keys: list[str], out: Path) -> None:
    # Library imports are not the work being measured (importing Dagster alone takes ~1 s).
    if method == "lakehouse":
        import lakehouse.load.telegram  # noqa: F401
    if method == "lakehouse":
        report_child(method, lambda: run_lakehouse(root, keys))
    elif method == "reference":
        report_child(method, lambda: run_reference(root, keys, out))
    else:
        report_child(method, lambda: run_floor(method.removeprefix("floor_"), root, keys, out))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--updates", type=int, default=1_000_000)
    parser.add_argument("--segments", type=int, default=16)
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

    root = Path(tempfile.mkdtemp(prefix="bench_telegram_"))
    try:
        t0 = time.perf_counter()
        keys = generate(root, args.updates, args.segments)
        (root / "keys.json").write_text(json.dumps(keys))
        size = sum((root / k).stat().st_size for k in keys) / 2**20
        print(f"{args.updates:,} updates in {len(keys)} segments, {size:,.0f} MiB raw NDJSON "
              f"(generated in {time.perf_counter() - t0:.1f} s)")
        results = run_children(__file__, root, ("reference", "floor_duckdb", "floor_polars",
                                                "floor_pyarrow", "lakehouse"))
        print_report(results, args.updates, "rows = messages in silver (after dedup)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

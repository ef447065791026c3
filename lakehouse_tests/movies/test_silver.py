"""The one-pass silver loads: repeated keys, malformed lines, quarantine, one commit."""

import gzip

import polars as pl
from deltalake import DeltaTable

from lakehouse.lake.delta import scan
from lakehouse.lake.location import Lake
from lakehouse.lake.snapshots import LandingState
from lakehouse.load.movies import build_imdb_table, load_movielens_member
from lakehouse.transforms.imdb import IMDB_TABLES
from lakehouse.transforms.movielens import MOVIELENS_TABLES

HEADER = "tconst\taverageRating\tnumVotes\n"


def land(lake: Lake, key: str, text: str) -> LandingState:
    data = gzip.compress(text.encode())
    lake.write_bytes(key, data)
    return LandingState(key=key, sha256=str(hash(data)), size=len(data), landed_at="")


def test_imdb_repeated_keys_and_malformed_lines_in_one_commit(lake: Lake) -> None:
    spec = next(t for t in IMDB_TABLES if t.table == "imdb_ratings")
    text = HEADER + ("tt0133093\t8.7\t2100000\n"
                     "tt0076759\t8.6\t1450000\n"
                     "tt0133093\t8.7\t2100000\n"  # the same line twice: one row kept
                     "tt0000001\t5.7\n"  # a field missing: quarantined, not fatal
                     "tt0000002\t11.5\t10\n")  # out of range: quarantined
    state = land(lake, "raw/imdb/title_ratings/2026/11/23/title.ratings.tsv.gz", text)
    outcome = build_imdb_table(lake, spec, state)
    ratings = scan(lake, outcome.uri).sort("tconst").collect()
    assert ratings.rows() == [("tt0076759", 8.6, 1450000), ("tt0133093", 8.7, 2100000)]
    assert DeltaTable(outcome.uri).version() == 0
    quarantine = scan(lake, lake.table_uri("quarantine", "movies_quarantine")).collect()
    assert sorted(quarantine["reason"].to_list()) == ["averageRating outside 1..10",
                                                     "expected 3 fields, got 2"]
    assert outcome.quarantined == 2


def load_ratings(lake: Lake, tmp_path, rows: str) -> tuple[str, pl.DataFrame]:
    """``rows`` (after the header) as ratings.csv through the ratings load: (uri, quarantine)."""
    spec = next(t for t in MOVIELENS_TABLES if t.table == "movielens_ratings")
    path = tmp_path / "ratings.csv"
    path.write_text("userId,movieId,rating,timestamp\n" + rows)
    uri = lake.table_uri("silver", "movielens_ratings")
    return uri, load_movielens_member(lake, uri, path, spec, "raw#ratings.csv", "v1")


def test_movielens_rerating_keeps_the_newest(lake: Lake, tmp_path) -> None:
    # Beside the re-rating, rows whose key is not a number (no key to hold back) stay bad rows.
    uri, bad = load_ratings(lake, tmp_path, "1,296,3.0,1000\n1,296,4.5,2000\n1,1,5.0,1500\n"
                                            "2,296,x,1\nu9,296,4.0,1\n")
    rows = scan(lake, uri).sort("movie_id").collect()
    assert rows.select("user_id", "movie_id", "rating").rows() == [(1, 1, 5.0), (1, 296, 4.5)]
    assert bad.sort("record_index").select("record_index", "reason").rows() == [
        (3, "rating is not a number"), (4, "userId is not an integer")]
    assert pl.read_delta(uri)["rated_at"].dt.epoch("s").sort().to_list() == [1500, 2000]
    assert DeltaTable(uri).version() == 0  # the repeat deduplicated before the one commit


def test_movielens_ragged_rows_are_quarantined_in_place_not_fatal(lake: Lake, tmp_path) -> None:
    """A row with too few or too many fields is quarantined with the count (too many used to
    fail the whole load), and every row keeps its index in the file, as Polars counts rows: a
    blank line is a row (of nulls, so a bad one)."""
    uri, bad = load_ratings(lake, tmp_path, "1,1,4.0,10\n1,2,4.0\n1,3,4.0,10,extra\n\n"
                                            "1,4,\"4.5\",10\n1,5,9,10\n")
    assert scan(lake, uri).sort("movie_id").select("movie_id", "rating").collect().rows() == [
        (1, 4.0), (4, 4.5)]
    assert bad.sort("record_index").select("record_index", "reason", "raw_record").rows() == [
        (1, "expected 4 fields, got 3", "1,2,4.0"),
        (2, "expected 4 fields, got 5", "1,3,4.0,10,extra"),
        (3, "userId is not an integer", ",,,"),
        (5, "rating outside 0.5..5", "1,5,9,10")]


def test_movielens_tags_grouped_part_by_part_are_the_transforms_tables(lake: Lake, tmp_path,
                                                                      monkeypatch) -> None:
    """Tags spilled to many hash parts and grouped part by part (bounded memory) give exactly
    the rows of the plain transforms, a quoted tag over two lines included."""
    import random

    import lakehouse.load.movies as load
    from lakehouse.transforms.movielens import (
        MOVIELENS_CSV_OPTIONS,
        movielens_tag_counts,
        movielens_tags,
    )

    rng = random.Random(4)
    words = ["dark", "Dark ", "funny", "great  soundtrack", "\"twist, ending\"",
             "\"two\nlines\""]
    lines = [f"{rng.randrange(1, 40)},{rng.randrange(1, 30)},{rng.choice(words)},"
             f"{rng.randrange(1_000, 9_000)}" for _ in range(3_000)]
    lines.insert(7, "3,4,,1000")  # an empty tag: quarantined
    path = tmp_path / "tags.csv"
    path.write_text("userId,movieId,tag,timestamp\n" + "\n".join(lines) + "\n")
    monkeypatch.setattr(load, "SPILL_PART_BYTES", 2_000)
    spills: list[load.HashParts] = []

    class Parts(load.HashParts):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            spills.append(self)

    monkeypatch.setattr(load, "HashParts", Parts)
    tags_uri = lake.table_uri("silver", "movielens_tags")
    counts_uri = lake.table_uri("silver", "movielens_tag_counts")
    bad = load.load_movielens_tags(lake, path, "raw#tags.csv", "v1", tags_uri, counts_uri)
    assert bad.select("record_index", "reason").rows() == [(7, "tag is empty")]
    assert spills[0].parts > 10
    raw = pl.scan_csv(path, **MOVIELENS_CSV_OPTIONS)
    for uri, transform, key in ((tags_uri, movielens_tags, ["user_id", "movie_id", "tag"]),
                                (counts_uri, movielens_tag_counts, ["movie_id", "tag"])):
        table = DeltaTable(uri)
        assert table.version() == 0 and len(table.file_uris()) == 1
        loaded = scan(lake, uri).sort(key).collect()
        assert loaded.equals(transform(raw).sort(key).collect())
    assert scan(lake, tags_uri).filter(pl.col("tag") == "two lines").collect().height > 0


def test_movielens_tag_counts_count_every_tags_csv_row_as_an_application(lake: Lake,
                                                                          tmp_path) -> None:
    from lakehouse.transforms.movielens import MOVIELENS_CSV_OPTIONS, movielens_tag_counts

    path = tmp_path / "tags.csv"
    # User 1 applies "dark" to movie 1 three times (two spellings): three applications by one
    # user; user 2 once. A row with an empty tag is quarantined and counts nowhere.
    path.write_text("userId,movieId,tag,timestamp\n"
                    "1,1,dark,1000\n1,1,Dark ,2000\n1,1,dark,3000\n2,1,dark,1500\n"
                    "2,2,funny,1200\n3,2,,1300\n")
    counts = movielens_tag_counts(pl.scan_csv(path, **MOVIELENS_CSV_OPTIONS)).collect()
    rows = {(r["movie_id"], r["tag"]): r for r in counts.iter_rows(named=True)}
    assert set(rows) == {(1, "dark"), (2, "funny")}
    assert (rows[(1, "dark")]["n_applications"], rows[(1, "dark")]["n_users"]) == (4, 2)
    assert rows[(1, "dark")]["last_tagged_at"].timestamp() == 3000
    assert (rows[(2, "funny")]["n_applications"], rows[(2, "funny")]["n_users"]) == (1, 1)


def test_imdb_repeats_found_partition_by_partition_give_the_transforms_rows(lake: Lake,
                                                                            tmp_path) -> None:
    """Keys repeated far apart in an unsorted file, found through many small hash partitions
    (bounded memory), leave exactly the rows the plain transform keeps."""
    import random

    from lakehouse.load.movies import KeyHashes, StreamSplit, load_text_one_commit
    from lakehouse.transforms.imdb import IMDB_CSV_OPTIONS

    spec = next(t for t in IMDB_TABLES if t.table == "imdb_principals")
    rng = random.Random(9)
    rows = [f"tt{rng.randrange(10**7):07d}\t{rng.randrange(1, 4)}\tnm{rng.randrange(10**7):07d}"
            f"\tactor\t\\N\t[\"Role {i}\"]" for i in range(20_000)]
    rows += rng.sample(rows, 300)  # repeated keys, whole lines
    rng.shuffle(rows)
    rows.insert(5, "tt0000001\tx\tnm0000001\tself\t\\N\t\\N")  # a bad ordering: quarantined
    path = tmp_path / "title.principals.tsv"
    path.write_text("tconst\tordering\tnconst\tcategory\tjob\tcharacters\n" + "\n".join(rows)
                    + "\n")
    split = StreamSplit(spec.checks, spec.columns, spec.key, spec.raw_key)
    split.hashes = KeyHashes(partition_rows=1_000)  # 32 partitions of the 20,300 hashes
    uri = lake.table_uri("silver", spec.table)
    invalid = load_text_one_commit(lake, uri, path, split,
                                  lambda lf: lf.unique(subset=list(spec.key), keep="any"), "v1")
    assert invalid == []
    assert [r["_index"] for r in split.bad[0].iter_rows(named=True)] == [5]
    loaded = scan(lake, uri).sort(spec.key).collect()
    expected = spec.transform(pl.scan_csv(path, **IMDB_CSV_OPTIONS)).sort(spec.key).collect()
    assert loaded.height == expected.height == expected.unique(spec.key).height
    assert loaded.select(spec.key).equals(expected.select(spec.key))
    assert DeltaTable(uri).version() == 0


def test_key_hashes_repeats_are_the_same_in_memory_or_partitioned() -> None:
    import numpy as np

    from lakehouse.load.movies import KeyHashes

    rng = np.random.default_rng(3)
    unique = rng.integers(0, 2**63, 50_000, dtype=np.int64)
    values = np.concatenate([unique, unique[:700], unique[:5]])  # 700 repeat, 5 of them thrice
    rng.shuffle(values)
    results = []
    for partition_rows in (1 << 20, 2_000):
        hashes = KeyHashes(partition_rows=partition_rows)
        for chunk in np.array_split(values, 37):
            hashes.add(pl.Series(chunk))
        results.append(sorted(hashes.repeated().to_list()))
        assert hashes.repeated().dtype == pl.Int64
        hashes.close()
    assert results[0] == results[1] == sorted(unique[:700].tolist())


def test_imdb_load_memory_is_bounded_by_blocks_and_row_groups_not_by_the_file(lake: Lake,
                                                                             tmp_path) -> None:
    """A file bigger than a read block and a row group: the reader hands it over block by
    block (Arrow queues blocks ahead, so their size bounds what the read holds) and the Delta
    files are written in bounded, compressed row groups, with every row kept."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from lakehouse.load.movies import (
        SILVER_ROW_GROUP_ROWS,
        TSV_BLOCK_BYTES,
        _grouped,
        _text_reader,
    )

    spec = next(t for t in IMDB_TABLES if t.table == "imdb_ratings")
    n = SILVER_ROW_GROUP_ROWS + 40_000
    rows = pl.select(pl.format("tt{}\t{}.{}\t{}", pl.int_range(n).cast(pl.String).str.zfill(8),
                               pl.int_range(n) % 9 + 1, pl.int_range(n) % 10,
                               pl.int_range(n) * 7 % 100_000 + 5)).to_series()
    text = HEADER + "\n".join(rows) + "\n"
    assert len(text) > 4 * TSV_BLOCK_BYTES
    path = tmp_path / "title.ratings.tsv"
    path.write_text(text)
    invalid: list = []
    _, reader = _text_reader(path, invalid)
    batch_texts = [sum(pc.sum(pc.utf8_length(column)).as_py() for column in batch.columns)
                   + 3 * batch.num_rows for batch in reader]  # two tabs and a newline a row
    # A block ends where its last line ends: a line's length over the block size at most.
    assert len(batch_texts) > 4 and max(batch_texts) <= TSV_BLOCK_BYTES + 32
    assert sum(batch_texts) == len(text) - len(HEADER) and invalid == []
    # The blocks are typed in groups (Polars' cost per call): bounded too, every row in one.
    _, reader = _text_reader(path, invalid)
    groups = list(_grouped(reader, 2 * TSV_BLOCK_BYTES))
    assert len(groups) > 1 and sum(g.num_rows for g in groups) == n
    assert max(g.nbytes for g in groups) < 4 * TSV_BLOCK_BYTES

    state = land(lake, "raw/imdb/title_ratings/2026/11/23/title.ratings.tsv.gz", text)
    outcome = build_imdb_table(lake, spec, state)
    table = DeltaTable(outcome.uri)
    groups = []
    for file in table.file_uris():
        meta = pq.read_metadata(file)
        groups += [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        assert meta.row_group(0).column(0).compression == "SNAPPY"
    assert sum(groups) == n and len(groups) > 1 and max(groups) <= SILVER_ROW_GROUP_ROWS
    loaded = scan(lake, outcome.uri).collect()
    assert loaded.height == loaded["tconst"].n_unique() == n
    assert loaded.filter(pl.col("tconst") == "tt00000012").rows() == [("tt00000012", 4.2, 89)]

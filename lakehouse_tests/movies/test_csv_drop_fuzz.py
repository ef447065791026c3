"""Generated CSV drops (good rows, rows with fields missing or extra, blank lines, UTF-8 or a
Latin-1 Excel export): every record ends either in the table's rows or set aside with its line
number, none is lost, none is changed."""

from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lakehouse.sources.csv_drop import prepared_drop

# Titles as an Excel export in cp1252 holds them: words of Western languages, some accented
# (a byte or two alone, like "éç", is ambiguous between encodings for any detector).
WORDS = ["Cidade", "de", "Deus", "Ação", "Coração", "São", "Paulo", "Amélie", "Noël", "Niño",
         "Até", "Über", "Alles", "Heat", "Alien", "O", "Auto", "da", "Compadecida", "Pequeña",
         "Señorita", "Garçon", "Mãe", "Irmão", "Vôo", "Crème", "brûlée", "Île", "The", "Run"]
words = st.lists(st.sampled_from(WORDS), min_size=1, max_size=5).map(" ".join)
row = st.one_of(
    st.tuples(st.just("good"), words, st.integers(1900, 2030)),
    st.tuples(st.just("good"), words, st.integers(1900, 2030)),
    st.tuples(st.just("extra"), words, st.integers(1900, 2030)),
    st.tuples(st.just("missing"), words, st.integers(1900, 2030)),
    st.tuples(st.just("blank"), st.just(""), st.just(0)),
)


@settings(max_examples=50, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(rows=st.lists(row, min_size=1, max_size=60), encoding=st.sampled_from(["utf-8", "cp1252"]),
       crlf=st.booleans())
def test_every_generated_record_is_loaded_or_set_aside_with_its_line(
        tmp_path: Path, rows, encoding: str, crlf: bool) -> None:
    lines, good, ragged = ["id,title,year"], {}, {}
    for i, (kind, title, year) in enumerate(rows, start=1):
        if kind == "blank":
            lines.append("")
            continue
        fields = [str(i), title, str(year)]
        if kind == "extra":
            fields.append("EXTRA")
        elif kind == "missing":
            fields = fields[:2]
        lines.append(",".join(fields))
        (good if kind == "good" else ragged)[len(lines)] = (str(i), title, year)
    path = tmp_path / f"drop-{encoding}-{crlf}.csv"
    path.write_bytes(("\r\n" if crlf else "\n").join(lines).encode(encoding) + b"\n")

    with prepared_drop(path) as drop:
        assert drop.fields == 3 and drop.dialect.delimiter == ","
        loaded = pl.read_csv(drop.path, schema={"id": pl.String, "title": pl.String,
                                                "year": pl.Int64})
        rejected = {line: (reason, text) for line, reason, text in drop.rejected}
    assert drop.records == len(good) == loaded.height
    assert sorted(loaded.rows()) == sorted(good.values())  # the text read whole, in any encoding
    assert sorted(rejected) == sorted(ragged)  # each set aside under its own line number
    for line, (reason, text) in rejected.items():
        assert reason.startswith(f"line {line}: ragged row") or "ragged" in reason
        assert text == lines[line - 1]

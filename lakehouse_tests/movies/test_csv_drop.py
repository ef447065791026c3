"""CSV drops lose nothing: name clashes fail clearly, ragged records are quarantined with their
line, any encoding is read (declared or detected) and recorded with the table."""

import shutil
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from deltalake import DeltaTable

from lakehouse.defs.movies.assets import (
    ENCODING_PROPERTY,
    csv_drop_partitions,
    csv_drop_raw,
    csv_drop_silver,
)
from lakehouse.defs.movies.sensors import movies_csv_drop_sensor
from lakehouse.lake.location import Lake
from lakehouse.lake.resource import LakeResource
from lakehouse.sources.csv_drop import CsvDropResource, detect_encoding, prepared_drop
from lakehouse_tests.conftest import FIXTURES

DROP_FIXTURES = FIXTURES / "movies/csv_drop"


def _read(lake: Lake, layer: str, table: str) -> pl.DataFrame:
    return pl.read_delta(lake.table_uri(layer, table))


def _load(instance: dg.DagsterInstance, drop: Path, spec: str,
          **resource: str) -> dg.ExecuteInProcessResult:
    known = set(instance.get_dynamic_partitions(csv_drop_partitions.name))
    if spec not in known:
        instance.add_dynamic_partitions(csv_drop_partitions.name, [spec])
    res = {"lake": LakeResource(), "csv_drop": CsvDropResource(drop_dir=str(drop), **resource)}
    return dg.materialize([csv_drop_raw, csv_drop_silver], instance=instance, resources=res,
                          partition_key=spec, raise_on_error=False)


def _tick(instance: dg.DagsterInstance, drop: Path, cursor: str | None) -> dg.SensorResult:
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={
        "csv_drop": CsvDropResource(drop_dir=str(drop)), "lake": LakeResource()})
    return movies_csv_drop_sensor(context)


def _silver_metadata(result: dg.ExecuteInProcessResult) -> dict:
    [event] = [e for e in result.get_asset_materialization_events()
               if e.asset_key == dg.AssetKey(["silver", "csv_drops"])]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def test_two_files_of_one_table_fail_naming_both_and_each_loads_once_renamed(
        lake: Lake, tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "Movies.csv").write_text("id,title,year\n1,Heat,1995\n2,Alien,1979\n")
    (drop / "movies.csv").write_text("id,title,year\n3,Ran,1985\n")
    instance = dg.DagsterInstance.ephemeral()
    first = _tick(instance, drop, None)
    assert sorted(r.run_key.split(":")[0] for r in first.run_requests) == ["Movies.csv",
                                                                           "movies.csv"]
    result = _load(instance, drop, "movies")
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    message = failure.step_failure_data.error.message
    assert "'Movies.csv'" in message and "'movies.csv'" in message and "csv_movies" in message
    assert lake.list_keys("raw/csv_drop/file") == []  # neither replaced the other

    # Renaming one resolves the clash: the sensor asks for both files again, each loads whole.
    (drop / "Movies.csv").rename(drop / "Movies 2024.csv")
    second = _tick(instance, drop, first.cursor)
    assert sorted(r.partition_key for r in second.run_requests) == ["movies", "movies_2024"]
    for spec in ("movies", "movies_2024"):
        assert _load(instance, drop, spec).success
    assert _read(lake, "silver", "csv_movies")["id"].to_list() == [3]
    assert sorted(_read(lake, "silver", "csv_movies_2024")["id"].to_list()) == [1, 2]
    assert _tick(instance, drop, second.cursor).run_requests == []


def test_ragged_records_go_to_quarantine_with_their_line_and_the_rest_loads(
        lake: Lake, tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    shutil.copy(DROP_FIXTURES / "ragged_movies.csv", drop / "ragged_movies.csv")
    result = _load(dg.DagsterInstance.ephemeral(), drop, "ragged_movies")
    assert result.success
    table = _read(lake, "silver", "csv_ragged_movies").sort("id")
    assert table.columns == ["id", "title", "year"]
    assert table["id"].to_list() == [1, 3, 5]
    assert table["title"].to_list() == ["Heat\n(director's cut)", "Alien",
                                        "Amélie, or the fabulous destiny"]
    quarantine = _read(lake, "quarantine", "movies_quarantine").sort("record_index")
    assert quarantine["record_index"].to_list() == [4, 7]  # lines, counting the quoted break
    assert quarantine["raw_record"].to_list() == ["2,Heat,1995,EXTRA,MORE", "4,Ran"]
    assert quarantine["reason"].to_list() == [
        "line 4: ragged row: 5 fields where the header has 3 (2 extra)",
        "line 7: ragged row: 2 fields where the header has 3 (1 missing)"]
    assert set(quarantine["table"]) == {"csv_ragged_movies"}
    assert quarantine["_source_file"].str.starts_with("raw/csv_drop/file/ragged_movies/").all()
    meta = _silver_metadata(result)
    assert meta["quarantined_rows"] == 2 and meta["records_loaded"] == 3


def test_an_excel_cp1252_export_is_detected_and_its_encoding_recorded(
        lake: Lake, tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    shutil.copy(DROP_FIXTURES / "filmes_excel_cp1252.csv", drop / "filmes.csv")
    result = _load(dg.DagsterInstance.ephemeral(), drop, "filmes")
    assert result.success
    table = _read(lake, "silver", "csv_filmes").sort("id")
    assert table.columns == ["id", "titulo", "ano", "genero", "nota_media", "sinopse"]
    assert table["id"].to_list() == ["tt0140888", "tt0271383", "tt0317248", "tt1555149"]
    assert table["titulo"].to_list()[1] == "O Auto da Compadecida"
    assert table["genero"].to_list() == ["Drama", "Comédia", "Crime", "Ação"]
    assert table["sinopse"].to_list()[0] == "Dora escreve cartas na estação – “Central”"
    assert table["sinopse"].to_list()[2] == "Buscapé cresce na favela; vira fotógrafo"
    history = DeltaTable(lake.table_uri("silver", "csv_filmes")).history(1)[0]
    assert history[ENCODING_PROPERTY] == "cp1252"
    meta = _silver_metadata(result)
    assert meta["encoding"] == "cp1252" and meta["encoding_detected_by"].startswith("detected (not UTF-8")
    # Nightly upkeep commits after the load: the table still says what it was read as, and
    # the same raw version is not loaded again.
    with open(drop / "filmes.csv", "ab") as more:
        more.write("tt0367495;Carandiru;2003;Drama;7,6;Presídio\r\n".encode("cp1252"))
    instance = dg.DagsterInstance.ephemeral()
    assert _silver_metadata(_load(instance, drop, "filmes"))["changed"] is True
    DeltaTable(lake.table_uri("silver", "csv_filmes")).vacuum(
        retention_hours=0, enforce_retention_duration=False, dry_run=False)
    operations = [h["operation"] for h in DeltaTable(lake.table_uri("silver", "csv_filmes")).history()]
    assert operations[:2] == ["VACUUM END", "VACUUM START"]
    again = _silver_metadata(_load(instance, drop, "filmes"))
    assert again["changed"] is False and again["encoding"] == "cp1252"
    assert "Presídio" in _read(lake, "silver", "csv_filmes")["sinopse"].to_list()


ROWS = "id;название;год\n1;Брат;1997\n2;Левиафан;2014\n3;Сталкер;1979\n"
LATIN = "id,title\n1,Amélie\n2,Les Misérables\n3,La Cité des enfants perdus\n"


@pytest.mark.parametrize(("data", "expected", "word"), ids=[
    "utf-8", "utf-8-bom", "utf-16-bom-tabs", "cp1251", "latin-1"], argvalues=[
    (ROWS.encode("utf-8"), "utf-8", "Левиафан"),
    (b"\xef\xbb\xbf" + ROWS.encode("utf-8"), "utf-8-sig", "Левиафан"),
    (ROWS.replace(";", "\t").encode("utf-16"), "utf-16", "Левиафан"),  # Excel's "Unicode text"
    (ROWS.encode("cp1251"), "cp1251", "Левиафан"),
    (LATIN.encode("latin-1"), "cp1252", "Misérables"),
])
def test_the_encoding_is_detected_and_the_text_read_whole(tmp_path: Path, data: bytes,
                                                          expected: str, word: str) -> None:
    path = tmp_path / "drop.csv"
    path.write_bytes(data)
    assert detect_encoding(path).name == expected
    with prepared_drop(path) as drop:
        assert drop.encoding.name == expected and drop.dialect.has_header
        assert drop.records == 3 and drop.rejected == []
        assert word in drop.path.read_text("utf-8")


def test_a_declared_encoding_wins_over_detection(tmp_path: Path, lake: Lake,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    # Valid UTF-8 bytes, but written as cp1251 by whoever declared it: the setting decides.
    (drop / "kino.csv").write_bytes("id;title\n1;ÐÐ\n".encode())
    monkeypatch.setenv("LAKEHOUSE_DROP_ENCODING", "cp1251")  # as the code location passes it
    result = _load(dg.DagsterInstance.ephemeral(), drop, "kino",
                   encoding=dg.EnvVar("LAKEHOUSE_DROP_ENCODING"))
    assert result.success
    meta = _silver_metadata(result)
    assert meta["encoding"] == "cp1251" and meta["encoding_detected_by"] == "declared"
    assert _read(lake, "silver", "csv_kino")["title"].to_list() == [
        "ÐÐ".encode().decode("cp1251")]


def test_a_declared_encoding_that_does_not_fit_fails_the_file_clearly(tmp_path: Path) -> None:
    path = tmp_path / "filmes.csv"
    path.write_bytes((DROP_FIXTURES / "filmes_excel_cp1252.csv").read_bytes())
    with pytest.raises(UnicodeError, match="filmes.csv is not valid utf-8, the declared encoding"):
        detect_encoding(path, declared="utf8")

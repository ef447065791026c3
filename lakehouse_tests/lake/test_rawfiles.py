"""Raw NDJSON lines: every non-blank line is a record numbered by its line, whole or in pieces."""

import io

import polars as pl
import pytest

from lakehouse.lake.rawfiles import ndjson_line_chunks, ndjson_lines

BODY = ('{"a": 1}\r\n\n  \n{"b": "é"}\n{"c": "\x1f"}\nnot json\n'.encode()
        + b'{"d": "\xff"}\n' + b"x" * 50 + b"\n" + b'{"last": "\x1f"}')


def test_a_last_line_ending_with_the_unit_separator_is_kept_as_landed() -> None:
    # Without a final newline the CSV reader cut the separator off (a record that is not the
    # text landed, here valid JSON that is not) or read a line of it alone as a null (lost).
    assert ndjson_lines(b'{"a": 1}\n{"b": 2}\x1f').rows() == [(0, '{"a": 1}'), (1, '{"b": 2}\x1f')]
    assert ndjson_lines(b'{"a": 1}\n\x1f').rows() == [(0, '{"a": 1}'), (1, "\x1f")]


@pytest.mark.parametrize("max_bytes", [1, 7, 20, 64, 10_000])
def test_pieces_are_the_whole_files_lines_numbered_as_in_the_file(max_bytes: int) -> None:
    whole = ndjson_lines(BODY)
    assert whole["_record_index"].to_list() == [0, 3, 4, 5, 6, 7, 8]
    pieces = list(ndjson_line_chunks(BODY, max_bytes))
    assert pl.concat(pieces).equals(whole)
    assert len(pieces) > 1 or max_bytes >= len(BODY)


@pytest.mark.parametrize("max_bytes", [1, 2, 7, 9, 20, 64, 10_000])
def test_a_stream_read_a_block_at_a_time_gives_the_same_pieces_as_the_bytes(
        max_bytes: int) -> None:
    # Blocks ending on a line end with nothing carried over, blocks holding no line end, and
    # lines carried over several blocks: each piece is the file's lines, numbered as in it.
    whole = ndjson_lines(BODY)
    pieces = list(ndjson_line_chunks(io.BytesIO(BODY), max_bytes))
    assert pl.concat(pieces).equals(whole)
    assert len(pieces) > 1 or max_bytes >= len(BODY)

"""CSV/TSV as spreadsheets and databases write them: RFC 4180 records over several lines,
other delimiters (given or sniffed), and the bound that keeps an unclosed quote to one row."""

from __future__ import annotations

import csv
import io

import pytest
from namelang.csv_records import MAX_RECORD_BYTES, quote_open, sniff
from namelang.score import score_file


def read_back(path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_bytes().decode("utf-8"), newline="")))


@pytest.mark.parametrize("backend", ["rust", "torch"])
def test_a_quoted_line_break_stays_in_its_record(tmp_path, backend):
    src = tmp_path / "multi.csv"
    src.write_bytes(
        'id,name,city\r\n1,Müller,Berlin\r\n2,"García","Madrid\r\nSpain"\r\n3,Zhou,Beijing\r\n'
        '4,"O""Neil, Jr",Dublin\r\n'.encode()
    )
    out = tmp_path / "out.csv"
    summary = score_file(src, out, backend=backend, progress=False)
    rows = read_back(out)
    assert [r[:3] for r in rows[1:]] == [
        ["1", "Müller", "Berlin"],
        ["2", "García", "Madrid\r\nSpain"],  # written back quoted: every reader reads it
        ["3", "Zhou", "Beijing"],
        ["4", 'O"Neil, Jr', "Dublin"],
    ]
    assert [r[-1] for r in rows[1:]] == ["", "", "", ""] and summary.rows == 4
    assert rows[2][4] and rows[2][3] == "Garcia"


def test_an_unclosed_quote_costs_one_row(tmp_path):
    src = tmp_path / "bad.csv"
    src.write_text('id,name\n1,Zhou\n2,"Tanaka\n3,Smith\n4,Rossi\n', encoding="utf-8")
    out = tmp_path / "out.csv"
    score_file(src, out, progress=False)
    rows = read_back(out)[1:]
    assert [r[-1] for r in rows] == ["", "invalid_csv", "", ""]
    assert rows[1][1] == '2,"Tanaka' and [r[0] for r in rows[2:]] == ["3", "4"]


def test_a_record_past_the_bound_is_one_row_and_reading_goes_on(tmp_path):
    filler = ("x" * 1000 + "\n") * (MAX_RECORD_BYTES // 1000 + 10)
    src = tmp_path / "big.csv"
    src.write_text(f'id,name\n1,"open\n{filler}"\n2,Zhou\n', encoding="utf-8")
    out = tmp_path / "out.csv"
    summary = score_file(src, out, progress=False)
    rows = read_back(out)[1:]
    assert rows[0][-1] == "invalid_csv" and rows[0][1] == '1,"open'
    # The lines the quote spanned are read one record a line, then reading goes on.
    assert rows[-1][:2] == ["2", "Zhou"] and rows[-1][-1] == ""
    assert summary.rows == len(rows) == 1 + filler.count("\n") + 2


@pytest.mark.parametrize(
    ("header", "delimiter"),
    [("id;name;city", ";"), ("id\tname", "\t"), ("id|name", "|"), ("id,name", ","),
     ('"a;b",name,x', ","), ("name", ",")],
)  # fmt: skip
def test_the_delimiter_is_sniffed_from_the_header(header, delimiter):
    assert sniff(header, ",") == delimiter


def test_semicolon_exports_are_read_and_the_summary_says_so(tmp_path):
    src = tmp_path / "excel.csv"
    src.write_text("id;name;city\n1;Müller;Berlin\n2;Zhou;Beijing\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    summary = score_file(src, out, progress=False)
    assert [r[1] for r in read_back(out)[1:]] == ["Müller", "Zhou"]
    assert "delimiter ';' (from the header)" in summary.line()
    given = score_file(src, out, delimiter=";", progress=False)
    assert "delimiter" not in given.line()
    with pytest.raises(ValueError, match=r"no column .name.*--delimiter"):
        score_file(src, out, delimiter=",", progress=False)
    with pytest.raises(ValueError, match="delimiter must be one of"):
        score_file(src, out, delimiter=":", progress=False)


def test_quote_state_follows_rfc_4180():
    assert quote_open('1,"abc', ",", False)
    assert not quote_open('1,"a""b",c', ",", False)
    assert not quote_open('1,Hin"ton', ",", False)  # a quote inside a field is a letter
    assert quote_open('still "" inside', ",", True)
    assert not quote_open('end",x', ",", True)

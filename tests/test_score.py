"""`namelang score`: one row per input row, in order, in every format, atomically."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time

import namelang
import pytest
from namelang.cli import main
from namelang.score import score_file

from .hostile import HOSTILE_LINES

HOSTILE = HOSTILE_LINES


def write_lines(path, lines, ending=b"\n", bom=False, extra=b""):
    data = ending.join(line.encode() for line in lines) + ending + extra
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return path


def read_csv(path):
    limit = csv.field_size_limit(1 << 22)  # rows may pass long fields through
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    finally:
        csv.field_size_limit(limit)


@pytest.mark.parametrize("backend", ["rust", "torch"])
def test_text_to_csv_keeps_every_row_in_order(tmp_path, backend):
    src = write_lines(
        tmp_path / "in.txt", HOSTILE, ending=b"\r\n", bom=True, extra=b"\xff\xfeBad\n"
    )
    out = tmp_path / "out.csv"
    summary = score_file(src, out, model="tutorial", backend=backend, k=2, progress=False)
    rows = read_csv(out)
    assert [r["name"] for r in rows[:-1]] == HOSTILE
    assert rows[-1]["name"] == "\ufffd\ufffdBad"
    errors = [r["error"] for r in rows]
    # The tutorial's model reads no Cyrillic, Greek or Hebrew letters, nor combining
    # marks alone; the 300-letter name is past the default max length.
    expected = {"": "empty", "   ": "empty", "王": "no_letters", "x" * 300: "too_long"}
    expected |= {"Иванов": "no_letters", "Παπαδόπουλος": "no_letters"}
    expected |= {"\u0301" * 10: "no_letters"}
    assert errors == [expected.get(n, "") for n in HOSTILE] + ["invalid_utf8"]
    flagged = len([n for n in HOSTILE if n in expected]) + 1
    assert summary.rows == len(HOSTILE) + 1 and summary.flagged == flagged
    assert summary.scored == summary.rows - flagged
    assert rows[5]["ascii"] == "Slusarski" and rows[8]["ascii"] == "x" * 300
    assert rows[0]["language"] and float(rows[0]["probability"]) >= float(rows[0]["probability_2"])
    assert rows[1]["language"] == "" and rows[1]["probability"] == ""


def test_backends_agree_row_by_row(tmp_path, dataset_names):
    src = write_lines(tmp_path / "in.txt", dataset_names[::13] + HOSTILE)
    for backend in ("rust", "torch"):
        score_file(
            src, tmp_path / f"{backend}.csv", backend=backend, model="tutorial", progress=False
        )
    a, b = read_csv(tmp_path / "rust.csv"), read_csv(tmp_path / "torch.csv")
    assert len(a) == len(b) == len(dataset_names[::13]) + len(HOSTILE)
    for x, y in zip(a, b, strict=True):
        assert (x["name"], x["ascii"], x["error"]) == (y["name"], y["ascii"], y["error"])
        if x["probability"]:
            assert abs(float(x["probability"]) - float(y["probability"])) < 1e-4


def test_chunking_and_a_loaded_classifier_change_no_row(tmp_path, dataset_names, monkeypatch):
    """Many small chunks in flight (and many blocks in one chunk) give the same rows, in
    the same order, as one pass; a Classifier can be passed instead of a model name."""
    import namelang
    import namelang.score

    lines = dataset_names + HOSTILE * 50
    src = write_lines(tmp_path / "in.txt", lines)
    classifier = namelang.load("tutorial", backend="rust")
    score_file(src, tmp_path / "whole.csv", model=classifier, k=2, progress=False)
    monkeypatch.setattr(namelang.score, "CHUNK_BYTES", 777)
    score_file(src, tmp_path / "small.csv", model=classifier, k=2, progress=False)
    whole, small = read_csv(tmp_path / "whole.csv"), read_csv(tmp_path / "small.csv")
    assert whole == small
    assert [row["name"] for row in whole] == lines


@pytest.mark.parametrize("suffix", ["txt", "csv"])
def test_shared_prefixes_change_no_row(tmp_path, dataset_names, suffix):
    """Bulk scoring shares the state of names that start alike (duplicates included);
    each row is what the per-row recurrence writes."""
    import namelang

    lines = (dataset_names[::4] + HOSTILE) * 2
    if suffix == "csv":
        src = tmp_path / "in.csv"
        with open(src, "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows([["name"], *([n] for n in lines)])
    else:
        src = write_lines(tmp_path / "in.txt", lines)
    for share in (True, False):
        classifier = namelang.load("default", backend="rust", share_prefixes=share)
        score_file(src, tmp_path / f"{share}.csv", model=classifier, k=3, progress=False)
    shared, plain = read_csv(tmp_path / "True.csv"), read_csv(tmp_path / "False.csv")
    assert shared == plain and len(shared) == len(lines)


@pytest.mark.parametrize("backend", ["rust", "torch"])
def test_jsonl_output_fields(tmp_path, backend):
    src = write_lines(tmp_path / "in.txt", ["Zhou", "", "Tanaka"])
    out = tmp_path / "out.jsonl"
    score_file(src, out, k=3, backend=backend, progress=False)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["name"] for r in rows] == ["Zhou", "", "Tanaka"]
    assert rows[0]["language"] == "Chinese" and rows[0]["error"] is None
    assert len(rows[0]["top"]) == 3 and rows[0]["top"][0][0] == "Chinese"
    assert rows[1] == {
        "name": "",
        "ascii": "",
        "language": None,
        "probability": None,
        "top": [],
        "error": "empty",
    }
    assert rows[2]["language"] == "Japanese"


def test_csv_input_passes_columns_through_rfc4180_records(tmp_path):
    src = tmp_path / "people.csv"
    src.write_text(
        'id,surname,city\n1,Zhou,"Bei,jing"\n2,"Multi\nline",Oslo\n3\n4,Tanaka,Kyoto\n'
        "5,Smith,Leeds,extra\n",
        encoding="utf-8",
    )
    out = tmp_path / "out.tsv"
    summary = score_file(src, out, column="surname", progress=False)
    text = out.read_text(encoding="utf-8")
    lines = list(csv.reader(io.StringIO(text, newline=""), delimiter="\t"))
    assert lines[0] == ["id", "surname", "city", "ascii", "language", "probability", "error"]
    assert lines[1][2] == "Bei,jing" and lines[1][4] == "Chinese"
    # A quoted field may hold a line break (RFC 4180): one record, written back quoted.
    assert lines[2][:3] == ["2", "Multi\nline", "Oslo"] and lines[2][-1] == ""
    assert lines[3][0] == "3" and lines[3][-1] == "missing_column"
    assert lines[4][0] == "4" and lines[4][4] == "Japanese"
    assert lines[5][1] == "5,Smith,Leeds,extra" and lines[5][-1] == "invalid_csv"
    assert summary.rows == 5 == len(lines) - 1


def test_csv_input_without_the_column_is_an_error(tmp_path):
    src = tmp_path / "people.csv"
    src.write_text("id,surname\n1,Zhou\n")
    with pytest.raises(ValueError, match="no column 'name'"):
        score_file(src, tmp_path / "out.csv", progress=False)
    assert not (tmp_path / "out.csv").exists()


def test_jsonl_input_keeps_bad_lines(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"name": "Zhou", "id": 1}\nnot json\n{"id": 3}\n[1]\n', encoding="utf-8")
    out = tmp_path / "out.jsonl"
    score_file(src, out, progress=False)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["error"] for r in rows] == [None, "invalid_json", "missing_column", "invalid_json"]
    assert rows[0]["id"] == 1 and rows[0]["language"] == "Chinese"


@pytest.mark.parametrize("content", [b"", b"\n"])
def test_empty_inputs(tmp_path, content):
    src = tmp_path / "in.txt"
    src.write_bytes(content)
    out = tmp_path / "out.csv"
    summary = score_file(src, out, progress=False)
    assert summary.rows == content.count(b"\n")
    assert out.read_text().startswith("name,ascii,language,probability,error\n")


def test_header_only_csv(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("name,id\n")
    out = tmp_path / "out.csv"
    assert score_file(src, out, progress=False).rows == 0
    assert out.read_text() == "name,id,ascii,language,probability,error\n"


def test_cli_stdin_to_stdout():
    done = subprocess.run(
        [sys.executable, "-m", "namelang.cli", "score", "-", "--format", "jsonl", "-q"],
        input="Zhou\n\nHinton\n", capture_output=True, text=True, check=True,
    )  # fmt: skip
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["name"] for r in rows] == ["Zhou", "", "Hinton"]


def test_cli_main_reports_a_summary(tmp_path, capsys):
    src = write_lines(tmp_path / "in.txt", ["Zhou", "Hinton"])
    before = signal.getsignal(signal.SIGTERM)
    assert main(["score", str(src), "-o", str(tmp_path / "o.csv")]) == 0
    assert "rows 2, scored 2, flagged 0" in capsys.readouterr().err
    assert main(["score", str(tmp_path / "missing.txt")]) == 2
    # Called in-process, the CLI gives the caller's SIGTERM handler back: processes
    # forked later must not inherit one that raises KeyboardInterrupt.
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_leaves_no_output(tmp_path, sig, dataset_names):
    src = write_lines(tmp_path / "in.txt", dataset_names * 30)
    out = tmp_path / "out.csv"
    cmd = [
        sys.executable,
        "-m",
        "namelang.cli",
        "score",
        str(src),
        "-o",
        str(out),
        "--backend",
        "torch",
        "-q",
    ]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline and not any(
        p.name.endswith(".partial") for p in tmp_path.iterdir()
    ):
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(sig)
    assert proc.wait(60) != 0
    assert not out.exists()
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".partial")]
    assert main(["score", str(src), "-o", str(out), "-q", "--model", "tutorial"]) == 0
    assert len(out.read_text().splitlines()) == len(dataset_names) * 30 + 1


def _peak_rss_mb(cmd: list[str]) -> float:
    code = (
        "import resource, subprocess, sys;"
        "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL);"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *cmd], capture_output=True, text=True, check=True
    )
    return float(done.stdout)


@pytest.mark.slow
def test_memory_stays_bounded_on_ten_million_rows(tmp_path, dataset_names):
    src = tmp_path / "big.txt"
    block = ("\n".join(dataset_names) + "\n").encode()
    with open(src, "wb") as f:
        for _ in range(10_000_000 // len(dataset_names) + 1):
            f.write(block)
    load_only = [sys.executable, "-c", "import namelang; namelang.load('tutorial').predict(['x'])"]
    base = _peak_rss_mb(load_only)
    out = tmp_path / "out.csv"
    cmd = [
        sys.executable,
        "-m",
        "namelang.cli",
        "score",
        str(src),
        "-o",
        str(out),
        "--model",
        "tutorial",
        "-q",
    ]
    peak = _peak_rss_mb(cmd)
    assert peak - base <= 300, (
        f"peak RSS {peak:.0f} MB, {peak - base:.0f} MB above the loaded model"
    )
    with open(out, "rb") as f:
        assert (
            sum(1 for _ in f)
            == 10_000_000 // len(dataset_names) * len(dataset_names) + len(dataset_names) + 1
        )


def test_output_gets_ordinary_permissions(tmp_path):
    src = write_lines(tmp_path / "in.txt", ["Zhou"])
    out = tmp_path / "out.csv"
    score_file(src, out, progress=False)
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


@pytest.mark.parametrize("backend", ["rust", "torch"])
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_giant_line_is_flagged_not_held(tmp_path, backend, fmt, monkeypatch):
    import namelang.score as score_module

    monkeypatch.setattr(score_module, "CHUNK_BYTES", 1 << 16)
    giant = "Ab" * (score_module.MAX_LINE_BYTES + 12345)
    src = write_lines(tmp_path / "in.txt", ["Zhou", giant, "Hinton"])
    out = tmp_path / f"out.{fmt}"
    summary = score_file(src, out, backend=backend, progress=False)
    assert summary.rows == 3 and summary.flagged == 1
    if fmt == "csv":
        rows = read_csv(out)
        assert [r["error"] for r in rows] == ["", "too_long", ""]
        assert rows[1]["name"] == giant[:1000] and rows[2]["language"] == "English"
    else:
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert [r["error"] for r in rows] == [None, "too_long", None]
        assert rows[1]["name"] == giant[:1000] and rows[1]["top"] == []


@pytest.mark.parametrize("backend", ["rust", "torch"])
def test_giant_csv_and_jsonl_records_are_flagged_not_held(tmp_path, backend, monkeypatch):
    """A CSV field over the csv module's default limit (131,072 characters) is a row like
    any other; a CSV or JSONL line over MAX_LINE_BYTES is flagged too_long without being
    held; a quoted field that outgrows the limit is flagged invalid_csv; the rows after
    each keep their places."""
    import namelang.score as score_module

    monkeypatch.setattr(score_module, "MAX_LINE_BYTES", 1 << 18)
    csv_src = tmp_path / "in.csv"
    csv_src.write_text(
        f"id,name\n1,Zhou\n2,{'y' * 150_000}\n3,{'x' * 300_000}\n4,Hinton\n", encoding="utf-8"
    )
    summary = score_file(csv_src, tmp_path / "a.csv", backend=backend, progress=False)
    rows = read_csv(tmp_path / "a.csv")
    assert summary.rows == 4 and [r["id"] for r in rows] == ["1", "2", "3", "4"]
    assert [r["error"] for r in rows] == ["", "too_long", "too_long", ""]
    assert rows[1]["name"] == "y" * 150_000  # under the line limit: passed through whole
    assert len(rows[2]["name"]) == 1000 and rows[3]["language"]  # cut, then shown short

    runaway = tmp_path / "runaway.csv"
    runaway.write_text('id,name\n1,Zhou\n2,"' + ("z" * 200_000 + "\n") * 5, encoding="utf-8")
    summary = score_file(runaway, tmp_path / "c.csv", backend=backend, progress=False)
    rows = read_csv(tmp_path / "c.csv")
    # The quote never closes: the record is refused once over the field limit, and the
    # lines after it are read as records of their own (one row each, none dropped).
    assert rows[0]["error"] == "" and rows[1]["error"] == "invalid_csv"
    assert summary.rows == len(rows) >= 2

    jsonl_src = tmp_path / "in.jsonl"
    lines = [{"name": "Zhou"}, {"name": "Ab" * 200_000}, {"name": "Hinton"}]
    jsonl_src.write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    score_file(jsonl_src, tmp_path / "d.jsonl", backend=backend, progress=False)
    out = [json.loads(line) for line in (tmp_path / "d.jsonl").read_text().splitlines()]
    assert [r["error"] for r in out] == [None, "too_long", None]
    assert out[2]["language"] and len(out[1]["line"]) == 1000


def test_answers_kept_across_blocks_change_no_row(tmp_path, dataset_names):
    """A list that repeats its names block after block (the answer cache's case) gives
    the rows each name gets alone, and the same bytes run after run."""
    import random

    rng = random.Random(0)
    common = dataset_names[:50]
    names = [rng.choice(common) if rng.random() < 0.7 else rng.choice(dataset_names)
             for _ in range(60_000)]  # fmt: skip
    src = write_lines(tmp_path / "in.txt", names)
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    clf = namelang.load()
    score_file(src, first, model=clf, progress=False)
    score_file(src, second, model=clf, progress=False)
    assert first.read_bytes() == second.read_bytes()
    rows = read_csv(first)
    alone = {n: clf.predict([n], k=1) for n in set(names[:3000])}
    for name, row in zip(names[:3000], rows[:3000], strict=True):
        top = alone[name]
        if top and top[0]:
            assert row["language"] == top[0][0][0]
            assert row["probability"] == f"{top[0][0][1]:.6f}"

"""One row pipeline: every input format and both backends give the same added columns,
from the same row check, top-k and formatting (the native `Job`)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import namelang
import numpy as np
import pytest
from namelang import _native
from namelang.score import score_file

from .hostile import HOSTILE_LINES

NAMES = HOSTILE_LINES


def write_inputs(folder):
    """The same names as a name list, a CSV with other columns, a TSV and JSONL."""
    paths = {"text": folder / "in.txt", "csv": folder / "in.csv"}
    paths["text"].write_text("\n".join(NAMES) + "\n", encoding="utf-8")
    with open(paths["csv"], "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["id", "name", "city"])
        writer.writerows([i, n, "Oslo"] for i, n in enumerate(NAMES))
    paths["tsv"] = folder / "in.tsv"
    paths["tsv"].write_text(
        "name\tid\n" + "".join(f"{n}\t{i}\n" for i, n in enumerate(NAMES)), encoding="utf-8"
    )
    paths["jsonl"] = folder / "in.jsonl"
    paths["jsonl"].write_text(
        "".join(json.dumps({"id": i, "name": n}) + "\n" for i, n in enumerate(NAMES)),
        encoding="utf-8",
    )
    return paths


def added_columns(path, out_format, k, sets):
    """Each row's added columns, as the text the output holds."""
    text = path.read_text(encoding="utf-8")
    if out_format == "jsonl":
        keys = ["ascii", "language", "probability", "top", *(["set"] if sets else []), "error"]
        return [
            [json.dumps(json.loads(line)[key], separators=(",", ":")) for key in keys]
            for line in text.splitlines()
        ]
    width = 2 + 2 * k + (1 if sets else 0)
    rows = list(csv.reader(io.StringIO(text), delimiter="\t" if out_format == "tsv" else ","))
    return [row[-width:] for row in rows[1:]]


@pytest.mark.parametrize("out_format", ["csv", "jsonl"])
def test_every_input_format_and_backend_writes_the_same_added_columns(tmp_path, out_format):
    inputs = write_inputs(tmp_path)
    k, coverage = 2, 0.9
    results = {}
    for backend in ("rust", "torch"):
        clf = namelang.load("default", backend=backend)
        for in_format, path in inputs.items():
            out = tmp_path / f"{in_format}-{backend}.{out_format}"
            summary = score_file(
                path, out, k=k, model=clf, coverage=coverage, min_probability=0.3, progress=False
            )
            assert summary.rows == len(NAMES)
            results[in_format, backend] = added_columns(out, out_format, k, sets=True)
    reference = results["text", "rust"]
    assert len(reference) == len(NAMES)
    for (in_format, backend), rows in results.items():
        if backend == "rust":
            assert rows == reference, in_format  # the same bytes
        else:
            # The torch backend's log-probabilities agree to ~1e-6, so a probability's
            # sixth decimal may differ; every other column is the same text.
            for ours, theirs in zip(rows, reference, strict=True):
                assert _without_probabilities(ours) == _without_probabilities(theirs)
    errors = [row[-1].strip('"') for row in reference]
    assert errors[1:4] == ["empty", "empty", "no_letters"] and errors[8] == "too_long"


def _without_probabilities(row):
    return [cell for cell in row if not cell.replace(".", "", 1).isdigit() and "[[" not in cell]


def test_probabilities_have_one_format_in_every_output(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"name": "Zhou"}\n', encoding="utf-8")
    for backend in ("rust", "torch"):
        out = tmp_path / f"out-{backend}.jsonl"
        score_file(src, out, k=2, model=namelang.load(backend=backend), progress=False)
        line = out.read_text(encoding="utf-8")
        number = line.split('"probability":')[1].split(",")[0]
        assert len(number) == 8 and number.startswith("0."), line


def test_k_is_capped_at_the_languages_on_every_path(tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("Zhou\n", encoding="utf-8")
    widths = set()
    for backend in ("rust", "torch"):
        clf = namelang.load(backend=backend)
        for in_format in ("text", "jsonl"):
            out = tmp_path / "out.csv"
            if in_format == "jsonl":
                src.write_text('{"name": "Zhou"}\n', encoding="utf-8")
            score_file(src, out, input_format=in_format, k=10**9, model=clf, progress=False)
            header = out.read_text(encoding="utf-8").splitlines()[0].split(",")
            widths.add(len(header))
        assert len(clf.predict(["Zhou"], k=2**64)[0]) == 18
    assert widths == {1 + 1 + 2 * 18 + 1}


def test_a_job_refuses_options_out_of_range():
    spec = namelang.load("tutorial").spec
    for bad in ({"k": 0}, {"k": -1}, {"max_length": 0}, {"max_length": 10**20}):
        with pytest.raises(ValueError):
            _native.Job(spec, **bad)
    with pytest.raises(ValueError, match="min probability"):
        _native.Job(spec, min_probability=1.5)
    with pytest.raises(TypeError):
        _native.Job(spec, k="3")
    with pytest.raises(TypeError, match=r"Model .* or a ModelSpec"):
        _native.Job(["A", "B"])
    assert _native.Job(spec, k=2**64).k == 18
    assert _native.Job(spec).max_length == _native.DEFAULT_MAX_LENGTH == 256


def test_a_job_given_log_probs_answers_as_the_job_that_scores_itself():
    clf = namelang.load()
    native = clf.job("csv", k=3)
    given = _native.Job(clf.spec, format="csv", k=3)
    assert native.scores_itself and not given.scores_itself
    names = ["Zhou", "", "Hinton", "王"]
    reads = given.texts_to_score(names)
    assert reads == ["Zhou", "", "Hinton", ""]
    scores = clf.log_probs(reads)
    data, n, scored, flagged = given.format_rows(names, names, None, scores)
    assert (data, n, scored, flagged) == native.format_rows(names, names, None)
    assert (n, scored, flagged) == (4, 2, 2)
    assert given.answers(names, scores) == native.answers(names)
    assert [a[2] for a in native.answers(names)] == [None, "empty", None, "no_letters"]
    # tops: the answers' top-k alone, from either kind of job.
    assert native.tops(names) == given.tops(names, scores) == [a[0] for a in native.answers(names)]
    with pytest.raises(ValueError, match="explaining job"):
        clf.job(k=2, explain=1).tops(names)
    with pytest.raises(ValueError, match="shape"):
        given.format_rows(names, names, None, scores[:2])
    with pytest.raises(ValueError, match="give its log_probs"):
        given.answers(names)
    top, _, error = given.columns(names, scores)
    assert np.array_equal(top[[0, 2], 0], scores[[0, 2]].argmax(axis=1))
    assert error.tolist() == [0, _native.ERROR_CODES.index("empty") + 1, 0, 2]


def test_low_confidence_answers_name_the_languages_they_withhold():
    clf = namelang.load()
    job = clf.job(k=2, min_probability=0.95)
    (top, _, error, _), (sure, _, none, _) = job.answers(["Smith", "Zhou"])
    assert error == "low_confidence" and len(top) == 2 and top[0][1] < 0.95
    assert none is None and sure[0][0] == "Chinese"
    assert job.tops(["Smith", "Zhou"]) == [top, sure]  # withheld languages shown, as predict does
    row = job.format_rows(["Smith"], ["Smith"], None)[0].decode()
    assert row.startswith("Smith,Smith,,,,,low_confidence")


def test_every_error_code_is_documented():
    # The codes live in one Rust enum (rows.rs); a new one needs its words in the README.
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    missing = [code for code in _native.ERROR_CODES if f"`{code}`" not in readme]
    assert not missing, missing

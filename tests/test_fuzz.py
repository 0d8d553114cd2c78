"""Property tests in the default test command (about half a minute together): mutated
bundled model files get one verdict from every loader on both backends, and random bytes
spliced into real names keep one output row per input record, in order, in every input
format on both backends. The text rules are fuzzed in Rust (`normalize::tests`), with
the reader (`model_file::tests`) and the line splitter (`score::tests`).

Examples are derived from each test's name (`derandomize`), so a failure reproduces;
NAMELANG_FUZZ_EXAMPLES raises their number for a longer run."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import struct

import namelang
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from namelang import model_file
from namelang.classifier import model_path
from namelang.score import score_file

EXAMPLES = int(os.environ.get("NAMELANG_FUZZ_EXAMPLES", "250"))
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
BUNDLED = {name: model_path(name).read_bytes() for name in ("tutorial", "default")}
PROBE = ["Hinton", "Zhou", "", "Ślusàrski", "O'Neal", "x" * 80]


def header_length(data: bytes) -> int:
    return 8 + struct.unpack("<Q", data[:8])[0]


def without_digest(data: bytes) -> bytes:
    """The same model as a file without a digest (an older or hand-made one)."""
    end = header_length(data)
    header = json.loads(data[8:end])
    del header["__metadata__"]["digest"]
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data[end:]


@st.composite
def mutated_files(draw) -> bytes:
    data = BUNDLED[draw(st.sampled_from(sorted(BUNDLED)))]
    if draw(st.booleans()):
        data = without_digest(data)
    kind = draw(st.sampled_from(["flip", "truncate", "header"]))
    out = bytearray(data)
    if kind == "truncate":
        return bytes(out[: draw(st.integers(0, len(out) - 1))])
    span = (8, header_length(data)) if kind == "header" else (0, len(out))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(span[0], span[1] - 1))
        out[at] ^= draw(st.integers(1, 255))
    return bytes(out)


def verdict(load) -> str | None:
    """None when the load succeeds; else the ValueError's message without the path."""
    try:
        load()
    except ValueError as e:
        return str(e).split("invalid model file: ")[-1]
    return None


@FUZZ
@given(data=mutated_files())
def test_mutated_model_files_get_one_verdict_on_both_backends(tmp_path, data):
    path = tmp_path / "mutated.safetensors"
    path.write_bytes(data)
    verdicts = {
        "reader": verdict(lambda: model_file.read(path)),
        "rust": verdict(lambda: namelang.load(path, backend="rust")),
        "torch": verdict(lambda: namelang.load(path, backend="torch")),
        "bytes": verdict(lambda: namelang._native.Model.from_bytes(data)),
    }
    assert len(set(verdicts.values())) == 1, verdicts
    event("loaded" if verdicts["rust"] is None else verdicts["rust"].split(":")[0][:40])
    if verdicts["rust"] is not None:
        return
    rust = namelang.load(path, backend="rust").log_probs(PROBE)
    torch = namelang.load(path, backend="torch").log_probs(PROBE)
    assert rust.shape == torch.shape == (len(PROBE), len(rust[0]))
    assert (np.isnan(rust) == np.isnan(torch)).all()  # the same rows get no number
    both = np.isfinite(rust) & np.isfinite(torch)
    scale = np.maximum(1.0, np.abs(np.where(both, rust, 0)))
    assert (np.abs(np.where(both, rust - torch, 0)) <= 1e-3 * scale).all()


def test_flips_in_a_files_tensors_are_always_a_digest_mismatch(tmp_path):
    rng = np.random.default_rng(0)
    for name, data in BUNDLED.items():
        start = header_length(data)
        for _ in range(20):
            flipped = bytearray(data)
            flipped[int(rng.integers(start, len(data)))] ^= int(rng.integers(1, 256))
            out = bytes(flipped)
            assert "digest mismatch" in verdict(lambda o=out: namelang._native.Model.from_bytes(o))
            path = tmp_path / f"{name}.safetensors"
            path.write_bytes(out)
            assert "digest mismatch" in verdict(lambda p=path: model_file.read(p))


@FUZZ
@given(data=st.binary(max_size=300))
def test_random_bytes_are_refused_not_crashed_on(data):
    assert verdict(lambda: namelang._native.Model.from_bytes(data)) is not None


NAMES = ["Hinton", "Schmidhuber", "Zhou", "Ślusàrski", "O'Néal", "Nguyen", ""]
# Spliced bytes: anything but a line break, which would make a second record.
NOISE = st.binary(max_size=6).map(lambda b: b.replace(b"\n", b"").replace(b"\r", b""))


@st.composite
def noisy_names(draw) -> list[bytes]:
    rows = []
    for _ in range(draw(st.integers(0, 12))):
        name = draw(st.sampled_from(NAMES)).encode()
        at = draw(st.integers(0, len(name)))
        rows.append(name[:at] + draw(NOISE) + name[at:])
    return rows


@pytest.fixture(scope="module")
def classifiers():
    return {b: namelang.load("tutorial", backend=b) for b in ("rust", "torch")}


def read_rows(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@FUZZ
@given(names=noisy_names())
def test_spliced_bytes_keep_one_row_per_text_line_in_order(tmp_path, classifiers, names):
    src = tmp_path / "in.txt"
    src.write_bytes(b"".join(b"Hinton\n" + n + b"\n" for n in names))
    for backend, clf in classifiers.items():
        out = tmp_path / f"{backend}.csv"
        score_file(src, out, model=clf, progress=False)
        rows = read_rows(out)
        assert len(rows) == 2 * len(names), backend
        shown = [r["name"] for r in rows[1::2]]
        assert shown == [n.decode("utf-8", "replace") for n in names], backend
        assert all(r["name"] == "Hinton" and not r["error"] for r in rows[::2])


@FUZZ
@given(names=noisy_names(), sep=st.sampled_from([b",", b"\t"]))
def test_spliced_bytes_keep_one_row_per_csv_record_in_order(tmp_path, classifiers, names, sep):
    ext = "csv" if sep == b"," else "tsv"
    src = tmp_path / f"in.{ext}"
    src.write_bytes(b"id" + sep + b"name\n" + b"".join(b"%d" % i + sep + n + b"\n"
                                                       for i, n in enumerate(names)))  # fmt: skip
    for backend, clf in classifiers.items():
        out = tmp_path / f"{backend}.csv"
        score_file(src, out, model=clf, progress=False, delimiter=sep.decode())
        rows = read_rows(out)
        assert len(rows) <= len(names), backend
        # Every input line is in the output once, in order: as its row's id; or, when a
        # quoted field ran over line breaks (RFC 4180), inside that record's field; or,
        # for a record the reader could not split, as its line shown in the name column.
        seen, at_line = [], re.compile(rf"(?:^|\n)(\d+){re.escape(sep.decode())}")
        for row in rows:
            if row["error"] in ("invalid_csv", "too_long") and not row["id"]:
                seen += at_line.findall(row["name"])  # the record's text, shown whole
                continue
            seen.append(row["id"])
            for value in row.values():
                seen += [m for m in at_line.findall(value or "") if not value.startswith(m)]
        assert seen == [str(i) for i in range(len(names))], (backend, rows)


@FUZZ
@given(names=noisy_names())
def test_spliced_bytes_keep_one_row_per_jsonl_line_in_order(tmp_path, classifiers, names):
    src = tmp_path / "in.jsonl"
    lines = []
    for i, n in enumerate(names):
        lines.append(b'{"id": %d, "name": "' % i + n + b'"}\n')
    src.write_bytes(b"".join(lines))
    for backend, clf in classifiers.items():
        out = tmp_path / f"{backend}.jsonl"
        score_file(src, out, model=clf, format="jsonl", progress=False)
        text = out.read_text(encoding="utf-8")
        records = [json.loads(line) for line in io.StringIO(text)]
        assert len(records) == len(names), backend
        for i, record in enumerate(records):
            if record["error"] not in ("invalid_json", "invalid_utf8"):
                assert record["id"] == i, (backend, record)

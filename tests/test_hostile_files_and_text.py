"""Hostile model files, hostile text, threads and processes: refused cleanly or
answered by the rules, never a crash."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import struct

import namelang
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from namelang import model_file
from namelang.classifier import model_path

from .hostile import LONG_NAME

TUTORIAL = model_path("tutorial").read_bytes()


def both_refuse(tmp_path, data: bytes, message: str) -> None:
    path = tmp_path / "bad.safetensors"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=message or None):
        model_file.read(path)
    with pytest.raises(ValueError, match=message or None):
        namelang._native.Model.from_bytes(data)
    with pytest.raises(ValueError, match=message or None):
        namelang._native.Model(str(path))


def with_header(header: dict, data: bytes = b"") -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


def _overlapping(header: dict) -> list[int]:
    # i2h.bias (512 bytes) moved onto the start of i2o.weight.
    start = header["i2o.weight"]["data_offsets"][0]
    return [start, start + 512]


def tutorial_header() -> tuple[dict, bytes]:
    """The bundled tutorial's header without its digest (as a hand-made file would be,
    so that edits meet the checks after the digest's), and its data."""
    (n,) = struct.unpack("<Q", TUTORIAL[:8])
    header = json.loads(TUTORIAL[8 : 8 + n])
    del header["__metadata__"]["digest"]
    return header, TUTORIAL[8 + n :]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "too short"),
        (b"\x01\x02", "too short"),
        (TUTORIAL[:7], "too short"),
        (struct.pack("<Q", 1 << 40) + b"{}", "claims"),
        (struct.pack("<Q", 100) + b"{}", "claims"),
        (struct.pack("<Q", 4) + b"\xff\xfe{}", "header"),
        (struct.pack("<Q", 4) + b"nope", "header"),
        (with_header({"__metadata__": {"format": "namelang/1"}}), "alphabet"),
        (with_header({}), "metadata"),
        (b"\x80\x04\x95pickle", "pickle"),
        (b"PK\x03\x04zip", "pickle"),
    ],
)
def test_malformed_files_are_refused(tmp_path, data, message):
    both_refuse(tmp_path, data, message)


def test_truncated_file_is_refused(tmp_path):
    both_refuse(tmp_path, TUTORIAL[:-100], "")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda h: h["i2h.bias"].update(dtype="F16"), ""),
        (lambda h: h["i2h.bias"].update(dtype="Q9"), ""),
        (lambda h: h["i2h.bias"].update(data_offsets=_overlapping(h)), ""),
        (lambda h: h["i2o.bias"].update(data_offsets=[10**12, 10**12 + 72]), ""),
        (lambda h: h["__metadata__"].update(format="namelang/2"), "format"),
        (lambda h: h["__metadata__"].update(categories=json.dumps(["a"] * 3)), "categories"),
        (lambda h: h["__metadata__"].update(hidden_size="99999999999"), "hidden_size"),
    ],
)
def test_inconsistent_headers_are_refused(tmp_path, mutate, message):
    header, data = tutorial_header()
    mutate(header)
    both_refuse(tmp_path, with_header(header, data), message)


def test_non_finite_weights_are_refused(tmp_path):
    header, data = tutorial_header()
    start = header["i2o.bias"]["data_offsets"][0]
    data = data[:start] + struct.pack("<f", float("inf")) + data[start + 4 :]
    both_refuse(tmp_path, with_header(header, data), "NaN or Inf")


@settings(max_examples=500, deadline=None)
@given(st.lists(st.text(max_size=40), max_size=20))
def test_any_text_gets_a_defined_row(names):
    clf = namelang.load("default", backend="rust")
    out = clf.log_probs(names)
    assert out.shape == (len(names), 18)
    read = namelang.text.apply_text_rule(names, clf.spec.text_rule)
    for letters, row in zip(read, out, strict=True):
        if letters:  # what the model reads: a name of spaces only reads nothing
            assert np.isfinite(row).all()
        else:
            assert np.isnan(row).all()


@pytest.mark.parametrize("model", ["tutorial", "default"])
def test_hostile_strings_through_the_classifier(model, hostile_names):
    clf = namelang.load(model, backend="rust")
    names = [*hostile_names, LONG_NAME]
    out = clf.log_probs(names)
    letters = namelang._native.lengths(names, clf.spec.text_rule)
    assert out.shape == (len(names), 18) and letters[-1] == len(LONG_NAME)
    finite = np.isfinite(out).all(axis=1)
    # A row of numbers exactly where the model reads letters, NaN where it reads none.
    assert (finite[:-1] == (letters[:-1] > 0)).all()
    assert np.isnan(out[letters == 0]).all()
    assert np.allclose(np.exp(out[finite]).sum(axis=1), 1, atol=1e-4)
    if clf.spec.cell == "elman":
        # The tutorial's cell has no squashing: a million letters overflow it, and the
        # row says so (model_error) instead of naming a language.
        job = clf.job(max_length=namelang._native.MAX_LENGTH_LIMIT)
        assert not finite[-1] and clf.answers([LONG_NAME], job)[0][2] == "model_error"
    else:
        assert finite[-1]


def _score_in_child(names):
    return namelang.load("tutorial", backend="rust").log_probs(names)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_works_in_child_processes(method, dataset_names):
    names = dataset_names[:5000]
    clf = namelang.load("tutorial", backend="rust")
    expected = clf.log_probs(names)  # the parent's thread pool is up before a fork
    pool = mp.get_context(method).Pool(2)
    try:
        # A hang (a lock inherited locked from the parent) fails here, not the whole run.
        results = pool.map_async(_score_in_child, [names, names]).get(timeout=120)
        # Workers leave when told to, not by SIGTERM (`Pool.terminate`, what `with`
        # does): forked workers inherit the parent's SIGTERM handler, and when that
        # raised (as one an in-process `namelang.cli.main` left behind did, before it
        # gave the caller's back) a run hung here for 14 minutes, the parent waiting
        # on a worker stuck in its task wait.
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()
    for r in results:
        np.testing.assert_array_equal(r, expected)


def test_a_rust_panic_is_a_python_exception_and_the_pool_survives(dataset_names):
    with pytest.raises(BaseException, match="namelang test panic") as caught:
        namelang._native._testing.panic_in_pool()
    assert type(caught.value).__name__ == "PanicException"
    names = dataset_names * 2  # large enough to run in the pool again
    clf = namelang.load("tutorial", backend="rust")
    np.testing.assert_array_equal(clf.log_probs(names)[:100], clf.log_probs(names[:100]))


def test_a_header_length_starting_with_0x80_is_not_mistaken_for_a_pickle(tmp_path):
    header, data = tutorial_header()
    raw = json.dumps(header).encode()
    raw += b" " * ((0x80 - len(raw)) % 256)  # JSON allows trailing spaces
    blob = struct.pack("<Q", len(raw)) + raw + data
    assert blob[0] == 0x80
    path = tmp_path / "m.safetensors"
    path.write_bytes(blob)
    assert model_file.read(path)[0].categories == namelang.load("tutorial").categories
    assert namelang._native.Model.from_bytes(blob).log_probs(["Zhou"]).shape == (1, 18)


def test_one_long_name_costs_its_own_length_not_the_batchs(tmp_path):
    """A 2,000,000-letter name among short ones: letters are stored row after row, so
    memory grows with the letters there are (a padded (steps, rows) layout took 210 MB
    more here), and its row matches the name scored alone."""
    import subprocess
    import sys

    from .test_backend_parity import make_model

    path, _ = make_model(tmp_path, "gru", 8, seed=4)
    script = f"""
import resource, numpy as np, namelang
m = namelang._native.Model({str(path)!r})
short = ["Zhou", "Hinton", "Abel"] * 127
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for share in (True, False):
    out = m.log_probs(["ab" * 1_000_000, *short], "recurrence", share)
grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
alone = m.log_probs(["ab" * 1_000_000], "recurrence")[0]
assert np.array_equal(out[0], alone), (out[0], alone)
assert np.array_equal(out[1:], m.log_probs(short, "recurrence"))
print(grown_mb)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert float(done.stdout) < 100, f"peak RSS grew by {done.stdout.strip()} MB"


def _raw_header(text: str, data: bytes) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw + data


def _malformed_files() -> dict[str, bytes]:
    """Files one loader once accepted and the other refused, each a byte string."""
    header, data = tutorial_header()
    text = json.dumps(header)
    first = next(k for k in header if k != "__metadata__")
    meta = header["__metadata__"]

    def with_meta(**changes) -> bytes:
        return with_header({**header, "__metadata__": {**meta, **changes}}, data)

    gap = json.loads(text)
    for info in gap.values():
        if "data_offsets" in info:
            info["data_offsets"] = [o + 4 for o in info["data_offsets"]]
    shape_float = json.loads(text)
    shape_float["i2o.bias"]["shape"] = [18.0]
    return {
        "bytes after the last tensor": TUTORIAL + b"\0" * 8,
        "a gap between tensors": with_header(gap, b"\0" * 4 + data),
        "a duplicate tensor key": _raw_header(
            text[:-1] + f", {json.dumps(first)}: {json.dumps(header[first])}}}", data
        ),
        "a duplicate __metadata__": _raw_header(
            text[:-1] + ', "__metadata__": {"format": "namelang/1"}}', data
        ),
        "shape [18.0]": with_header(shape_float, data),
        "hidden_size ' 128 '": with_meta(hidden_size=" 128 "),
        "hidden_size '1_28'": with_meta(hidden_size="1_28"),
        "hidden_size in Arabic-Indic digits": with_meta(hidden_size="١٢٨"),
        "a category with a lone surrogate": with_meta(
            categories=meta["categories"].replace('"Arabic"', '"\\ud800"')
        ),
        "a header nested 100k deep": _raw_header(
            '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}", data
        ),
        "shape 18": with_header({**header, "i2o.bias": {**header["i2o.bias"], "shape": 18}}, data),
        "shape null": with_header(
            {**header, "i2o.bias": {**header["i2o.bias"], "shape": None}}, data
        ),
    }


@pytest.mark.parametrize("case", list(_malformed_files()))
def test_both_loaders_give_one_verdict_on_malformed_files(tmp_path, case):
    data = _malformed_files()[case]
    path = tmp_path / "bad.safetensors"
    path.write_bytes(data)
    messages = []
    for load in (
        lambda: model_file.read(path),
        lambda: namelang.load(path, backend="torch"),
        lambda: namelang._native.Model(str(path)),
        lambda: namelang._native.Model.from_bytes(data),
    ):
        with pytest.raises(ValueError) as refused:
            load()
        messages.append(str(refused.value).split("invalid model file: ")[-1])
    assert len(set(messages)) == 1, messages


def test_only_regular_files_of_their_declared_size_are_read(tmp_path):
    import resource

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    sparse = tmp_path / "sparse.safetensors"
    with open(sparse, "wb") as f:
        f.truncate(2 << 30)
    big_header = tmp_path / "claims.safetensors"
    header, _ = tutorial_header()
    big_header.write_bytes(with_header(header, b""))  # declares data it does not have
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for path, message in [
        ("/dev/zero", "not a regular file"),
        ("/dev/urandom", "not a regular file"),
        (fifo, "not a regular file"),
        (tmp_path, "not a regular file"),
        (sparse, "more than|header"),
        (big_header, "declares"),
    ]:
        for load in (model_file.read, namelang._native.Model):
            with pytest.raises(ValueError, match=message):
                load(str(path))
    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kb < 200_000  # nothing near the sparse file's 2 GB was read

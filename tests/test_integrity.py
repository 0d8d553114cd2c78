"""Model integrity: the digest every written file carries, the self-test every loaded
model passes, and `model_error` for a name a model gives no number for."""

from __future__ import annotations

import json
import struct
import subprocess
import sys

import namelang
import numpy as np
import pytest
from namelang import model_file
from namelang.classifier import model_path
from namelang.score import score_file

BUNDLED = ("default", "tutorial")


def split(data: bytes) -> tuple[dict, bytes]:
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + n]), data[8 + n :]


def join(header: dict, body: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + body


def every_loader(path):
    """The ways a file is loaded: PyTorch's reader, both backends, the bytes API."""
    return (
        lambda: model_file.read(path),
        lambda: namelang.load(path, backend="torch"),
        lambda: namelang.load(path, backend="rust"),
        lambda: namelang._native.Model.from_bytes(path.read_bytes()),
    )


def refused_by_all(path, message: str) -> None:
    for load in every_loader(path):
        with pytest.raises(ValueError, match=message):
            load()


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_models_carry_the_digest_of_their_contents(name):
    spec, tensors = model_file.read(model_path(name))
    stated = spec.metadata["digest"]
    assert stated.startswith("sha256:") and len(stated) == 71
    assert namelang._native.model_digest(spec.metadata, list(tensors.items())) == stated
    # The digest covers the metadata too: another seed, another digest.
    other = {**spec.metadata, "seed": "not the seed"}
    assert namelang._native.model_digest(other, list(tensors.items())) != stated


@pytest.mark.parametrize("name", BUNDLED)
@pytest.mark.parametrize("where", [0.0, 0.5, 1.0])
def test_a_flipped_weight_bit_is_a_digest_mismatch_everywhere(tmp_path, name, where):
    header, body = split(model_path(name).read_bytes())
    at = min(int(where * len(body)), len(body) - 1)
    damaged = bytearray(body)
    damaged[at] ^= 0x40  # an exponent bit: the kind of flip that gave NaN answers
    path = tmp_path / f"{name}.safetensors"
    path.write_bytes(join(header, bytes(damaged)))
    refused_by_all(path, "digest mismatch")
    with pytest.raises(ValueError, match=str(path)):
        model_file.read(path)


def test_edited_metadata_is_a_digest_mismatch(tmp_path):
    header, body = split(model_path("tutorial").read_bytes())
    meta = header["__metadata__"]
    categories = json.loads(meta["categories"])
    categories[0], categories[1] = categories[1], categories[0]  # labels swapped
    meta["categories"] = json.dumps(categories)
    path = tmp_path / "swapped.safetensors"
    path.write_bytes(join(header, body))
    refused_by_all(path, "digest mismatch")


@pytest.mark.parametrize(
    "digest", ["", "sha256:", "md5:" + "0" * 64, "sha256:" + "G" * 64, "sha256:" + "A" * 64]
)
def test_a_malformed_digest_is_refused(tmp_path, digest):
    header, body = split(model_path("tutorial").read_bytes())
    header["__metadata__"]["digest"] = digest
    path = tmp_path / "bad.safetensors"
    path.write_bytes(join(header, body))
    refused_by_all(path, 'not "sha256:" and 64 hex digits')


def test_files_without_a_digest_still_load_with_every_other_check(tmp_path):
    header, body = split(model_path("tutorial").read_bytes())
    del header["__metadata__"]["digest"]
    path = tmp_path / "old.safetensors"
    path.write_bytes(join(header, body))
    names = ["Hinton", "Schmidhuber", "Zhou", ""]
    want = namelang.load("tutorial").log_probs(names)
    got = namelang.load(path).log_probs(names)
    assert np.array_equal(got, want, equal_nan=True)


def test_rewriting_a_read_file_gives_a_fresh_digest(tmp_path):
    spec, tensors = model_file.read(model_path("tutorial"))
    tensors["i2o.bias"] = tensors["i2o.bias"] + np.float32(0.5)
    path = model_file.write(tmp_path / "again.safetensors", spec, tensors)
    again, _ = model_file.read(path)
    assert again.metadata["digest"] != spec.metadata["digest"]
    # Adding one number to every logit changes no probability.
    want = namelang.load("tutorial").log_probs(["Zhou", "Hinton"])
    np.testing.assert_allclose(namelang.load(path).log_probs(["Zhou", "Hinton"]), want, atol=1e-5)


def overflowing(tmp_path, scale: float, letters: str) -> str:
    """The tutorial model, rewritten (with a valid digest) so that the output logit of
    its first language overflows float32 for names ending in one of `letters`."""
    spec, tensors = model_file.read(model_path("tutorial"))
    weight = tensors["i2o.weight"].copy()
    for letter in letters:
        weight[0, namelang.ALPHABET.index(letter)] = np.float32(scale)
    bias = tensors["i2o.bias"].copy()
    bias[0] = np.float32(scale)
    path = tmp_path / f"overflow_{len(letters)}.safetensors"
    model_file.write(path, spec, {**tensors, "i2o.weight": weight, "i2o.bias": bias})
    return path


def test_weights_that_overflow_on_every_name_are_refused_at_load(tmp_path):
    path = overflowing(tmp_path, 3e38, namelang.ALPHABET)
    refused_by_all(path, "probe name")
    done = subprocess.run(
        [sys.executable, "-m", "namelang.cli", "predict", "Zhou", "--model", str(path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "NaN" in done.stderr and done.stdout == ""


@pytest.mark.parametrize("backend", ["rust", "torch"])
def test_a_name_the_model_gives_nan_is_a_model_error_row(tmp_path, backend):
    path = overflowing(tmp_path, 3e38, "q")  # names ending in q overflow; probes do not
    clf = namelang.load(path, backend=backend)
    names = ["Zhou", "Ashq", "", "Hinton", "Rafiq"]
    out = clf.log_probs(names)
    assert np.isnan(out[[1, 2, 4]]).any(axis=1).all() and np.isfinite(out[[0, 3]]).all()
    src = tmp_path / "in.txt"
    src.write_text("\n".join(names) + "\n")
    for fmt in ("csv", "jsonl"):
        dst = tmp_path / f"out.{fmt}"
        summary = score_file(src, dst, model=clf, format=fmt, progress=False)
        text = dst.read_text().splitlines()
        rows = (
            [json.loads(r) for r in text]
            if fmt == "jsonl"
            else [dict(zip(text[0].split(","), r.split(","), strict=True)) for r in text[1:]]
        )
        assert [r["error"] or None for r in rows] == [
            None, "model_error", "empty", None, "model_error"
        ]  # fmt: skip
        assert rows[1]["ascii"] == "Ashq" and not rows[1]["language"]
        assert summary.rows == 5 and summary.flagged == 3
    if backend == "rust":
        import pandas as pd

        frame = namelang.score_batch(pd.DataFrame({"name": names}), model=path)
        assert frame["error"].tolist()[1] == "model_error"
        assert frame["language"].isna().tolist() == [False, True, True, False, True]
    done = subprocess.run(
        [sys.executable, "-m", "namelang.cli", "predict", "Ashq", "Zhou", "--model", str(path),
         "--backend", backend],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "model_error" in done.stdout.splitlines()[0]
    assert "Chinese" in done.stdout.splitlines()[1]

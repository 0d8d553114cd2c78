"""Explanations: the parts of a name that raised its top language, on both backends,
faithful to the model, in `predict --explain` and `score --explain`."""

from __future__ import annotations

import csv
import json
import random
import subprocess
import sys

import namelang
import numpy as np
import pytest
from namelang.data import split_names
from namelang.score import score_file
from namelang.text import apply_text_rule


@pytest.fixture(scope="module")
def test_names(names_by_language) -> list[str]:
    """Names of the default model's test part (never trained on), a fixed sample."""
    split = split_names(names_by_language)
    names = sorted({name for name, _ in split.test})
    return random.Random(0).sample(names, 400)


@pytest.fixture(scope="module")
def classifiers():
    return {b: namelang.load("default", backend=b, precision="f32") for b in ("rust", "torch")}


def test_parts_are_spans_of_the_name_as_read_best_first(classifiers):
    clf = classifiers["rust"]
    names = ["Schmidhuber", "  ZHOU ", "Иванов", "", "123", "a", "Hinton"]
    out = clf.explain(names, k=3)
    reads = apply_text_rule(names, clf.spec.text_rule)
    assert out[3] == [] and out[4] == [] and out[5] == []  # nothing to delete from "a"
    for read, parts in zip(reads, out, strict=True):
        assert len(parts) <= 3
        for p in parts:
            assert set(p) == {"text", "start", "end", "weight"}
            assert read[p["start"] : p["end"]] == p["text"] and p["weight"] > 0
        assert [p["weight"] for p in parts] == sorted((p["weight"] for p in parts), reverse=True)
    assert out[1] == clf.explain(["zhou"], k=3)[0]  # read case- and space-blind
    assert len(clf.explain(["Schmidhuber"], k=1)[0]) == 1
    # Past 1,024 letters no parts (their candidates would grow with the square).
    _, candidates = namelang._native.explain_candidates(["ab" * 512], "romanize")
    assert len(candidates) == 4 * 1024 - 6
    assert namelang._native.explain_candidates(["ab" * 513], "romanize")[1] == []
    assert clf.explain(["ab" * 513], k=2) == [[]]
    with pytest.raises(ValueError, match="k must be at least 1"):
        clf.explain(["Zhou"], k=0)
    with pytest.raises(TypeError, match="single str"):
        clf.explain("Zhou")


def test_both_backends_give_the_same_parts(classifiers, test_names):
    rust = classifiers["rust"].explain(test_names, k=3)
    torch = classifiers["torch"].explain(test_names, k=3)
    same = 0
    for a, b in zip(rust, torch, strict=True):
        spans_a = [(p["start"], p["end"]) for p in a]
        spans_b = [(p["start"], p["end"]) for p in b]
        if spans_a == spans_b:
            same += 1
            np.testing.assert_allclose(
                [p["weight"] for p in a], [p["weight"] for p in b], atol=2e-3, rtol=1e-3
            )
        else:  # only where two parts' weights tie within the parity bound
            weights = sorted(p["weight"] for p in a + b)
            assert min(np.diff(weights)) < 2e-3, (a, b)
    assert same >= 0.99 * len(test_names), same


def test_deleting_the_top_part_costs_more_than_another_part_of_its_length(classifiers, test_names):
    """Held on the torch backend (another implementation of the forward pass) with the
    deletions made here: the top part against a random other part of the same length."""
    clf, torch = classifiers["rust"], classifiers["torch"]
    rng = random.Random(1)
    reads = apply_text_rule(test_names, clf.spec.text_rule)
    pairs, owners, full = [], [], torch.log_probs(test_names)
    for i, (read, parts) in enumerate(zip(reads, clf.explain(test_names, k=1), strict=True)):
        if not parts:
            continue
        start, end = parts[0]["start"], parts[0]["end"]
        others = [s for s in range(len(read) - (end - start) + 1) if s != start]
        if not others:
            continue
        other = rng.choice(others)
        pairs.append((read[:start] + read[end:], read[:other] + read[other + end - start :]))
        owners.append(i)
    deleted = torch.log_probs([text for pair in pairs for text in pair]).reshape(len(pairs), 2, -1)
    wins = 0
    for i, row in zip(owners, deleted, strict=True):
        top = int(np.argmax(full[i]))
        wins += row[0, top] < row[1, top]
    print(f"top part costs more on {wins}/{len(pairs)} = {wins / len(pairs):.3f}")
    assert len(pairs) >= 350
    assert wins >= 0.8 * len(pairs), wins / len(pairs)


@pytest.mark.parametrize("backend", ["rust", "torch"])
def test_score_and_predict_show_the_parts(tmp_path, backend):
    src = tmp_path / "in.csv"
    src.write_text("id,name\n1,Schmidhuber\n2,\n3,王\n4,Zhou\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    score_file(src, out, backend=backend, explain=2, progress=False)
    with open(out, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[-2:] == ["why", "error"]
    want = namelang.load("default").explain(["Schmidhuber", "Zhou"], k=2)
    for row, parts in zip([rows[0], rows[3]], want, strict=True):
        shown = [item.split(":") for item in row["why"].split("|")]
        assert [t for t, _ in shown] == [p["text"] for p in parts]
        assert all(
            abs(float(w) - p["weight"]) < 2e-3 for (_, w), p in zip(shown, parts, strict=True)
        )
    assert rows[1]["why"] == rows[2]["why"] == ""
    jsonl = tmp_path / "out.jsonl"
    score_file(src, jsonl, backend=backend, explain=2, min_probability=0.999, progress=False)
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert all(r["why"] == [] for r in records)  # abstained or unscored: no parts
    done = subprocess.run(
        [sys.executable, "-m", "namelang.cli", "predict", "Zhou", "王", "--explain", "2",
         "--backend", backend],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    lines = done.stdout.splitlines()
    assert lines[0].startswith("Zhou: Chinese") and lines[1].startswith("    why: ")
    assert len(lines[1].split(", ")) == 2 and "no_letters" in lines[2]


def test_plain_scoring_has_no_why_column(tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("Zhou\n")
    out = tmp_path / "out.csv"
    score_file(src, out, progress=False)
    assert out.read_text().splitlines()[0] == "name,ascii,language,probability,error"


@pytest.mark.parametrize("backend", ["rust", "torch"])
def test_a_jsonl_record_with_its_own_why_key_gets_one_why(tmp_path, backend):
    src = tmp_path / "in.jsonl"
    src.write_text('{"name": "Zhou", "why": "kept?", "id": 1}\n', encoding="utf-8")
    out = tmp_path / "out.jsonl"
    score_file(src, out, backend=backend, explain=2, progress=False)

    def unique(pairs):
        keys = [k for k, _ in pairs]
        assert len(keys) == len(set(keys)), keys
        return dict(pairs)

    record = json.loads(out.read_text(encoding="utf-8"), object_pairs_hook=unique)
    assert record["id"] == 1 and [p["text"] for p in record["why"]][:1] == ["hou"]

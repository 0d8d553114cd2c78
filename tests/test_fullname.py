"""Full names: the surname with its particles is scored, on every path and backend."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import namelang
import pytest
from namelang.score import score_file
from namelang.text import surnames

FULL = {
    "John Smith": "Smith",
    "Smith, John": "Smith",
    "Maria da Silva": "da Silva",
    "Jan van den Berg": "van den Berg",
    "Hans-Peter Müller": "Müller",
    "Sean O'Brien": "O'Brien",
    "Ana García-López": "García-López",
    "Martin Luther King Jr.": "King",
    "Juan de la Cruz": "de la Cruz",
    "Zhou": "Zhou",
}


def test_surnames_keep_their_particles():
    assert surnames(list(FULL)) == list(FULL.values())
    assert surnames(list(FULL.values())) == list(FULL.values())  # a surname is its own


@pytest.mark.parametrize("backend", ["rust", "torch"])
def test_full_names_score_as_their_surnames_on_every_path(tmp_path, backend):
    clf = namelang.load("default", backend=backend)
    names = [*FULL, "", "王 Wei"]
    parts = list(FULL.values())
    assert clf.predict(names[: len(FULL)], k=2, full_name=True) == clf.predict(parts, k=2)
    assert (clf.log_probs(names[:3], full_name=True) == clf.log_probs(parts[:3])).all()
    src = tmp_path / "in.csv"
    with open(src, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "name"])
        writer.writerows(enumerate(names))
    out = tmp_path / "out.csv"
    score_file(src, out, backend=backend, full_name=True, progress=False)
    with open(out, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["name"] for r in rows] == names  # rows lead with the name as given
    assert [r["ascii"] for r in rows[:4]] == ["Smith", "Smith", "da Silva", "van den Berg"]
    want = [a[0][0] for a in clf.predict(parts, k=1)]
    assert [r["language"] for r in rows[: len(FULL)]] == want
    assert rows[-2]["error"] == "empty" and rows[-1]["ascii"] == "Wei"
    text = tmp_path / "in.txt"
    text.write_text("\n".join(names) + "\n", encoding="utf-8")
    score_file(text, out, backend=backend, full_name=True, progress=False)
    with open(out, newline="", encoding="utf-8") as f:
        assert [r["ascii"] for r in csv.DictReader(f)][:3] == ["Smith", "Smith", "da Silva"]


def test_score_batch_and_the_command_line_take_full_names():
    import pandas as pd

    frame = namelang.score_batch(pd.DataFrame({"name": ["Jan van den Berg"]}), full_name=True)
    plain = namelang.score_batch(pd.DataFrame({"name": ["van den Berg"]}))
    assert frame["language"].tolist() == plain["language"].tolist()
    done = subprocess.run(
        [sys.executable, "-m", "namelang.cli", "predict", "Jan van den Berg", "--full-name",
         "--json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    record = json.loads(done.stdout)
    assert record["surname"] == "van den Berg" and record["name"] == "Jan van den Berg"

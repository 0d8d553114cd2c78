"""The soak: 20 million names through `namelang score -` in one process (slow: run it
with `pytest -m slow tests/test_soak.py`, about two minutes on two cores)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import ROOT

ROWS = 20_000_000


@pytest.mark.slow
def test_twenty_million_names_through_stdin_every_row_out_in_bounded_memory(names_by_language):
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "soak.py"), "--rows", str(ROWS)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["exit"] == 0
    assert report["rows_out"] == ROWS and report["flagged"] == 0
    assert report["peak_rss_mb"] < 200, report

"""A soak: N names streamed through `namelang score -` (stdin to stdout) in one process.

Feeds the data set's names, each with its row number appended (`Zhou 1234567`, so every
output row says which input row it answers), checks that every row comes out once, in
order, and prints one JSON line: rows, flagged rows, seconds, names/s and the scoring
process's peak RSS (this script runs nothing else, so RUSAGE_CHILDREN is that process).

    python scripts/soak.py --rows 20000000 [--model default] [--data DIR]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import resource
import subprocess
import sys
import threading
import time


def feed(stdin, names: list[str], rows: int) -> None:
    """Writes `rows` lines to the scorer's stdin in blocks, then closes it."""
    block: list[str] = []
    for i in range(rows):
        block.append(f"{names[i % len(names)]} {i}\n")
        if len(block) == 50_000:
            stdin.write("".join(block).encode())
            block.clear()
    stdin.write("".join(block).encode())
    stdin.close()


def check(stdout, rows: int) -> tuple[int, int]:
    """(rows read, rows flagged); fails at the first row out of place."""
    reader = csv.reader(io.TextIOWrapper(stdout, encoding="utf-8", newline=""))
    header = next(reader)
    error_at = header.index("error")
    seen = flagged = 0
    for row in reader:
        if not row[0].endswith(f" {seen}"):
            raise SystemExit(f"row {seen} out of place: {row[:2]}")
        flagged += bool(row[error_at])
        seen += 1
    return seen, flagged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--model", default="default")
    parser.add_argument("--data", default=None, help="the data set's folder")
    args = parser.parse_args()

    from namelang.data import load_names

    by_language = load_names(args.data)
    names = [n for group in by_language.values() for n in group]
    cmd = [sys.executable, "-m", "namelang.cli", "score", "-", "--model", args.model, "-q"]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    feeder = threading.Thread(target=feed, args=(proc.stdin, names, args.rows), daemon=True)
    feeder.start()
    seen, flagged = check(proc.stdout, args.rows)
    code = proc.wait()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    report = {
        "rows_in": args.rows,
        "rows_out": seen,
        "flagged": flagged,
        "exit": code,
        "seconds": round(seconds, 1),
        "names_per_s": round(seen / seconds),
        "peak_rss_mb": round(peak, 1),
        "model": args.model,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()

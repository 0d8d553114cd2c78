"""One process against a two-worker dask LocalCluster on a generated parquet file.

    python benches/scale_out.py [--rows 5000000] [--model default]

Prints names/s for each; both score the same file with the same Scorer."""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from namelang.batch import Scorer
from namelang.data import load_names

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("NAMELANG_DATA", str(ROOT.parent / "shared" / "data" / "names"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--model", default="default")
    parser.add_argument("--partitions", type=int, default=20)
    args = parser.parse_args()
    import dask.dataframe as dd
    import distributed

    names = [n for ns in load_names().values() for n in ns]
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "names.parquet"
        column = pa.array([rng.choice(names) for _ in range(args.rows)], pa.string())
        pq.write_table(
            pa.table({"name": column}), path, row_group_size=args.rows // args.partitions
        )
        size = path.stat().st_size / 1e6
        print(f"{args.rows:,} names in {size:.1f} MB of parquet, model {args.model}")

        scorer = Scorer(args.model)
        start = time.perf_counter()
        rows = sum(
            scorer.score_batch(batch).num_rows
            for batch in pq.ParquetFile(path).iter_batches(batch_size=args.rows // args.partitions)
        )
        one = time.perf_counter() - start
        print(f"one process ({os.cpu_count()} threads): {rows / one:,.0f} names/s ({one:.1f} s)")

        threads = max(1, (os.cpu_count() or 2) // 2)
        scorer = Scorer(args.model, threads=threads)
        with (
            distributed.LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            distributed.Client(cluster),
        ):
            ddf = dd.read_parquet(path, split_row_groups=True)
            meta = scorer.meta(pd.DataFrame({"name": pd.Series([], dtype="string")}))
            start = time.perf_counter()
            rows = len(ddf.map_partitions(scorer.score_batch, meta=meta))
            two = time.perf_counter() - start
        print(f"two workers x {threads} threads: {rows / two:,.0f} names/s ({two:.1f} s)")


if __name__ == "__main__":
    main()

"""The batch API (pandas, pyarrow), the picklable Scorer, and the engines."""

from __future__ import annotations

import csv
import pickle

import namelang
import numpy as np
import pytest
from namelang.batch import Scorer, score_batch

pd = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")

NAMES = ["Zhou", "", None, "王", "Hinton", "x" * 300, "Ślusàrski"]
ERRORS = [None, "empty", "null", "no_letters", None, "too_long", None]


def expected_languages(names):
    clf = namelang.load("default", backend="rust")
    return [top[0][0] if top else None for top in clf.predict([n or "" for n in names], k=1)]


def test_pandas_rows_keep_order_and_columns():
    df = pd.DataFrame({"id": range(len(NAMES)), "name": NAMES})
    out = score_batch(df, k=3)
    assert list(out.columns) == ["id", "name", "language", "probability", "top", "error"]
    assert out["id"].tolist() == list(range(len(NAMES)))
    assert [None if pd.isna(v) else v for v in out["error"].tolist()] == ERRORS
    languages = [None if pd.isna(v) else v for v in out["language"].tolist()]
    expected = expected_languages(NAMES)
    assert languages == [
        e if err is None else None for e, err in zip(expected, ERRORS, strict=True)
    ]
    assert len(out["top"][0]) == 3 and out["top"][0][0][0] == "Chinese"
    assert out["top"][1] == [] and np.isnan(out["probability"][1])


@pytest.mark.parametrize("kind", ["table", "record_batch", "array", "chunked"])
def test_arrow_inputs(kind):
    names = pa.array(NAMES, pa.string())
    data = {
        "table": pa.table({"name": names, "id": range(len(NAMES))}),
        "record_batch": pa.record_batch([names], names=["name"]),
        "array": names,
        "chunked": pa.chunked_array([names[:3], names[3:]]),
    }[kind]
    out = score_batch(data, k=2)
    assert out.num_rows == len(NAMES)
    assert out.column("error").to_pylist() == ERRORS
    languages = out.column("language").to_pylist()
    expected = expected_languages(NAMES)
    assert languages == [
        e if err is None else None for e, err in zip(expected, ERRORS, strict=True)
    ]
    assert out.column("top").to_pylist()[0][0]["language"] == "Chinese"


def test_sliced_and_large_string_arrays():
    names = pa.array(["pad", *NAMES], pa.large_string()).slice(1)
    out = score_batch(names)
    assert out.column("error").to_pylist() == ERRORS


def test_arrow_and_list_paths_agree(dataset_names):
    scorer = Scorer("tutorial")
    via_list = scorer.score_batch(pd.DataFrame({"name": dataset_names[::7]}))
    via_arrow = scorer.score_batch(pa.table({"name": dataset_names[::7]}))
    np.testing.assert_array_equal(
        via_list["probability"].to_numpy(), via_arrow.column("probability").to_numpy()
    )


def test_scorer_pickles_as_model_bytes(tmp_path):
    import shutil

    path = tmp_path / "m.safetensors"
    shutil.copy(namelang.classifier.model_path("tutorial"), path)
    scorer = Scorer(path, threads=1)
    payload = pickle.dumps(scorer)
    path.unlink()  # the worker never needs the driver's file
    assert str(tmp_path).encode() not in payload
    clone = pickle.loads(payload)
    assert clone._job is None
    out = clone.score_batch(pd.DataFrame({"name": ["Zhou"]}))
    assert (
        out["language"][0]
        == Scorer("tutorial").score_batch(pd.DataFrame({"name": ["Zhou"]}))["language"][0]
    )


def test_wrong_inputs_are_clear_errors():
    with pytest.raises(TypeError, match="pandas or polars DataFrame or a pyarrow"):
        score_batch([1, 2])
    with pytest.raises(ValueError, match="no column 'surname'"):
        score_batch(pa.table({"name": ["a"]}), column="surname")
    with pytest.raises(TypeError, match="strings"):
        score_batch(pa.array([1, 2]))


def test_dask_local_cluster_matches_namelang_score(tmp_path, dataset_names):
    dd = pytest.importorskip("dask.dataframe")
    distributed = pytest.importorskip("distributed")
    from namelang.score import score_file

    names = dataset_names[::5]
    src = tmp_path / "names.txt"
    src.write_text("\n".join(names) + "\n", encoding="utf-8")
    score_file(src, tmp_path / "scored.csv", model="default", progress=False)
    with open(tmp_path / "scored.csv", newline="", encoding="utf-8") as f:
        reference = list(csv.DictReader(f))

    scorer = Scorer("default", threads=1)
    frame = pd.DataFrame({"name": names})
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
    ):
        ddf = dd.from_pandas(frame, npartitions=4)
        out = ddf.map_partitions(scorer.score_batch, meta=scorer.meta(frame)).compute()
    assert out["name"].tolist() == names
    assert [str(v) for v in out["language"]] == [r["language"] for r in reference]
    np.testing.assert_allclose(
        out["probability"], [float(r["probability"]) for r in reference], atol=1e-6
    )

"""Target priors: answers shifted by log(prior / training share) on both backends and
every path; bad priors refused with the reason."""

from __future__ import annotations

import json
import warnings

import namelang
import numpy as np
import pytest
from namelang.score import score_file

NAMES = ["Smith", "Zhou", "Nguyen", "Müller", "", "de Jong"]


@pytest.fixture(scope="module")
def shares() -> dict[str, float]:
    meta = namelang.load("default").spec.metadata
    return json.loads(meta["training_shares"])


def expected(log_probs: np.ndarray, prior: dict[str, float], shares, categories) -> np.ndarray:
    """Bayes' rule by hand: shift by log(prior / share), renormalise."""
    total = sum(prior.values())
    shift = np.array(
        [np.log(prior.get(c, 0) / total / shares[c]) if prior.get(c, 0) else -np.inf
         for c in categories]
    )  # fmt: skip
    shifted = log_probs + shift
    with np.errstate(invalid="ignore"):  # the NaN row of a name without letters
        return shifted - np.logaddexp.reduce(shifted, axis=1, keepdims=True)


@pytest.mark.parametrize("backend", ["rust", "torch"])
@pytest.mark.parametrize("kind", ["uniform", "mapping", "file"])
def test_a_prior_shifts_every_answer_by_bayes_rule(tmp_path, shares, backend, kind):
    plain = namelang.load("default", backend=backend)
    categories = plain.categories
    mapping = {"Dutch": 5.0, "English": 1.0, "Chinese": 1.0, "Vietnamese": 0.5, "German": 2.0}
    prior = {"uniform": dict.fromkeys(categories, 1.0), "mapping": mapping, "file": mapping}[kind]
    spec = {"uniform": "uniform", "mapping": mapping, "file": tmp_path / "prior.json"}[kind]
    (tmp_path / "prior.json").write_text(json.dumps(mapping))
    shifted = namelang.load("default", backend=backend, prior=spec)
    got = shifted.log_probs(NAMES)
    want = expected(plain.log_probs(NAMES), prior, shares, categories)
    rows = [i for i, n in enumerate(NAMES) if n]
    np.testing.assert_allclose(got[rows], want[rows], atol=2e-5)
    assert np.isnan(got[NAMES.index("")]).all()
    if kind != "uniform":  # languages left out are never answered
        top = {lang for answer in shifted.predict(NAMES, k=3) for lang, _ in answer}
        assert top <= set(mapping)


def test_both_backends_agree_under_a_prior():
    prior = {"Dutch": 0.5, "Korean": 0.2, "English": 0.3}
    rust = namelang.load("default", backend="rust", prior=prior, precision="f32").log_probs(NAMES)
    torch = namelang.load("default", backend="torch", prior=prior).log_probs(NAMES)
    finite = np.isfinite(rust)
    assert (finite == np.isfinite(torch)).all()
    np.testing.assert_allclose(rust[finite], torch[finite], atol=1e-4, rtol=1e-4)


def test_data_is_the_training_shares(shares):
    plain = namelang.load("default").log_probs(NAMES)
    assert np.array_equal(namelang.load("default", prior="data").log_probs(NAMES), plain, True)
    assert abs(sum(shares.values()) - 1) < 1e-4 and min(shares.values()) > 0


@pytest.mark.parametrize(
    ("prior", "message"),
    [
        ({"Klingon": 1.0}, "Klingon"),
        ({"Dutch": -1.0}, "Dutch"),
        ({"Dutch": 0.0, "German": 0.0}, "positive share"),
        ({"Dutch": float("nan")}, "Dutch"),
        ({"Dutch": "lots"}, "Dutch"),
        ("zipf", "no file zipf"),
        (["Dutch"], "mapping"),
    ],
)
def test_bad_priors_are_refused_naming_the_problem(prior, message):
    for backend in ("rust", "torch"):
        with pytest.raises(ValueError, match=message):
            namelang.load("default", backend=backend, prior=prior)
    with pytest.raises(ValueError, match=message):
        namelang.Scorer("default", prior=prior)


def test_a_prior_needs_training_shares_in_the_file():
    with pytest.raises(ValueError, match="training shares"):
        namelang.load("tutorial", prior="uniform")


def test_every_path_takes_the_prior(tmp_path):
    import pandas as pd

    prior = {"Dutch": 1.0, "German": 1.0}
    src = tmp_path / "in.txt"
    src.write_text("Smith\nZhou\nde Jong\n")
    out = tmp_path / "out.csv"
    score_file(src, out, prior=prior, progress=False)
    languages = [line.split(",")[2] for line in out.read_text().splitlines()[1:]]
    assert set(languages) <= {"Dutch", "German"} and languages[2] == "Dutch"
    frame = namelang.score_batch(pd.DataFrame({"name": ["Smith", "Zhou"]}), prior=prior)
    assert set(frame["language"]) <= {"Dutch", "German"}
    with pytest.raises(ValueError, match="pass prior= to namelang"):
        score_file(src, out, model=namelang.load(), prior=prior, progress=False)
    from namelang.cli import main

    assert main(["score", str(src), "-o", str(out), "-q", "--prior", "uniform"]) == 0
    assert main(["predict", "Zhou", "--prior", "uniform"]) == 0


def test_prediction_sets_warn_under_another_prior():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        namelang.load("default").predict_sets(["Zhou"], 0.9)
    with pytest.warns(UserWarning, match="coverage is not guaranteed"):
        namelang.load("default", prior="uniform").predict_sets(["Zhou"], 0.9)

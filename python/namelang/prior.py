"""Target priors: what share of a list each language is expected to have.

A model answers as if names came in its training shares (stored in the model file as
`training_shares`; for a model trained with `--line-prior`, those shares moved toward the
data set's line shares by the weight validation chose, which is what it answers under).
For a list with another mix, each answer's log-probabilities are shifted by
log(prior / training share) and renormalised (Bayes' rule with the new prior); both
backends apply the same shift before their log-softmax.

`prior` is None or "data" (the training shares: no shift), "uniform" (every language
alike), a mapping {language: share} (shares are normalised; a language left out gets 0,
so it is never answered), or the path of a JSON file holding such a mapping."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path

PriorSpec = str | os.PathLike[str] | Mapping[str, float] | None


def training_shares(metadata: Mapping[str, str], categories: list[str]) -> dict[str, float]:
    """The model file's training shares; a ValueError when it does not record them."""
    raw = metadata.get("training_shares")
    if raw is None:
        raise ValueError(
            "this model file does not record its training shares, so no prior can be set "
            "for it; retrain it with this namelang (`namelang train`)"
        )
    shares = json.loads(raw)
    if sorted(shares) != sorted(categories) or not all(v > 0 for v in shares.values()):
        raise ValueError("the model file's training_shares do not fit its languages")
    return {c: float(shares[c]) for c in categories}


def resolve(prior: PriorSpec, categories: list[str]) -> dict[str, float] | None:
    """The prior as {language: share} summing to 1 (None: the training shares)."""
    if prior is None or prior == "data":
        return None
    if prior == "uniform":
        return dict.fromkeys(categories, 1.0 / len(categories))
    if isinstance(prior, (str, os.PathLike)):
        path = Path(prior)
        if not path.is_file():
            raise ValueError(
                f"prior must be 'data', 'uniform', a mapping or a JSON file; no file {path}"
            )
        try:
            prior = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"prior file {path} is not JSON: {e}") from None
    if not isinstance(prior, Mapping):
        raise ValueError(f"a prior is a mapping of language to share, not {type(prior).__name__}")
    unknown = sorted(set(prior) - set(categories), key=str)
    if unknown:
        raise ValueError(f"prior names languages the model does not have: {unknown}")
    shares = {}
    for language in categories:
        value = prior.get(language, 0.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"prior share of {language} must be a number, not {value!r}")
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"prior share of {language} must be finite and >= 0, got {value}")
        shares[language] = float(value)
    total = sum(shares.values())
    if total <= 0:
        raise ValueError("a prior needs a positive share for at least one language")
    return {c: v / total for c, v in shares.items()}


def logit_shift(
    prior: PriorSpec, categories: list[str], metadata: Mapping[str, str]
) -> list[float] | None:
    """log(prior / training share) per language (-inf for a zero share), or None for the
    training shares themselves."""
    shares = resolve(prior, categories)
    if shares is None:
        return None
    trained = training_shares(metadata, categories)
    return [math.log(shares[c] / trained[c]) if shares[c] > 0 else -math.inf for c in categories]

"""Scores ensembles of different cells (GRU, LSTM, bidirectional GRU): each member
trained as `namelang train` would, its logit adjustment removed; the members'
log-probabilities averaged; one logit adjustment tuned on validation for the mix.

    NAMELANG_DATA=../shared/data/names python scripts/mixed_ensemble.py

Prints each member's test figures, then every combination's validation and test
accuracy / macro recall (choose by validation: the test figures are for the record).
"""

import itertools

import torch
from namelang.data import load_names, split_names
from namelang.train import (
    TrainConfig,
    _encode_rows,
    _score,
    _selection,
    predict_logits,
    train,
    tune_logit_adjustment,
)

# As the members were first measured (MODELS.md): names read exactly, no temperature.
_AS_MEASURED = {"text_rule": "exact", "calibrate": False}
MEMBERS = {
    "gru256": TrainConfig(
        cell="gru", hidden_size=256, weight_decay=1e-5, epochs=8, distinct=True, **_AS_MEASURED
    ),
    "lstm128": TrainConfig(
        cell="lstm", hidden_size=128, lr=2e-3, epochs=15, distinct=True, **_AS_MEASURED
    ),
    "bigru128": TrainConfig(
        cell="gru", hidden_size=128, epochs=12, distinct=True, bidirectional=True, **_AS_MEASURED
    ),
    "gru128oh": TrainConfig(
        cell="gru", hidden_size=128, input="one_hot", epochs=15, **_AS_MEASURED
    ),
}


def main() -> None:
    split = split_names(load_names(None), seed=2022)
    n = len(split.categories)
    valid, test = _encode_rows(split.valid, "cpu"), _encode_rows(split.test, "cpu")
    counts = torch.bincount(torch.tensor([lab for _, lab in split.train]), minlength=n)
    prior = counts.float().clamp(min=1) / counts.sum()
    log_probs = {}
    for name, config in MEMBERS.items():
        config.progress = False
        model, _, results = train(config)
        model.logit_adjustment.zero_()
        log_probs[name] = [
            torch.log_softmax(predict_logits(model, part), 1) for part in (valid, test)
        ]
        print(f"{name}: test {results['test']}", flush=True)
    for k in range(2, len(log_probs) + 1):
        for combo in itertools.combinations(log_probs, k):
            v, t = (sum(log_probs[c][i] for c in combo) / k for i in (0, 1))
            tau, _, shift = tune_logit_adjustment(v, valid.labels, prior, n)
            mv, mt = _score(v, valid.labels, n, shift), _score(t, test.labels, n, shift)
            print(
                f"{'+'.join(combo)}: tau {tau:.1f}, valid {mv.accuracy:.3f} / "
                f"{mv.macro_recall:.3f} (mean {_selection(mv):.3f}), "
                f"test {mt.accuracy:.3f} / {mt.macro_recall:.3f}"
            )


if __name__ == "__main__":
    main()

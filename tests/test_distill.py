"""Distillation: a model taught by teachers' mean answers as well as by the labels."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")


def test_the_taught_loss_mixes_the_label_and_the_teachers():
    from namelang.train import _taught_loss
    from torch.nn import functional as F

    logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 1.0, 0.3]])
    labels = torch.tensor([0, 2])
    teacher = torch.tensor([[0.2, 0.7, 0.1], [0.3, 0.3, 0.4]])
    plain = F.cross_entropy(logits, labels, reduction="none")
    assert torch.allclose(_taught_loss(logits, labels, teacher, 0.0), plain)
    against_teacher = -(teacher * F.log_softmax(logits, 1)).sum(1)
    assert torch.allclose(_taught_loss(logits, labels, teacher, 1.0), against_teacher)
    half = _taught_loss(logits, labels, teacher, 0.5)
    assert torch.allclose(half, 0.5 * plain + 0.5 * against_teacher)
    smoothed = F.cross_entropy(logits, labels, reduction="none", label_smoothing=0.1)
    assert torch.allclose(_taught_loss(logits, labels, teacher, 0.0, 0.1), smoothed)


def test_a_distilled_model_records_its_teachers(tmp_path, tiny_dataset):
    import namelang
    from namelang.train import TrainConfig, train

    data = tiny_dataset
    config = TrainConfig(
        data=str(data), distill=2, epochs=2, hidden_size=8, embedding_dim=4, ngram_max=2,
        ngram_buckets=64, progress=False,
    )  # fmt: skip
    out = tmp_path / "m.safetensors"
    _, history, _ = train(config, out)
    assert len(history["teachers"]) == 2
    model = namelang.load(out)
    assert json.loads(model.spec.metadata["train_config"])["distill"] == 2
    assert model.spec.hidden_size == 8  # the taught model keeps its shape


@pytest.mark.parametrize(
    ("options", "message"),
    [({"distill": -1}, "distill"), ({"distill_weight": 1.5}, "distill"),
     ({"distill": 2, "ensemble": 2}, "not both")],
)  # fmt: skip
def test_distillation_refuses_settings_that_mean_nothing(tmp_path, options, message):
    from namelang.train import TrainConfig, train

    with pytest.raises(ValueError, match=message):
        train(TrainConfig(data=str(tmp_path), progress=False, **options))

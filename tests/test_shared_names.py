"""Names under several languages: which rows are grouped, and how a group's weight is
split between its languages (evenly, or by the model's vote)."""

from __future__ import annotations

import pytest

from .conftest import write_languages

torch = pytest.importorskip("torch")

from namelang.shared_names import shared_groups, split_weight, vote_shares  # noqa: E402


def test_a_group_is_a_name_as_read_under_several_languages():
    names = ["García", "garcia", "Smith", "smith", "Wang", "Wang", "Nowak"]
    labels = [0, 1, 2, 2, 3, 4, 5]
    groups = shared_groups(names, labels, "romanize")
    # García and garcia read alike; Smith twice under one language is no group.
    assert sorted(g.tolist() for g in groups) == [[0, 1], [4, 5]]
    # Read exactly (the tutorial's way: accents dropped), case counts.
    assert [g.tolist() for g in shared_groups(names, labels, "exact")] == [[4, 5]]


def test_a_group_keeps_its_weight_and_splits_it_as_asked():
    labels = torch.tensor([0, 1, 1, 2])
    class_weight = torch.tensor([4.0, 1.0, 2.0])
    rows = torch.tensor([1.0, 1.0, 0.3, 1.0])
    groups = [torch.tensor([0, 1]).numpy()]
    even = split_weight(rows, class_weight, labels, groups)
    loss_weight = class_weight[labels] * even
    assert loss_weight[:2].tolist() == pytest.approx([2.5, 2.5])  # (4 + 1) split evenly
    assert even[2:].tolist() == pytest.approx([0.3, 1.0])  # rows outside a group as they were
    shares = [torch.tensor([0.2, 0.8])]
    voted = class_weight[labels] * split_weight(rows, class_weight, labels, groups, shares)
    assert voted[:2].tolist() == pytest.approx([1.0, 4.0])


def test_the_vote_is_the_model_among_the_names_languages():
    log_probs = torch.log(torch.tensor([[0.6, 0.3, 0.1], [0.6, 0.3, 0.1], [0.2, 0.2, 0.6]]))
    labels = torch.tensor([0, 1, 2])
    (shares,) = vote_shares(log_probs, labels, [torch.tensor([0, 1]).numpy()])
    assert shares.tolist() == pytest.approx([2 / 3, 1 / 3])


def test_training_refuses_an_unknown_way(tmp_path):
    from namelang.train import TrainConfig, train

    with pytest.raises(ValueError, match="shared-names"):
        train(TrainConfig(data=str(tmp_path), shared_names="majority", progress=False))


def test_a_model_trained_with_the_vote_records_it(tmp_path):
    import json

    import namelang
    from namelang.train import TrainConfig, train

    data = write_languages(
        tmp_path / "names",
        {
            "Chinese": ["Wang", "Zhang", "Liang", "Huang", "Zhou", "Chen", "Yang", "Xiang"],
            "Korean": ["Wang", "Kim", "Park", "Choi", "Jung", "Kang", "Yoon", "Jang"],
            "Italian": ["Rossi", "Russo", "Ferrari", "Bianchi", "Romano", "Colombo", "Ricci"],
        },
    )
    config = TrainConfig(
        data=str(data), shared_names="vote", epochs=2, hidden_size=8, embedding_dim=4,
        ngram_max=2, ngram_buckets=64, progress=False,
    )  # fmt: skip
    out = tmp_path / "m.safetensors"
    train(config, out)
    meta = namelang.load(out).spec.metadata
    assert json.loads(meta["train_config"])["shared_names"] == "vote"

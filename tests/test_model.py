"""The PyTorch models, training, the model file and evaluation."""

from __future__ import annotations

import json
import math

import namelang
import numpy as np
import pytest
import torch
from namelang import model_file, reference
from namelang.classifier import load_module
from namelang.data import split_names
from namelang.model import build
from namelang.spec import ModelConfig
from namelang.train import TrainConfig, train

CATS3 = ["Alpha", "Beta", "Gamma"]


def random_model(cell: str, hidden: int = 32, layers: int = 1, embedding: int = 0, seed: int = 0):
    torch.manual_seed(seed)
    config = ModelConfig(
        cell=cell,
        hidden_size=hidden,
        num_layers=layers,
        input="embedding" if embedding else "one_hot",
        embedding_dim=embedding,
        n_categories=len(CATS3),
    )
    return build(config).eval()


def per_step_log_probs(model, name: str) -> torch.Tensor:
    line = reference.lineToTensor(namelang.to_ascii(name))
    return reference.evaluate(model, line)[0]


def test_elman_is_the_tutorial_cell():
    ours = random_model("elman", hidden=128)
    theirs = reference.RNN(57, 128, 3)
    theirs.load_state_dict({k: v for k, v in ours.state_dict().items() if k != "logit_adjustment"})
    line = reference.lineToTensor("Hinton")
    torch.testing.assert_close(reference.evaluate(ours, line), reference.evaluate(theirs, line))


@pytest.mark.parametrize("hidden", [8, 128])
def test_batched_forward_equals_per_step_loop(hidden, dataset_names):
    model = random_model("elman", hidden=hidden, seed=hidden)
    # Trained-like growth: scale the recurrence so long names reach large log-probs.
    names = [*dataset_names[::97], "a", "Ab", "X" * 60, "Ślusàrski"]
    indices, lengths = namelang.encode(names)
    with torch.no_grad():
        batched = model.log_probs(torch.from_numpy(indices), torch.from_numpy(lengths))
        for b, name in enumerate(names):
            loop = per_step_log_probs(model, name)
            bound = 1e-5 * torch.clamp(loop.abs(), min=1)
            assert ((batched[b] - loop).abs() <= bound).all(), name


def test_padding_never_changes_a_result():
    model = random_model("elman", hidden=16)
    with torch.no_grad():
        alone = model.log_probs(*map(torch.from_numpy, namelang.encode(["Zhou"])))
        idx, lens = namelang.encode(["Zhou", "Schmidhuber" * 3])
        idx[0, 4:] = 7  # garbage in the padding
        padded = model.log_probs(torch.from_numpy(idx), torch.from_numpy(lens))
    torch.testing.assert_close(alone[0], padded[0])


@pytest.mark.parametrize("cell", ["elman", "gru", "lstm"])
def test_empty_names_give_nan_rows(cell):
    model = random_model(cell)
    idx, lens = namelang.encode(["", "ab", "王"])
    with torch.no_grad():
        out = model.log_probs(torch.from_numpy(idx), torch.from_numpy(lens))
    assert torch.isnan(out[0]).all() and torch.isnan(out[2]).all()
    assert torch.isfinite(out[1]).all()
    assert math.isclose(out[1].exp().sum().item(), 1.0, rel_tol=1e-5)


@pytest.mark.parametrize(
    ("cell", "layers", "embedding"), [("gru", 2, 0), ("lstm", 1, 8), ("gru", 1, 8)]
)
def test_gated_models_are_order_independent(cell, layers, embedding):
    model = random_model(cell, layers=layers, embedding=embedding)
    names = ["Abe", "Zhou", "Schmidhuber", "X"]
    with torch.no_grad():
        both = model.log_probs(*map(torch.from_numpy, namelang.encode(names)))
        rev = model.log_probs(*map(torch.from_numpy, namelang.encode(names[::-1])))
    torch.testing.assert_close(both, rev.flip(0))


def test_model_file_round_trip(tmp_path):
    model = random_model("gru", layers=2, embedding=8)
    path = model_file.save(tmp_path / "m.safetensors", model, CATS3, {"seed": "5"})
    spec, loaded = load_module(path)
    assert spec.categories == CATS3 and spec.metadata["seed"] == "5"
    for k, v in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[k], v)
    assert path.read_bytes()[:1] != b"\x80"


def _write_and_corrupt(tmp_path, mutate):
    from safetensors.numpy import save_file

    model = random_model("elman", hidden=4)
    path = model_file.save(tmp_path / "ok.safetensors", model, CATS3)
    _, tensors = model_file.read(path)
    meta = {
        "format": "namelang/1", "cell": "elman", "hidden_size": "4", "num_layers": "1",
        "input": "one_hot", "embedding_dim": "0", "alphabet": namelang.ALPHABET,
        "categories": json.dumps(CATS3),
    }  # fmt: skip
    mutate(meta, tensors)
    bad = tmp_path / "bad.safetensors"
    save_file(tensors, str(bad), metadata=meta)
    return bad


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda m, t: m.update(format="namelang/9"), "format"),
        (lambda m, t: m.update(alphabet="abc"), "alphabet"),
        (lambda m, t: m.update(cell="transformer"), "cell"),
        (lambda m, t: m.update(hidden_size="four"), "hidden_size"),
        (lambda m, t: m.update(categories='["a", "a", "b"]'), "categories"),
        (lambda m, t: m.update(categories='["a", "b"]'), "shape"),
        (lambda m, t: t.pop("i2o.bias"), "missing"),
        (lambda m, t: t.update(extra=np.zeros(2, np.float32)), "unexpected"),
        (lambda m, t: t.update({"i2h.bias": np.zeros(5, np.float32)}), "shape"),
        (lambda m, t: t.update({"i2h.bias": np.zeros(4, np.float64)}), "F32"),
        (lambda m, t: t["i2o.bias"].__setitem__(0, np.nan), "NaN"),
        (lambda m, t: m.update(bidirectional="yes"), "bidirectional"),
        (lambda m, t: m.update(bidirectional="true"), "bidirectional"),  # not for elman
    ],
)
def test_refused_files_name_the_problem(tmp_path, mutate, message):
    bad = _write_and_corrupt(tmp_path, mutate)
    with pytest.raises(ValueError, match=message):
        model_file.read(bad)
    with pytest.raises(ValueError, match=message):
        namelang._native.Model(str(bad))


def test_bidirectional_file_without_its_reverse_tensors_is_refused(tmp_path):
    from safetensors.numpy import save_file

    config = ModelConfig(cell="gru", hidden_size=4, n_categories=3, bidirectional=True)
    path = model_file.save(tmp_path / "bi.safetensors", build(config), CATS3)
    spec, tensors = model_file.read(path)
    assert spec.bidirectional and tensors["out.weight"].shape == (3, 8)
    tensors.pop("rnn.weight_hh_l0_reverse")
    bad = tmp_path / "bad.safetensors"
    save_file(tensors, str(bad), metadata={k: v for k, v in spec.metadata.items() if k != "digest"})
    for loader in (model_file.read, namelang._native.Model):
        with pytest.raises(ValueError, match="weight_hh_l0_reverse"):
            loader(str(bad))
    with pytest.raises(ValueError, match="one-layer"):
        ModelConfig(cell="gru", num_layers=2, bidirectional=True)


def test_pickles_are_refused_with_advice(tmp_path):
    path = tmp_path / "model.pt"
    torch.save(random_model("elman", hidden=4).state_dict(), path)
    for loader in (model_file.read, namelang._native.Model):
        with pytest.raises(ValueError, match="safetensors"):
            loader(str(path))


def test_split_keeps_each_name_in_one_part(names_by_language):
    split = split_names(names_by_language, seed=2022)
    parts = [{n for n, _ in part} for part in (split.train, split.valid, split.test)]
    assert not parts[0] & parts[1] and not parts[0] & parts[2] and not parts[1] & parts[2]
    total = len(split.train) + len(split.valid) + len(split.test)
    assert total == sum(len(v) for v in names_by_language.values())
    assert 0.08 < len(split.test) / total < 0.12
    assert split_names(names_by_language, seed=2022).test == split.test
    assert split_names(names_by_language, seed=1).test != split.test


def test_training_learns_a_tiny_dataset_and_is_deterministic(tiny_dataset, tmp_path):
    config = TrainConfig(
        data=str(tiny_dataset), cell="gru", hidden_size=16, embedding_dim=8, epochs=12,
        lr=0.02, progress=False,
    )  # fmt: skip
    _, history, results = train(config, tmp_path / "a.safetensors")
    assert results["test"]["accuracy"] >= 0.9, results
    assert history["loss"][-1] < history["loss"][0]
    train(config, tmp_path / "b.safetensors")
    a = model_file.read(tmp_path / "a.safetensors")[1]
    b = model_file.read(tmp_path / "b.safetensors")[1]
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    saved = json.loads((tmp_path / "a.safetensors.history.json").read_text())
    assert saved["valid_accuracy"] == history["valid_accuracy"]
    meta = model_file.read(tmp_path / "a.safetensors")[0].metadata
    assert json.loads(meta["metrics"])["test"] == results["test"]


def test_tutorial_recipe_runs_few_steps(tiny_dataset, tmp_path):
    config = TrainConfig(data=str(tiny_dataset), recipe="tutorial", steps=1000, progress=False)
    model, history, results = train(config, tmp_path / "t.safetensors")
    assert model.config.cell == "elman" and len(history["loss"]) == 2
    assert results["test"]["accuracy"] > 0.5
    # The tutorial's recipe reads names exactly, as the seed does, and is not recalibrated.
    spec = model_file.read(tmp_path / "t.safetensors")[0]
    assert spec.text_rule == "exact" and "temperature" not in history
    assert "conformal" in spec.metadata


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_cuda_forward_matches_cpu(dataset_names):
    for cell in ("elman", "gru", "lstm"):
        model = random_model(cell, hidden=64)
        idx, lens = map(torch.from_numpy, namelang.encode(dataset_names[:5000]))
        with torch.no_grad():
            cpu = model.log_probs(idx, lens)
            gpu = model.cuda().log_probs(idx.cuda(), lens.cuda()).cpu()
        torch.testing.assert_close(gpu, cpu, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(("cell", "layers"), [("gru", 1), ("lstm", 2)])
def test_merged_ensemble_averages_member_logits(cell, layers):
    from namelang.train import merge_ensemble

    members = [random_model(cell, hidden=8, layers=layers, seed=s) for s in range(3)]
    merged = merge_ensemble(members)
    idx, lens = map(torch.from_numpy, namelang.encode(["Hinton", "Zhou", "a", "Schmidhuber"]))
    with torch.no_grad():
        mean = torch.stack([m.logits(idx, lens) for m in members]).mean(0)
        torch.testing.assert_close(merged.logits(idx, lens), mean, atol=1e-5, rtol=1e-5)
    assert merged.config.hidden_size == 24


def test_merged_ensemble_keeps_embeddings_and_averages_ngram_tables():
    """Members with embeddings and an n-gram branch merge into one model of the same
    n-gram table size whose logits are the members' mean."""
    from namelang.model import ngram_input
    from namelang.train import merge_ensemble

    config = ModelConfig(
        cell="gru", hidden_size=8, input="embedding", embedding_dim=4,
        n_categories=len(CATS3), ngram_max=3, ngram_buckets=64,
    )  # fmt: skip
    members = []
    for seed in range(2):
        torch.manual_seed(seed)
        member = build(config).eval()
        torch.nn.init.normal_(member.ngram.weight)  # not zeros, so the mean is tested
        members.append(member)
    merged = merge_ensemble(members)
    names = ["Hinton", "Zhou", "a", "Schmidhuber"]
    idx, lens = map(torch.from_numpy, namelang.encode(names))
    grams = ngram_input(names, config)
    with torch.no_grad():
        mean = torch.stack([m.logits(idx, lens, grams) for m in members]).mean(0)
        torch.testing.assert_close(merged.logits(idx, lens, grams), mean, atol=1e-5, rtol=1e-5)
    assert (merged.config.hidden_size, merged.config.embedding_dim) == (16, 8)
    assert merged.ngram.weight.shape == members[0].ngram.weight.shape


def test_distinct_trains_each_name_once(tiny_dataset, tmp_path):
    # Repeat every line of one language: rows grow, distinct pairs do not.
    alpha = tiny_dataset / "Alpha.txt"
    alpha.write_text(alpha.read_text() * 3)
    base = {
        "data": str(tiny_dataset),
        "hidden_size": 8,
        "embedding_dim": 4,
        "epochs": 1,
        "progress": False,
    }
    _, lines, _ = train(TrainConfig(**base))
    _, distinct, _ = train(TrainConfig(**base, distinct=True))
    assert distinct["train_rows"] < lines["train_rows"]
    split = split_names(
        __import__("namelang.data", fromlist=["load_names"]).load_names(tiny_dataset)
    )
    assert distinct["train_rows"] == len(set(split.train))


def test_line_prior_is_tuned_on_validation_and_leans_toward_the_lines():
    from namelang.train import tune_logit_adjustment

    # Validation is 10 rows of class 0 that the model puts 0.3 behind class 1, and 2 rows
    # of class 1 it gets right by 1.0: only a shift toward class 0's larger line share
    # (0.9 against an even training prior) of more than 0.3 gets every row right.
    logits = torch.tensor([[0.0, 0.3]] * 10 + [[0.0, 1.0]] * 2)
    labels = torch.tensor([0] * 10 + [1] * 2)
    prior = torch.tensor([0.5, 0.5])
    toward = torch.tensor([0.9, 0.1]).log() - prior.log()
    tau, b, shift = tune_logit_adjustment(logits, labels, prior, 2, toward)
    assert b > 0 and float(shift[0] - shift[1]) > 0.3, (tau, b, shift)
    # Without line shares to lean toward, nothing moves: an even prior gives no shift.
    _, b, shift = tune_logit_adjustment(logits, labels, prior, 2)
    assert b == 0.0 and not shift.any()


def test_training_shares_lean_toward_the_lines_by_the_tuned_weight():
    from namelang.data import Split
    from namelang.train import training_shares

    split = Split(
        categories=["A", "B"], train=[("a", 0), ("b", 1), ("c", 1), ("d", 1)], valid=[],
        test=[], seed=0, line_shares={"A": 0.75, "B": 0.25},
    )  # fmt: skip
    assert training_shares(split) == {"A": 0.25, "B": 0.75}
    assert training_shares(split, 1.0) == {"A": 0.75, "B": 0.25}
    half = training_shares(split, 0.5)  # the geometric mean, renormalised
    assert half["A"] == pytest.approx(0.5) and half["B"] == pytest.approx(0.5)


def test_training_with_the_line_prior_records_its_weight(tiny_dataset, tmp_path):
    alpha = tiny_dataset / "Alpha.txt"
    alpha.write_text(alpha.read_text() * 4)  # Alpha's lines repeat; distinct rows do not
    config = TrainConfig(
        data=str(tiny_dataset), hidden_size=8, embedding_dim=4, epochs=1, distinct=True,
        line_prior=True, progress=False,
    )  # fmt: skip
    _, history, results = train(config, tmp_path / "m.safetensors")
    assert results["line_prior"] == history["line_prior"] in (0.0, 0.25, 0.5, 0.75, 1.0)
    meta = model_file.read(tmp_path / "m.safetensors")[0].metadata
    shares = json.loads(meta["training_shares"])
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-5)
    # Without the logit adjustment it would be tuned nowhere: refused, not ignored.
    for other in ({"logit_adjust": False}, {"recipe": "tutorial"}):
        with pytest.raises(ValueError, match="--line-prior"):
            train(TrainConfig(data=str(tiny_dataset), line_prior=True, **other))


def test_label_smoothing_changes_the_loss_and_is_checked(tiny_dataset):
    base = {
        "data": str(tiny_dataset),
        "hidden_size": 8,
        "embedding_dim": 4,
        "epochs": 2,
        "progress": False,
        "logit_adjust": False,
    }
    _, plain, _ = train(TrainConfig(**base))
    _, smooth, _ = train(TrainConfig(**base, label_smoothing=0.3))
    # A smoothed target cannot be fitted to zero loss: its loss stays higher.
    assert smooth["loss"][-1] > plain["loss"][-1]
    with pytest.raises(ValueError, match="label smoothing"):
        train(TrainConfig(**base, label_smoothing=1.0))

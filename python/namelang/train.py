"""Training: batched minibatch training (CPU or CUDA) and the tutorial's own recipe.

Data flows: names -> split by distinct name -> encoded once -> minibatches -> model.
The best epoch is chosen on the validation split, and so is the logit adjustment;
the test split is scored once, at the end, and its figures go into the model file."""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from namelang import _native, model_file
from namelang.calibration import (
    conformal_thresholds,
    coverage_report,
    expected_calibration_error,
    fit_temperature,
)
from namelang.corpus import faker_corpus, unsettled_rows
from namelang.data import Split, load_names, split_names
from namelang.evaluate import Metrics, metrics, top_k_accuracy
from namelang.extras import require
from namelang.marks import ALPHA, marks_table
from namelang.model import NGramInput, build, known_ngrams, ngram_input, resolve_device
from namelang.shared_names import WAYS as SHARED_WAYS
from namelang.shared_names import shared_groups, split_weight, vote_shares
from namelang.spec import ModelConfig
from namelang.text import encode, one_hot, to_ascii_batch


@dataclass
class TrainConfig:
    data: str | None = None
    recipe: str = "batched"  # "batched" or "tutorial"
    cell: str = "gru"
    hidden_size: int = 128
    num_layers: int = 1
    bidirectional: bool = False  # one-layer gru/lstm reading each name both ways
    input: str = "embedding"
    embedding_dim: int = 64
    batch_size: int = 64
    optimizer: str = "adam"  # "adam" or "sgd"
    lr: float = 3e-3
    weight_decay: float = 0.0
    dropout: float = 0.0
    epochs: int = 20
    time_budget: float | None = None  # seconds; checked between batches
    balanced: bool = False  # sample rows with probability 1/freq of their class
    class_weight_power: float = 0.5  # loss weight (1/freq)**power; 0 is unweighted
    logit_adjust: bool = True  # tune a -tau*log(prior) logit shift on validation
    # with it, a shift b*log(line share / training share) toward the data set's lines too
    line_prior: bool = False
    clip: float = 1.0
    label_smoothing: float = 0.0  # weight of the uniform target mixed into each label
    seed: int = 2022
    split_seed: int = 2022
    device: str = "auto"
    distinct: bool = False  # train on each distinct (name, language) pair once, not per line
    ensemble: int = 1  # members trained with seeds seed, seed+1, ...; merged into one model
    distill: int = 0  # > 0: this many teachers (seeds seed+1, ...), then one model taught by them
    distill_weight: float = 0.5  # the teachers' mean answer's share of each training target
    steps: int = 60_000  # tutorial recipe only
    progress: bool = True
    text_rule: str = "romanize"  # the tutorial recipe always reads names exactly
    ngram_max: int = 0  # n-gram branch: longest n-gram (0: no branch)
    ngram_buckets: int = 1 << 15  # its hashed table's rows
    ngram_lr: float = 1e-2  # the table's learning rate (its rows see few updates each)
    # > 0: the table reads only n-grams this many distinct training names hold (in
    # training and after; the set is stored in the model file as `ngram.known`)
    ngram_min_names: int = 0
    calibrate: bool = True  # fit a temperature on validation and fold it into the weights
    feminine_forms: bool = False  # add Russian -ova/-eva/-ina/-aya forms of training names
    corpus: str = ""  # "faker": add Faker's surname lists (namelang.corpus) to training
    corpus_cap: int = 300  # at most this many corpus rows per language
    corpus_weight: float = 0.3  # a corpus row's weight against a data set row
    corpus_keep_shared: bool = False  # keep corpus names found under two languages
    corpus_cap_ratio: float = 0.0  # > 0: also cap a language at this x its training names
    corpus_settles: bool = False  # drop data set labels of shared names the corpus contradicts
    shared_names: str = "rows"  # how a name under several languages splits its weight
    marks: bool = False  # letters outside ASCII as evidence, counted after training


@dataclass
class Encoded:
    indices: torch.Tensor
    lengths: torch.Tensor
    labels: torch.Tensor
    ngrams: NGramInput | None = None  # padded (B, G) rows and weights
    teacher: torch.Tensor | None = None  # (B, C) teachers' mean probabilities, distilling

    def select(self, batch: torch.Tensor | slice) -> tuple:
        """(indices, lengths, ngrams) of some rows, as `model.logits` takes them."""
        ngrams = None
        if self.ngrams is not None:
            ngrams = (self.ngrams[0][batch], None, self.ngrams[2][batch])
        return self.indices[batch], self.lengths[batch], ngrams


def _encode_rows(
    rows: list[tuple[str, int]], device: str, model: nn.Module | None = None
) -> Encoded:
    """Rows as `model` reads them (None: the tutorial's exact letters, no n-grams)."""
    config = model.config if model is not None else None
    names = [name for name, _ in rows]
    indices, lengths = encode(names, config.text_rule if config else "exact")
    labels = np.array([label for _, label in rows], dtype=np.int64)
    ngrams = None
    if config:
        ngrams = ngram_input(names, config, True, device, known_ngrams(model))
    return Encoded(
        torch.from_numpy(indices).to(device),
        torch.from_numpy(lengths).to(device),
        torch.from_numpy(labels).to(device),
        ngrams,
    )


# Russian surnames agree with gender: Ivanov / Ivanova, Lebedev / Lebedeva, Pushkin /
# Pushkina, Tolstoy / Tolstaya. The data set lists the masculine forms only.
_FEMININE = (("ov", "ova"), ("ev", "eva"), ("in", "ina"), ("sky", "skaya"), ("oy", "aya"))


def feminine_forms(split: Split) -> list[tuple[str, int]]:
    """The feminine form of each Russian training name that has one, labelled Russian
    (training rows only: validation and test stay as the data set has them)."""
    if "Russian" not in split.categories:
        return []
    russian = split.categories.index("Russian")
    out = []
    for name, label in split.train:
        for masculine, feminine in _FEMININE:
            if label == russian and name.endswith(masculine):
                out.append((name[: -len(masculine)] + feminine, russian))
                break
    return out


@torch.no_grad()
def predict_logits(model: nn.Module, data: Encoded, batch: int = 4096) -> torch.Tensor:
    model.eval()
    parts = [
        model.logits(*data.select(slice(i, i + batch))) for i in range(0, len(data.labels), batch)
    ]
    return torch.cat(parts) if parts else torch.zeros(0, model.config.n_categories)


def _score(logits: torch.Tensor, labels: torch.Tensor, n: int, shift=None) -> Metrics:
    if shift is not None:
        logits = logits + shift
    return metrics(labels.cpu().numpy(), logits.argmax(1).cpu().numpy(), n)


def _selection(m: Metrics) -> float:
    # One figure to choose by: the mean of accuracy and macro recall.
    return 0.5 * (m.accuracy + m.macro_recall)


def tune_logit_adjustment(
    logits: torch.Tensor,
    labels: torch.Tensor,
    prior: torch.Tensor,
    n: int,
    toward: torch.Tensor | None = None,
) -> tuple[float, float, torch.Tensor]:
    """Chooses tau in -tau*log(prior) + b*toward on validation (b = 0 without `toward`,
    the log-ratio of the shares the model should answer under to `prior`); tau = b = 0
    leaves the model as trained. Returns (tau, b, shift)."""
    zero = torch.zeros_like(prior)
    toward = zero if toward is None else toward
    weights = (0.0, 0.25, 0.5, 0.75, 1.0) if bool(toward.any()) else (0.0,)
    best_shift, best_tau, best_b = zero, 0.0, 0.0
    best = _selection(_score(logits, labels, n))
    for b in weights:
        for tau in [0.0, *np.arange(0.1, 1.51, 0.1)]:
            shift = -float(tau) * prior.log() + b * toward
            value = _selection(_score(logits, labels, n, shift))
            if value > best + 1e-9:
                best_shift, best_tau, best_b, best = shift, round(float(tau), 1), b, value
    return best_tau, best_b, best_shift


def _check_config(config: TrainConfig) -> None:
    """Refuses settings that would train nothing or run without end, before any work."""
    if not 0.0 <= config.label_smoothing < 1.0:
        raise ValueError(f"label smoothing must be in [0, 1), got {config.label_smoothing}")
    if config.epochs < 1:
        raise ValueError(f"--epochs must be at least 1, got {config.epochs}")
    if config.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {config.batch_size}")
    if config.distill < 0 or not 0.0 <= config.distill_weight <= 1.0:
        raise ValueError(
            f"--distill must be 0 or more and --distill-weight in [0, 1], "
            f"got {config.distill} and {config.distill_weight}"
        )
    if config.distill and config.ensemble > 1:
        raise ValueError("choose --distill or --ensemble, not both")
    if config.ngram_min_names < 0:
        raise ValueError(f"--ngram-min-names must be 0 or more, got {config.ngram_min_names}")
    if config.ngram_min_names and (not config.ngram_max or config.recipe == "tutorial"):
        raise ValueError("--ngram-min-names needs an n-gram branch: add --ngram-max N")
    if config.shared_names not in SHARED_WAYS:
        raise ValueError(f"--shared-names must be one of {SHARED_WAYS}: {config.shared_names!r}")
    if config.marks and config.recipe == "tutorial":
        raise ValueError("--marks goes with the batched recipe (a gru or lstm cell)")
    if config.line_prior and (config.recipe == "tutorial" or not config.logit_adjust):
        raise ValueError(
            "--line-prior is tuned with the logit adjustment of the batched recipe: "
            "drop --no-logit-adjust (and --recipe tutorial)"
        )
    if config.time_budget is not None and not config.time_budget > 0:
        raise ValueError(
            f"--time-budget must be a positive number of seconds, got {config.time_budget}"
        )


def train(config: TrainConfig, out: str | Path | None = None) -> tuple[nn.Module, dict, dict]:
    """Trains, selects on validation, scores the test split; writes the model file and
    its history (`<out>.history.json`) when `out` is given. Returns (model, history, metrics)."""
    _check_config(config)
    if out is not None and not Path(out).parent.is_dir():
        raise FileNotFoundError(f"no folder {Path(out).parent} to write {Path(out).name} into")
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    device = resolve_device(config.device)
    split, corpus_notes = _training_split(config)
    if config.recipe == "tutorial":
        model, history = _train_tutorial(config, split)
        model.to(device)
    elif config.recipe == "batched" and config.ensemble > 1:
        model, history = _train_ensemble(config, split, device)
    elif config.recipe == "batched" and config.distill > 0:
        model, history = _train_distilled(config, split, device)
    elif config.recipe == "batched":
        model, history = _train_batched(config, split, device)
    else:
        raise ValueError(f"recipe must be 'batched' or 'tutorial', got {config.recipe!r}")
    conformal, results = _judge(model, history, split, device)
    marks_notes = None
    if config.marks:  # after the figures, which they cannot move: the parts are ASCII
        model, marks_notes = _with_marks(model, config, split, device)
    if out is not None:
        meta = {
            "recipe": config.recipe,
            "seed": str(config.seed),
            "split_seed": str(config.split_seed),
            "metrics": json.dumps(results),
            "conformal": json.dumps(conformal),
            "train_config": json.dumps(asdict(config)),
            "training_shares": json.dumps(training_shares(split, history.get("line_prior", 0.0))),
        }
        if corpus_notes is not None:
            meta["corpus"] = json.dumps(corpus_notes)
        if marks_notes is not None:
            meta["marks_counted"] = json.dumps(marks_notes)
        model_file.save(out, model.cpu(), split.categories, meta)
        Path(str(out) + ".history.json").write_text(json.dumps(history, indent=1))
        model.to(device)
    return model, history, results


def _training_split(config: TrainConfig) -> tuple[Split, dict | None]:
    """The data set's split with what the config adds to its training names (feminine
    forms, the second corpus), and the corpus's notes (None without one)."""
    split = split_names(load_names(config.data), seed=config.split_seed)
    split = replace(split, line_shares=line_shares(split))
    if config.feminine_forms:
        split = replace(split, train=split.train + feminine_forms(split))
    if config.distinct:
        split = replace(split, train=sorted(set(split.train)))
    if config.corpus:
        return _with_corpus(config, split)
    return split, None


def line_shares(split: Split) -> dict[str, float]:
    """Each language's share of the data set's training lines (Arabic.txt repeats its
    108 names about 20 times each: 9.8% of the lines, under 1% of distinct names)."""
    counts = dict.fromkeys(split.categories, 0)
    for _, label in split.train:
        counts[split.categories[label]] += 1
    whole = sum(counts.values()) or 1
    return {c: v / whole for c, v in counts.items()}


def _with_marks(
    model: nn.Module, config: TrainConfig, split: Split, device
) -> tuple[nn.Module, dict]:
    """The model with the marks its training rows hold (`namelang.marks`): the data set's
    training lines as written (the split holds them in ASCII) and the corpus rows."""
    cats = split.categories
    names = load_names(config.data)
    ascii_train = {name for name, _ in split.train}
    written = [
        (line, c)
        for c, language in enumerate(cats)
        for line, read in zip(names[language], to_ascii_batch(names[language]), strict=True)
        if read in ascii_train and not line.isascii()
    ]
    written += [(name, label) for name, label in split.train if not name.isascii()]
    per_language = [0] * len(cats)
    for _, label in split.train:
        per_language[label] += 1
    marks, weight = marks_table(written, per_language)
    notes = {"marks": len(marks), "rows_with_marks": len(written), "alpha": ALPHA}
    if not marks:
        return model, notes
    marked = build(replace(model.config, marks=marks))
    state = model.state_dict()
    state["marks.weight"] = torch.from_numpy(weight)
    marked.load_state_dict(state)
    return marked.to(device).eval(), notes


def _judge(model: nn.Module, history: dict, split: Split, device) -> tuple[dict, dict]:
    """The conformal thresholds fitted on validation, and the test split's figures."""
    valid = _encode_rows(split.valid, device, model)
    valid_probs = F.softmax(predict_logits(model, valid), 1).cpu().numpy()
    conformal = {
        "score": "1 - p(true language)",
        "fitted_on": "valid",
        "rows": len(split.valid),
        "thresholds": conformal_thresholds(valid_probs, valid.labels.cpu().numpy()),
    }
    test = _encode_rows(split.test, device, model)
    test_logits = predict_logits(model, test)
    test_metrics = _score(test_logits, test.labels, len(split.categories))
    test_probs = F.softmax(test_logits, 1).cpu().numpy()
    test_labels = test.labels.cpu().numpy()
    cut = float(conformal["thresholds"]["0.90"])
    covered, size = coverage_report(test_probs, test_labels, cut)
    results = {
        "test": {
            **test_metrics.summary(),
            "top3": round(top_k_accuracy(test_probs, test_labels, 3), 4),
            "ece": round(expected_calibration_error(test_probs, test_labels), 4),
            "coverage_0.90": round(covered, 4),
            "mean_set_size_0.90": round(size, 3),
        },
        "valid": history.get("selected_valid", {}),
        "logit_tau": history.get("logit_tau", 0.0),
        "line_prior": history.get("line_prior", 0.0),
        "temperature": history.get("temperature", 1.0),
        "train_seconds": round(history["seconds"], 1),
        "test_rows": len(split.test),
    }
    return conformal, results


def _with_corpus(config: TrainConfig, split: Split) -> tuple[Split, dict]:
    """The split with a second corpus's rows added to its training part, weighted."""

    if config.corpus != "faker":
        raise ValueError(f"corpus must be 'faker' or empty, got {config.corpus!r}")
    if config.recipe == "tutorial":
        raise ValueError("the tutorial recipe trains on the tutorial's data only")
    require("faker", "the second corpus (--corpus faker)")
    corpus = faker_corpus(
        split,
        cap=config.corpus_cap,
        seed=config.split_seed,
        keep_shared=config.corpus_keep_shared,
        cap_ratio=config.corpus_cap_ratio,
    )
    keep = [True] * len(split.train)
    if config.corpus_settles:  # the data set's rows only: the corpus rows are its own
        keep = [not contradicted for contradicted in unsettled_rows(split)]
    rows = [r for r, k in zip(split.train, keep, strict=True) if k]
    weights = [w for w, k in zip(split.weights(), keep, strict=True) if k]
    weights += [config.corpus_weight] * len(corpus.rows)
    settled = len(keep) - len(rows)
    notes = {
        "source": "faker",
        "faker_version": corpus.version,
        "rows": corpus.by_language,
        "cap": config.corpus_cap,
        "weight": config.corpus_weight,
        "keep_shared": config.corpus_keep_shared,
        "cap_ratio": config.corpus_cap_ratio,
        "settles": config.corpus_settles,
        "data_set_rows_contradicted": settled,
        "left_out_under_two_languages": corpus.dropped_shared,
        "left_out_as_validation_or_test_names": corpus.dropped_held_out,
    }
    return replace(split, train=rows + corpus.rows, train_weights=weights), notes


def training_shares(split: Split, line_prior: float = 0.0) -> dict[str, float]:
    """Each language's share of the (weighted) training rows: the prior the model learnt
    under, which `prior=` corrects for. With a shift toward the data set's lines (weight
    `line_prior`, tuned on validation), the prior it answers under: those shares times
    (line share / share) ** line_prior, renormalised."""
    totals = dict.fromkeys(split.categories, 0.0)
    for (_, label), w in zip(split.train, split.weights(), strict=True):
        totals[split.categories[label]] += w
    whole = sum(totals.values()) or 1.0
    shares = {c: v / whole for c, v in totals.items()}
    if line_prior and split.line_shares:
        lines = split.line_shares
        shares = {
            c: v ** (1 - line_prior) * max(lines[c], 1e-6) ** line_prior for c, v in shares.items()
        }
        whole = sum(shares.values())
        shares = {c: v / whole for c, v in shares.items()}
    return {c: round(v, 6) for c, v in shares.items()}


def _known_ngrams(config: TrainConfig, split: Split) -> np.ndarray | None:
    """The n-grams at least `ngram_min_names` distinct training names hold (None: every
    n-gram reads its row)."""
    if not (config.ngram_max and config.ngram_min_names):
        return None
    names = [name for name, _ in split.train]
    return _native.known_ngrams(names, config.ngram_max, config.text_rule, config.ngram_min_names)


def _model_config(config: TrainConfig, n: int, known_blocks: int = 0) -> ModelConfig:
    """The architecture a training config asks for (the Elman cell has one layer and
    one-hot input whatever else is set)."""
    elman = config.cell == "elman"
    return ModelConfig(
        cell=config.cell,
        hidden_size=config.hidden_size,
        num_layers=1 if elman else config.num_layers,
        input="one_hot" if elman else config.input,
        embedding_dim=config.embedding_dim if config.input == "embedding" and not elman else 0,
        n_categories=n,
        bidirectional=config.bidirectional,
        text_rule=config.text_rule,
        ngram_max=config.ngram_max,
        ngram_buckets=config.ngram_buckets if config.ngram_max else 0,
        ngram_known_blocks=known_blocks,
    )


def _optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    """Adam or SGD; the n-gram table gets its own learning rate and no weight decay."""
    table = [model.ngram.weight] if config.ngram_max else []
    groups = [
        {"params": [p for p in model.parameters() if all(p is not t for t in table)]},
        *([{"params": table, "lr": config.ngram_lr, "weight_decay": 0.0}] if table else []),
    ]
    if config.optimizer == "adam":
        return torch.optim.Adam(groups, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=0.9, weight_decay=config.weight_decay)
    raise ValueError(f"optimizer must be 'adam' or 'sgd', got {config.optimizer!r}")


def _loss_weights(config: TrainConfig, split: Split, labels: torch.Tensor, n: int):
    """(each row's corpus weight, each class's loss weight, each row's sampling weight
    for balanced epochs), on the labels' device."""
    device = labels.device
    row_weight = torch.tensor(split.weights(), dtype=torch.float32, device=device)
    counts = torch.bincount(labels, weights=row_weight, minlength=n).float().clamp(min=1)
    weight = (1.0 / counts) ** config.class_weight_power
    weight = (weight / (weight * counts).sum() * counts.sum()).to(device)
    return row_weight, weight, (1.0 / counts)[labels].cpu()


def _epoch(model, opt, config: TrainConfig, train_rows, batches, weights, bar, deadline):
    """One pass over `batches` of row indices (stopped at `deadline`): (summed loss,
    rows seen)."""
    row_weight, weight = weights
    total, seen = 0.0, 0
    for batch in batches:
        logits = model.logits(*train_rows.select(batch))
        labels = train_rows.labels[batch]
        # The class-weighted mean, each row also weighted by its corpus weight.
        if train_rows.teacher is None:
            losses = F.cross_entropy(
                logits, labels, weight=weight, reduction="none",
                label_smoothing=config.label_smoothing,
            )  # fmt: skip
        else:
            taught = train_rows.teacher[batch]
            mix = (config.distill_weight, config.label_smoothing)
            losses = _taught_loss(logits, labels, taught, *mix) * weight[labels]
        loss = (losses * row_weight[batch]).sum() / (weight[labels] * row_weight[batch]).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if config.clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), config.clip)
        opt.step()
        total += loss.item() * len(batch)
        seen += len(batch)
        bar.update(len(batch))
        if time.perf_counter() > deadline:
            break
    return total, seen


class _Shared:
    """The row weights of names under several languages (`namelang.shared_names`)."""

    def __init__(self, config: TrainConfig, split: Split, model_config, weights) -> None:
        self.base, self.class_weight, self.labels = weights
        self.groups: list = []
        if config.shared_names != "rows":
            names, labels = zip(*split.train, strict=True) if split.train else ((), ())
            self.groups = shared_groups(list(names), list(labels), model_config.text_rule)

    def row_weight(self, log_probs: torch.Tensor | None = None) -> torch.Tensor:
        if not self.groups:
            return self.base
        shares = None if log_probs is None else vote_shares(log_probs, self.labels, self.groups)
        return split_weight(self.base, self.class_weight, self.labels, self.groups, shares)


def _taught_loss(logits, labels, teacher, share: float, smoothing: float = 0.0) -> torch.Tensor:
    """Each row's cross-entropy against its label (smoothed as cross_entropy smooths it)
    mixed with the teachers' answer."""
    n = logits.shape[1]
    label = (1 - smoothing) * F.one_hot(labels, n) + smoothing / n
    target = (1 - share) * label + share * teacher
    return -(target * F.log_softmax(logits, 1)).sum(1)


def _train_batched(
    config: TrainConfig, split: Split, device: str, teacher: torch.Tensor | None = None
) -> tuple[nn.Module, dict]:
    """Mini-batch training; after each epoch the model is scored on validation and the
    best epoch's weights are kept. A time budget is checked between batches."""
    n = len(split.categories)
    known = _known_ngrams(config, split)
    model_config = _model_config(config, n, 0 if known is None else len(known))
    model = build(model_config, dropout=config.dropout).to(device)
    if known is not None:
        model.ngram.known.copy_(torch.from_numpy(known.view(np.int32)))
    train_rows = replace(_encode_rows(split.train, device, model), teacher=teacher)
    valid = _encode_rows(split.valid, device, model)
    row_weight, weight, sample_weight = _loss_weights(config, split, train_rows.labels, n)
    shared = _Shared(config, split, model_config, (row_weight, weight, train_rows.labels))
    row_weight = shared.row_weight()
    opt = _optimizer(config, model)
    generator = torch.Generator().manual_seed(config.seed)
    rows = len(train_rows.labels)
    history: dict = {"x": [], "x_label": "epoch", "loss": [], "valid_accuracy": []}
    history["valid_macro_recall"] = []
    best_value, best_state, best_epoch = -math.inf, None, 0
    start = time.perf_counter()
    deadline = math.inf if config.time_budget is None else start + config.time_budget
    bar = _progress(config.epochs * rows, config.progress, "names")
    trained = 0
    for epoch in range(1, config.epochs + 1):
        model.train()
        if config.balanced:
            order = torch.multinomial(sample_weight, rows, replacement=True, generator=generator)
        else:
            order = torch.randperm(rows, generator=generator)
        batches = order.to(device).split(config.batch_size)
        total, seen = _epoch(
            model, opt, config, train_rows, batches, (row_weight, weight), bar, deadline
        )
        trained += seen
        if config.shared_names == "vote":
            row_weight = shared.row_weight(F.log_softmax(predict_logits(model, train_rows), 1))
        valid_metrics = _score(predict_logits(model, valid), valid.labels, n)
        for key, value in (
            ("x", epoch if seen == rows else epoch - 1 + seen / rows),
            ("loss", total / seen),
            ("valid_accuracy", valid_metrics.accuracy),
            ("valid_macro_recall", valid_metrics.macro_recall),
        ):
            history[key].append(value)
        if _selection(valid_metrics) > best_value:
            best_value, best_epoch = _selection(valid_metrics), epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        bar.set_postfix(loss=f"{total / seen:.3f}", acc=f"{valid_metrics.accuracy:.3f}")
        if time.perf_counter() > deadline:
            break
    bar.close()
    model.load_state_dict(best_state)
    history["selected_epoch"] = best_epoch
    history["train_rows"] = trained
    _finish(model, config, split, device, history)
    history["seconds"] = time.perf_counter() - start
    return model, history


def _finish(
    model: nn.Module, config: TrainConfig, split: Split, device: str, history: dict
) -> None:
    """Tunes the logit adjustment on validation, then the temperature, and records the
    validation figures."""
    n = len(split.categories)
    valid = _encode_rows(split.valid, device, model)
    if config.logit_adjust:
        labels = torch.tensor([label for _, label in split.train])
        row_weight = torch.tensor(split.weights(), dtype=torch.float32)
        counts = torch.bincount(labels, weights=row_weight, minlength=n).float().clamp(min=1)
        prior = (counts / counts.sum()).to(device)
        toward = None
        if config.line_prior and split.line_shares:
            lines = torch.tensor([split.line_shares[c] for c in split.categories], device=device)
            toward = lines.clamp(min=1e-6).log() - prior.log()
        logits = predict_logits(model, valid)
        tau, b, shift = tune_logit_adjustment(logits, valid.labels, prior, n, toward)
        model.logit_adjustment.copy_(shift)
        history["logit_tau"], history["line_prior"] = tau, b
    if config.calibrate:
        logits = predict_logits(model, valid).cpu().numpy()
        temperature = fit_temperature(logits, valid.labels.cpu().numpy())
        fold_temperature(model, temperature)
        history["temperature"] = round(temperature, 4)
    history["selected_valid"] = _score(predict_logits(model, valid), valid.labels, n).summary()


@torch.no_grad()
def fold_temperature(model: nn.Module, temperature: float) -> None:
    """Divides every term of the logits by the temperature: the output layer (and the
    Elman cell's i2o), the n-gram table and the logit adjustment. The file then holds the
    calibrated model, which every backend runs unchanged."""
    layer = model.i2o if hasattr(model, "i2o") else model.out
    layer.weight.div_(temperature)
    layer.bias.div_(temperature)
    model.logit_adjustment.div_(temperature)
    if hasattr(model, "ngram"):
        model.ngram.weight.div_(temperature)


def _train_ensemble(config: TrainConfig, split: Split, device: str) -> tuple[nn.Module, dict]:
    """Trains `ensemble` members (seeds seed, seed+1, ...) and merges them into one wider
    model whose logits are the members' mean: one file, one forward pass, any backend."""
    if config.cell == "elman" or config.bidirectional:
        raise ValueError("an ensemble needs unidirectional gru or lstm cells")
    start = time.perf_counter()
    members, histories = [], []
    for i in range(config.ensemble):
        member_config = TrainConfig(**{**asdict(config), "seed": config.seed + i, "ensemble": 1})
        torch.manual_seed(member_config.seed)
        member, member_history = _train_batched(member_config, split, device)
        members.append(member)
        histories.append(member_history)
    model = merge_ensemble(members).to(device)
    history = {**histories[0], "members": [h["selected_valid"] for h in histories]}
    _finish(model, config, split, device, history)
    history["seconds"] = time.perf_counter() - start
    return model, history


def _train_distilled(config: TrainConfig, split: Split, device: str) -> tuple[nn.Module, dict]:
    """Trains `distill` teachers (seeds seed+1, ...) of the configured shape, then the
    model (seed `seed`) on targets mixing each row's label with the teachers' mean answer
    (knowledge distillation): much of what an ensemble knows, at one model's size and
    speed. The teachers answer without their logit adjustment; the model tunes its own."""
    start = time.perf_counter()
    answers, teachers = None, []
    for i in range(config.distill):
        teacher_config = replace(config, seed=config.seed + 1 + i, distill=0)
        torch.manual_seed(teacher_config.seed)
        teacher, teacher_history = _train_batched(teacher_config, split, device)
        teachers.append(teacher_history["selected_valid"])
        rows = _encode_rows(split.train, device, teacher)
        probs = F.softmax(predict_logits(teacher, rows) - teacher.logit_adjustment, 1)
        answers = probs if answers is None else answers + probs
    torch.manual_seed(config.seed)
    model, history = _train_batched(config, split, device, answers / config.distill)
    history["teachers"] = teachers
    history["seconds"] = time.perf_counter() - start
    return model, history


@torch.no_grad()
def merge_ensemble(members: list[nn.Module]) -> nn.Module:
    """K GRU/LSTM classifiers of hidden H -> one of hidden K*H with block-diagonal
    recurrent weights and an output layer that averages the members' logits: embeddings
    side by side (each member's input weights read its own), n-gram tables averaged."""
    first = members[0].config
    k, h, e = len(members), first.hidden_size, first.embedding_dim
    gates = 3 if first.cell == "gru" else 4
    merged = build(replace(first, hidden_size=k * h, embedding_dim=k * e))
    state = {name: torch.zeros_like(t) for name, t in merged.state_dict().items()}
    for m, member in enumerate(members):
        src = member.state_dict()
        rows = [slice(g * k * h + m * h, g * k * h + (m + 1) * h) for g in range(gates)]
        block = slice(m * h, (m + 1) * h)
        # Layer 0 reads the letters: one-hot columns shared, or this member's embedding.
        inputs = slice(m * e, (m + 1) * e) if first.input == "embedding" else slice(None)
        if first.input == "embedding":
            state["embedding.weight"][:, inputs] = src["embedding.weight"]
        for layer in range(first.num_layers):
            for g, r in enumerate(rows):
                part = slice(g * h, (g + 1) * h)
                ih = src[f"rnn.weight_ih_l{layer}"][part]
                state[f"rnn.weight_ih_l{layer}"][r, block if layer else inputs] = ih
                state[f"rnn.weight_hh_l{layer}"][r, block] = src[f"rnn.weight_hh_l{layer}"][part]
                state[f"rnn.bias_ih_l{layer}"][r] = src[f"rnn.bias_ih_l{layer}"][part]
                state[f"rnn.bias_hh_l{layer}"][r] = src[f"rnn.bias_hh_l{layer}"][part]
        state["out.weight"][:, block] = src["out.weight"] / k
        state["out.bias"] += src["out.bias"] / k
        if first.ngram_max:
            state["ngram.weight"] += src["ngram.weight"] / k
        if first.ngram_known_blocks:  # the members' sets are one: the same training names
            state["ngram.known"] = src["ngram.known"]
    merged.load_state_dict(state)
    return merged.eval()


def _train_tutorial(config: TrainConfig, split: Split) -> tuple[nn.Module, dict]:
    """The tutorial's loop: single-name SGD steps at lr 0.005 with NLLLoss, a category
    drawn uniformly, then a name of it, from the training split; loss averaged per 500."""

    n = len(split.categories)
    rnn = build(
        ModelConfig(
            cell="elman",
            hidden_size=config.hidden_size,
            input="one_hot",
            n_categories=n,
            text_rule="exact",  # the tutorial reads names as they are
        )
    )
    lines: list[list[str]] = [[] for _ in range(n)]
    for name, label in split.train:
        lines[label].append(name)
    criterion = nn.NLLLoss()
    optimizer = torch.optim.SGD(rnn.parameters(), lr=0.005)
    history: dict = {"x": [], "x_label": "step", "loss": []}
    current, start = 0.0, time.perf_counter()
    deadline = math.inf if config.time_budget is None else start + config.time_budget
    bar = _progress(config.steps, config.progress, "steps")
    for step in range(1, config.steps + 1):
        if time.perf_counter() > deadline:
            break
        category = random.randint(0, n - 1)
        line = lines[category][random.randint(0, len(lines[category]) - 1)]
        line_tensor = torch.from_numpy(one_hot([line]))
        hidden = rnn.initHidden()
        optimizer.zero_grad()
        for i in range(line_tensor.size()[0]):
            output, hidden = rnn(line_tensor[i], hidden)
        loss = criterion(output, torch.tensor([category]))
        loss.backward()
        optimizer.step()
        current += loss.item()
        if step % 500 == 0:
            history["x"].append(step)
            history["loss"].append(current / 500)
            current = 0.0
            bar.update(500)
            bar.set_postfix(loss=f"{history['loss'][-1]:.3f}")
    bar.close()
    history["seconds"] = time.perf_counter() - start
    valid = _encode_rows(split.valid, "cpu", rnn)
    history["selected_valid"] = _score(predict_logits(rnn, valid), valid.labels, n).summary()
    return rnn, history


def _progress(total: int, enabled: bool, unit: str):

    return tqdm(total=total, disable=not enabled, unit=unit, leave=False)

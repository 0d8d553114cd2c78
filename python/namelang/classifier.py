"""`namelang.load` and the Classifier: one interface over the backends.

backend "rust": the native CPU forward pass (no torch import); "torch": PyTorch on CPU
or CUDA; "auto": Rust when the native forward is available and the device is the CPU."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from namelang import _native, model_file
from namelang.extras import require
from namelang.prior import PriorSpec, logit_shift
from namelang.prior import resolve as resolve_prior
from namelang.spec import config_of
from namelang.text import FullName, encode, scored_parts

if TYPE_CHECKING:  # numpy loads on first use: `namelang score` never needs it
    import numpy as np

BUNDLED = ("default", "tutorial")


class Part(TypedDict):
    """A part of a name, letters start..end as the model reads it, and the log-odds
    points (log p - log(1 - p)) its top language loses without it (`Classifier.explain`)."""

    text: str
    start: int
    end: int
    weight: float


BACKENDS = ("auto", "rust", "torch")
# The bundled model files, beside this module (the package is always a folder: its
# native module cannot load from a zip).
MODELS = Path(__file__).with_name("models")


def model_path(model: str | os.PathLike[str]) -> Path:
    """A bundled model's name ("default", "tutorial") or a path -> the file's path."""
    if isinstance(model, str) and model in BUNDLED:
        path = MODELS / f"{model}.safetensors"
        if not path.exists():
            raise FileNotFoundError(f"the bundled {model!r} model is missing from {path.parent}")
        return path
    path = Path(model)
    if not path.exists():
        raise FileNotFoundError(f"no model file at {path}; use 'default', 'tutorial' or a path")
    return path


def load_module(path: str | os.PathLike[str], device: str = "cpu"):
    """(spec, PyTorch module in eval mode) from a model file."""
    from namelang.model import from_tensors

    spec, tensors = model_file.read(path)
    return spec, from_tensors(config_of(spec), tensors, device)


class _TorchBackend:
    """PyTorch on CPU or CUDA: supplies log-probabilities; jobs are given them."""

    name = "torch"
    # Names longer than this are refused here (the rust backend takes any length): a
    # recurrence of a million steps is minutes of PyTorch calls.
    max_letters: int | None = 1 << 20
    # Padded letters (rows x longest) per batch: names are batched by length, so one long
    # name is not padded into every row of a batch of short ones.
    PADDED_LETTERS = 1 << 18

    precision = "f32"

    def __init__(self, path: Path, device: str, prior: PriorSpec = None, precision: str = "auto"):
        if precision not in ("auto", "f32"):
            raise ValueError(
                f"precision {precision!r} runs on the rust backend; the torch backend "
                "computes in f32 (precision='auto' or 'f32')"
            )
        require("torch", "the torch backend")
        import torch

        from namelang.model import resolve_device

        self._torch = torch
        self.device = resolve_device(device)
        self.spec, self.module = load_module(path, self.device)
        shift = logit_shift(prior, self.spec.categories, self.spec.metadata)
        if shift is not None:  # the same shift the rust backend adds, before the softmax
            self.module.logit_adjustment += torch.tensor(shift, device=self.device)

    @property
    def job_source(self) -> _native.ModelSpec:
        return self.spec

    def log_probs(self, names: Sequence[str], batch: int = 4096) -> np.ndarray:
        import numpy as np

        from namelang.model import known_ngrams, mark_input, ngram_input

        torch = self._torch
        config = self.module.config
        lengths = _native.lengths(names, config.text_rule)
        if len(names) and lengths.max() > self.max_letters:
            raise ValueError(
                f"a name of {lengths.max()} letters is past the torch backend's "
                f"{self.max_letters}; backend='rust' scores names of any length"
            )
        out = np.empty((len(names), self.spec.n_categories), dtype=np.float32)
        known = known_ngrams(self.module)
        with torch.inference_mode():
            for rows in _length_batches(lengths, batch, self.PADDED_LETTERS):
                part = [names[i] for i in rows]
                indices, n = encode(part, config.text_rule)
                x = torch.from_numpy(indices).to(self.device)
                n = torch.from_numpy(n).to(self.device)
                ngrams = ngram_input(part, config, device=self.device, known=known)
                marks = mark_input(part, config, self.device)
                out[rows] = self.module.log_probs(x, n, ngrams, marks).float().cpu().numpy()
        return out

    def explain(self, names: list[str], k: int) -> list[list[Part]]:
        reads, candidates = _native.explain_candidates(names, self.spec.text_rule)
        full, rows = self.log_probs(names), self.log_probs(candidates)
        config, marks = self.module.config, None
        if config.marks:  # the candidates get them back, and each is a part
            weight = self.module.marks.weight.detach().float().cpu().numpy()
            marks = (list(names), config.text_rule, list(config.marks), weight)
        return _native.explain_rank(reads, full, rows, k, marks)

    def clear_answers(self) -> None:
        pass  # nothing kept


def _length_batches(lengths: np.ndarray, rows: int, padded: int) -> list[np.ndarray]:
    """Row indices in batches of names of similar length: at most `rows` rows, and at
    most `padded` letters once padded to the batch's longest (a longer name alone)."""
    import numpy as np

    order = np.argsort(lengths, kind="stable")
    ordered = lengths[order]
    batches, i = [], 0
    while i < len(order):
        # (j - i) * ordered[j - 1] grows with j: the largest j that fits, by bisection.
        lo, hi = i + 1, min(i + rows, len(order))
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if (mid - i) * int(ordered[mid - 1]) <= padded:
                lo = mid
            else:
                hi = mid - 1
        batches.append(order[i:lo])
        i = lo
    return batches


class _RustBackend:
    """The native CPU forward pass: jobs made from its model score rows themselves."""

    name = "rust"
    max_letters: int | None = None  # any length

    def __init__(
        self,
        path: Path,
        share_prefixes: bool = True,
        prior: PriorSpec = None,
        precision: str = "auto",
    ):
        model = _native.Model(str(path), share_prefixes=share_prefixes, precision=precision)
        self.spec = model.spec
        shift = logit_shift(prior, self.spec.categories, self.spec.metadata)
        if shift is not None:
            model = model.with_logit_shift(shift)
        self.model = model
        self.precision: str = model.precision

    @property
    def job_source(self) -> _native.Model:
        return self.model

    def log_probs(self, names: Sequence[str]) -> np.ndarray:
        return self.model.log_probs(names)

    def explain(self, names: list[str], k: int) -> list[list[Part]]:
        return self.model.explain(names, k)

    def clear_answers(self) -> None:
        self.model.clear_answers()


# A row's top-k, best first: [(language, probability)].
Top = list[tuple[str, float]]
# One row's answer (`namelang._native.Job.answers`): top-k, the prediction set or None,
# the error code or None, the parts or None.
Answer = tuple[Top, list[tuple[str, float]] | None, str | None, list[Part] | None]


class Classifier:
    """Scores names with one model file on one backend. Safe to share across threads.

    Every answer (top-k, sets, abstention, error codes) comes from a native `Job`; the
    backend only supplies log-probabilities, or (rust) lets the job compute them."""

    def __init__(
        self,
        path: Path,
        backend: str = "auto",
        device: str = "cpu",
        share_prefixes: bool = True,
        prior: PriorSpec = None,
        precision: str = "auto",
    ):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if backend == "auto":
            backend = "rust" if device == "cpu" else "torch"
        if backend == "rust" and device != "cpu":
            raise ValueError("the rust backend runs on the CPU; use backend='torch' for CUDA")
        self.path = path
        self._backend: _RustBackend | _TorchBackend = (
            _RustBackend(path, share_prefixes=share_prefixes, prior=prior, precision=precision)
            if backend == "rust"
            else _TorchBackend(path, device, prior=prior, precision=precision)
        )
        # The precision of the recurrent products: "f32" or "bf16" (`load`'s `precision`).
        self.precision: str = self._backend.precision
        self.spec: _native.ModelSpec = self._backend.spec
        self.categories: list[str] = self.spec.categories
        # The target prior (None: the training shares, as the model was trained).
        self.prior: dict[str, float] | None = resolve_prior(prior, self.categories)
        self.backend: str = backend
        # The longest name this backend scores (None: any length).
        self.max_letters: int | None = self._backend.max_letters
        # predict's native call per (k, full_name), made once.
        self._tops: dict[tuple[object, FullName], Callable[[Iterable[str]], list[Top]]] = {}

    def clear_answers(self) -> None:
        """Forgets the answers bulk scoring kept across blocks and files (the rust
        backend keeps up to 32,768; they change no output), so a timed run starts cold."""
        self._backend.clear_answers()

    def __repr__(self) -> str:
        return (
            f"Classifier({self.path.name!r}, cell={self.spec.cell!r}, "
            f"backend={self.backend!r}, precision={self.precision!r})"
        )

    def log_probs(self, names: Iterable[str], full_name: FullName = False) -> np.ndarray:
        """float32 (B, C) log-probabilities; a row of NaN for a name with no letters (or
        one the model gives no number for: `model_error`). `full_name=True` (or
        "family-first"): the names are full names, scored on their family names
        (`namelang.text.surnames`)."""
        return self._backend.log_probs(scored_parts(_as_list(names), full_name))

    def job(
        self,
        format: str = "csv",
        k: int = 1,
        max_length: int | None = None,
        coverage: float | None = None,
        min_probability: float = 0.0,
        columns: list[str] | None = None,
        explain: int = 0,
        full_name: FullName = False,
        transcoded: bool = False,
    ) -> _native.Job:
        """The native answer to every row of a job with these options (checked here, k
        capped at the languages): see `namelang._native.Job`. `max_length` None: the
        default (`_native.DEFAULT_MAX_LENGTH` letters); `coverage`: prediction sets at
        that level; `explain`: parts in a `why` column; `transcoded`: the input was
        decoded from another encoding (bad bytes: `invalid_encoding`)."""
        threshold = None if coverage is None else self.conformal_threshold(coverage)
        return _native.Job(
            self._backend.job_source,
            format=format,
            k=k,
            max_length=max_length,
            set_threshold=threshold,
            min_probability=min_probability,
            columns=columns,
            explain=explain,
            full_name=full_name,
            transcoded=transcoded,
        )

    def answers(self, names: Iterable[str], job: _native.Job) -> list[Answer]:
        """Each name's answer under `job` (one of this classifier's)."""
        names = _as_list(names)
        if job.scores_itself:
            return job.answers(names)
        reads = job.texts_to_score(names)
        why = self._backend.explain(reads, job.explain) if job.explain else None
        return job.answers(names, self._backend.log_probs(reads), why)

    def format_rows(
        self,
        job: _native.Job,
        leads: list[str | list[str]],
        names: list[str | None],
        errors: list[str | None],
    ) -> tuple[bytes, int, int, int]:
        """The output rows of records a reader found (`namelang._native.Job.format_rows`):
        (bytes, rows, scored, flagged)."""
        if job.scores_itself:
            return job.format_rows(leads, names, errors)
        reads = job.texts_to_score(names, errors)
        why = self._backend.explain(reads, job.explain) if job.explain else None
        return job.format_rows(leads, names, errors, self._backend.log_probs(reads), why)

    def predict(self, names: Iterable[str], k: int = 3, full_name: FullName = False) -> list[Top]:
        """Top-k (language, probability) per name, best first; [] for a name with no letters.
        `full_name=True` (or "family-first"): the names are full names, scored on their
        family names."""
        tops = self._tops.get((k, full_name))
        if tops is None:
            tops = self._tops[(k, full_name)] = self._tops_of(k, full_name)
        return tops(names)

    def _tops_of(self, k: int, full_name: FullName) -> Callable[[Iterable[str]], list[Top]]:
        """predict's call for these options: straight to the native job where it scores
        itself, which builds the top-k lists alone (one name: 6.25 -> 5.75 us against
        answers() and a list comprehension over them, BENCHMARKS.md)."""
        job = self.job(k=k, max_length=_native.MAX_LENGTH_LIMIT, full_name=full_name)
        if job.scores_itself:
            return job.tops

        def tops(names: Iterable[str]) -> list[Top]:
            names = _as_list(names)
            return job.tops(names, self._backend.log_probs(job.texts_to_score(names)))

        return tops

    def explain(
        self, names: Iterable[str], k: int = 3, full_name: FullName = False
    ) -> list[list[Part]]:
        """Per name, up to `k` parts that raised its top language most, best first: dicts
        {"text", "start", "end", "weight"}, where text is letters start..end of the name
        as the model reads it (`namelang.text.apply_text_rule`) and weight the log-odds
        points (log p - log(1 - p)) the top language loses when that part is deleted. The
        weights are the model's own answers on the shortened names; parts overlap, so
        they do not add up. [] for a name with no letters, or with more than 1,024 (its
        candidates would hold about 4 x letters^2 letters)."""
        names = _as_list(names)
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        return self._backend.explain(scored_parts(names, full_name), k)

    def conformal_threshold(self, coverage: float) -> float:
        """The probability a language needs to enter the prediction set at `coverage`
        (0.50-0.99, in steps of 0.01), as fitted on validation and stored in the file."""

        if self.prior is not None:
            warnings.warn(
                "prediction sets were fitted on validation names in the training shares; "
                "under another prior their coverage is not guaranteed",
                stacklevel=2,
            )
        from namelang.calibration import threshold

        return threshold(self.spec.metadata.get("conformal"), coverage)

    def predict_sets(
        self, names: Iterable[str], coverage: float = 0.9, full_name: FullName = False
    ) -> list[list[tuple[str, float]]]:
        """Per name, the languages (best first, with probabilities) of the split-conformal
        prediction set that holds the true language with probability `coverage` (over
        names like the validation split's); [] for a name with no letters."""
        job = self.job(coverage=coverage, max_length=_native.MAX_LENGTH_LIMIT, full_name=full_name)
        return [chosen or [] for _, chosen, *_ in self.answers(names, job)]


def _as_list(names: Iterable[str]) -> list[str]:
    """The names as a list, to be read more than once; a single str is passed on as it
    is, for the native layer to refuse (it would be read as its letters)."""
    return names if isinstance(names, (list, str)) else list(names)  # type: ignore[return-value]


def load(
    model: str | os.PathLike[str] = "default",
    backend: str = "auto",
    device: str = "cpu",
    share_prefixes: bool = True,
    prior: PriorSpec = None,
    precision: str = "auto",
) -> Classifier:
    """A Classifier for a bundled model ("default", "tutorial") or a model file path.

    `prior`: the language mix expected in the names (`namelang.prior`): None or "data"
    (the training shares), "uniform", {language: share} or a JSON file of one; answers
    are shifted by log(prior / training share) on both backends.

    On the rust backend, names that start alike share their recurrent state until their
    letters part (identical results, less work on real lists); `share_prefixes=False`
    runs each name on its own, for timing the kernel alone.

    `precision` of the recurrent products (rust backend): "f32"; "bf16" on CPUs with
    AVX512_BF16, "int16" on CPUs with AVX2, both for a gru or lstm model (answers within
    0.005 of f32's in probability, the same top language on at least 99.9% of names);
    "auto" is bf16 where AMX tiles run it (hidden size a multiple of 32; faster than f32
    in bulk, about as fast for one name), int16 where AVX2 is the widest kernel (faster
    than f32 in bulk and for one name) and f32 elsewhere (BENCHMARKS.md); "int8" is
    refused with the reason.
    `Classifier.precision` says which ran."""
    return Classifier(
        model_path(model),
        backend=backend,
        device=device,
        share_prefixes=share_prefixes,
        prior=prior,
        precision=precision,
    )

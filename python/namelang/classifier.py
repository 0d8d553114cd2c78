"""`namelang.load` and the Classifier: one interface over the backends.

backend "rust": the native CPU forward pass (no torch import); "torch": PyTorch on CPU
or CUDA; "auto": Rust when the native forward is available and the device is the CPU."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from namelang import model_file
from namelang.prior import PriorSpec, logit_shift
from namelang.prior import resolve as resolve_prior
from namelang.spec import spec_from_metadata

if TYPE_CHECKING:
    import numpy as np

BUNDLED = ("default", "tutorial")


class Part(TypedDict):
    """A part of a name, letters start..end as the model reads it, and the
    log-probability points its top language loses without it (`Classifier.explain`)."""

    text: str
    start: int
    end: int
    weight: float


BACKENDS = ("auto", "rust", "torch")


def model_path(model: str | os.PathLike[str]) -> Path:
    """A bundled model's name ("default", "tutorial") or a path -> the file's path."""
    if isinstance(model, str) and model in BUNDLED:
        path = Path(str(resources.files("namelang") / "models" / f"{model}.safetensors"))
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
    return spec, from_tensors(spec.config, tensors, device)


class _TorchBackend:
    name = "torch"

    def __init__(self, path: Path, device: str, prior: PriorSpec = None):
        from namelang.extras import require

        require("torch", "the torch backend")
        import torch

        from namelang.model import resolve_device

        self._torch = torch
        self.device = resolve_device(device)
        self.spec, self.module = load_module(path, self.device)
        shift = logit_shift(prior, list(self.spec.categories), self.spec.metadata)
        if shift is not None:  # the same shift the rust backend adds, before the softmax
            self.module.logit_adjustment += torch.tensor(shift, device=self.device)

    # Names longer than this are refused here (the rust backend takes any length): a
    # recurrence of a million steps is minutes of PyTorch calls.
    MAX_LETTERS = 1 << 20
    # Padded letters (rows x longest) per batch: names are batched by length, so one long
    # name is not padded into every row of a batch of short ones.
    PADDED_LETTERS = 1 << 18

    def log_probs(self, names: Sequence[str], batch: int = 4096) -> np.ndarray:
        import numpy as np

        from namelang import _native
        from namelang.model import ngram_input
        from namelang.text import encode

        torch = self._torch
        config = self.module.config
        lengths = _native.lengths(names, config.text_rule)
        if len(names) and lengths.max() > self.MAX_LETTERS:
            raise ValueError(
                f"a name of {lengths.max()} letters is past the torch backend's "
                f"{self.MAX_LETTERS}; backend='rust' scores names of any length"
            )
        out = np.empty((len(names), self.spec.n_categories), dtype=np.float32)
        with torch.inference_mode():
            for rows in _length_batches(lengths, batch, self.PADDED_LETTERS):
                part = [names[i] for i in rows]
                indices, n = encode(part, config.text_rule)
                x = torch.from_numpy(indices).to(self.device)
                n = torch.from_numpy(n).to(self.device)
                ngrams = ngram_input(part, config, device=self.device)
                out[rows] = self.module.log_probs(x, n, ngrams).float().cpu().numpy()
        return out


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
    name = "rust"

    def __init__(
        self,
        path: Path,
        method: str = "auto",
        share_prefixes: bool = True,
        prior: PriorSpec = None,
    ):
        from namelang import _native

        model = _native.Model(str(path), share_prefixes=share_prefixes)
        self.spec = spec_from_metadata(model.metadata())
        shift = logit_shift(prior, list(self.spec.categories), self.spec.metadata)
        if shift is not None:
            model = _native.Model(str(path), share_prefixes=share_prefixes, logit_shift=shift)
        self.model = model
        self.method = method

    def log_probs(self, names: Sequence[str]) -> np.ndarray:
        return self.model.log_probs(names, self.method)


def _rust_available() -> bool:
    from namelang import _native

    return hasattr(_native, "Model")


class Classifier:
    """Scores names with one model file on one backend. Safe to share across threads."""

    def __init__(
        self,
        path: Path,
        backend: str = "auto",
        device: str = "cpu",
        share_prefixes: bool = True,
        prior: PriorSpec = None,
    ):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if backend == "auto":
            backend = "rust" if device == "cpu" and _rust_available() else "torch"
        if backend == "rust" and device != "cpu":
            raise ValueError("the rust backend runs on the CPU; use backend='torch' for CUDA")
        self.path = path
        self._impl = (
            _RustBackend(path, share_prefixes=share_prefixes, prior=prior)
            if backend == "rust"
            else _TorchBackend(path, device, prior=prior)
        )
        # The target prior (None: the training shares, as the model was trained).
        self.prior: dict[str, float] | None = resolve_prior(prior, list(self._impl.spec.categories))
        self.spec = self._impl.spec
        self.categories: list[str] = list(self.spec.categories)
        self.backend: str = backend
        self._top_k_formats: dict[int, object] = {}
        # The longest name this backend scores (None: any length).
        self.max_letters: int | None = getattr(self._impl, "MAX_LETTERS", None)

    def clear_answers(self) -> None:
        """Forgets the answers bulk scoring kept across blocks and files (the rust
        backend keeps up to 32,768; they change no output), so a timed run starts cold."""
        model = getattr(self._impl, "model", None)
        if model is not None:
            model.clear_answers()

    def __repr__(self) -> str:
        return f"Classifier({self.path.name!r}, cell={self.spec.cell!r}, backend={self.backend!r})"

    def log_probs(self, names: Iterable[str], full_name: bool = False) -> np.ndarray:
        """float32 (B, C) log-probabilities; a row of NaN for a name with no letters (or
        one the model gives no number for: `model_error`). `full_name=True`: the names are
        full names, scored on their surnames (`namelang.text.surnames`)."""
        return self._impl.log_probs(_names(names, full_name))

    def row_format(
        self,
        format: str = "csv",
        k: int = 1,
        max_length: int = 256,
        set_threshold: float | None = None,
        min_probability: float = 0.0,
        columns: list[str] | None = None,
        explain: int = 0,
        full_name: bool = False,
        transcoded: bool = False,
    ):
        """The checked options every row of a job follows (k capped at the languages),
        for the native row check, top-k and formatting; `explain` parts in a `why` column;
        `transcoded`: the input was decoded from another encoding (bad bytes:
        `invalid_encoding`)."""
        from namelang import _native

        return _native.RowFormat(
            self.categories,
            self.spec.text_rule,
            format,
            k,
            max_length,
            set_threshold,
            min_probability,
            columns,
            explain,
            full_name,
            transcoded,
        )

    def predict(
        self, names: Iterable[str], k: int = 3, full_name: bool = False
    ) -> list[list[tuple[str, float]]]:
        """Top-k (language, probability) per name, best first; [] for a name with no letters.
        `full_name=True`: the names are full names, scored on their surnames."""
        names = _names(names, full_name)
        rows = self._top_k_formats.get(k) if isinstance(k, int) else None
        if rows is None:
            rows = self.row_format(k=k)
            self._top_k_formats[k] = rows  # one per k: single-name calls stay cheap
        if isinstance(self._impl, _RustBackend):
            return self._impl.model.predict(names, rows)  # one native call, no array
        return rows.top(self.log_probs(names))

    def explain(
        self, names: Iterable[str], k: int = 3, full_name: bool = False
    ) -> list[list[Part]]:
        """Per name, up to `k` parts that raised its top language most, best first: dicts
        {"text", "start", "end", "weight"}, where text is letters start..end of the name
        as the model reads it (`namelang.text.apply_text_rule`) and weight the
        log-probability points the top language loses when that part is deleted. The
        weights are the model's own answers on the shortened names; parts overlap, so
        they do not add up. [] for a name with no letters, or with more than 1,024 (its
        candidates would hold about 4 x letters^2 letters)."""
        names = _names(names, full_name)
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        if self.backend == "rust":
            return self._impl.model.explain(names, k)
        from namelang import _native

        reads, candidates = _native.explain_candidates(names, self.spec.text_rule)
        full, rows = self.log_probs(names), self.log_probs(candidates)
        return _native.explain_rank(reads, full, rows, k)

    def conformal_threshold(self, coverage: float) -> float:
        """The probability a language needs to enter the prediction set at `coverage`
        (0.50-0.99, in steps of 0.01), as fitted on validation and stored in the file."""
        from namelang.calibration import threshold

        if self.prior is not None:
            warnings.warn(
                "prediction sets were fitted on validation names in the training shares; "
                "under another prior their coverage is not guaranteed",
                stacklevel=2,
            )
        return threshold(self.spec.metadata.get("conformal"), coverage)

    def predict_sets(
        self, names: Iterable[str], coverage: float = 0.9, full_name: bool = False
    ) -> list[list[tuple[str, float]]]:
        """Per name, the languages (best first, with probabilities) of the split-conformal
        prediction set that holds the true language with probability `coverage` (over
        names like the validation split's); [] for a name with no letters."""
        import numpy as np

        from namelang.calibration import prediction_set

        cut = np.float32(self.conformal_threshold(coverage))
        scores = self.log_probs(names, full_name)
        out: list[list[tuple[str, float]]] = []
        for row in scores:
            if np.isnan(row).any():
                out.append([])
                continue
            probs = np.exp(row)
            out.append([(self.categories[c], float(probs[c])) for c in prediction_set(probs, cut)])
        return out


def _names(names: Iterable[str], full_name: bool) -> list[str]:
    """The names as a list (a single str refused), or their surnames for full names."""
    from namelang import _native

    if isinstance(names, str):
        raise TypeError("names must be a sequence of str, not a single str: wrap it in a list")
    names = names if isinstance(names, list) else list(names)
    return _native.surnames(names) if full_name else names


def load(
    model: str | os.PathLike[str] = "default",
    backend: str = "auto",
    device: str = "cpu",
    share_prefixes: bool = True,
    prior: PriorSpec = None,
) -> Classifier:
    """A Classifier for a bundled model ("default", "tutorial") or a model file path.

    `prior`: the language mix expected in the names (`namelang.prior`): None or "data"
    (the training shares), "uniform", {language: share} or a JSON file of one; answers
    are shifted by log(prior / training share) on both backends.

    On the rust backend, names that start alike share their recurrent state until their
    letters part (identical results, less work on real lists); `share_prefixes=False`
    runs each name on its own, for timing the kernel alone."""
    return Classifier(
        model_path(model),
        backend=backend,
        device=device,
        share_prefixes=share_prefixes,
        prior=prior,
    )

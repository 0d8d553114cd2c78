"""What a model is, without torch: its configuration (cell, input, sizes, text rule,
n-gram branch), the spec a model file states (the configuration plus its languages and
metadata), and the metadata that carries it.

The rules a configuration must follow, and the tensor names and shapes each one has, are
written once, in the native reader (`rust/model_file.rs`): `ModelConfig` and model files
are checked by it, so training, the PyTorch loader and the Rust backend agree on every
file. Tensor names and shapes are documented in `namelang.model`."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields

from namelang.text import ALPHABET

FORMAT = "namelang/1"
N_LETTERS = len(ALPHABET)
CELLS = ("elman", "gru", "lstm")
INPUTS = ("one_hot", "embedding")
# How names become the letters a model reads: "exact" keeps case and spaces (the
# tutorial's behaviour); "trim_lower" drops surrounding spaces and folds case;
# "romanize" is trim_lower after Cyrillic and Greek letters are romanised.
TEXT_RULES = ("exact", "trim_lower", "romanize")


@dataclass(frozen=True)
class ModelConfig:
    cell: str = "gru"
    hidden_size: int = 128
    num_layers: int = 1
    input: str = "one_hot"
    embedding_dim: int = 0
    n_categories: int = 18
    bidirectional: bool = False
    text_rule: str = "exact"
    ngram_max: int = 0  # 0: no n-gram branch
    ngram_buckets: int = 0

    def __post_init__(self) -> None:
        categories = [f"c{i}" for i in range(max(self.n_categories, 0))]
        try:
            expected_shapes(metadata(self, categories))
        except ValueError as e:
            raise ValueError(str(e).replace("invalid model file: ", "model config: ")) from None

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class ModelSpec:
    """What a model file says about itself: its configuration, languages and metadata."""

    cell: str
    hidden_size: int
    num_layers: int
    input: str
    embedding_dim: int
    categories: list[str]
    metadata: dict[str, str] = field(default_factory=dict)
    bidirectional: bool = False
    text_rule: str = "exact"
    ngram_max: int = 0
    ngram_buckets: int = 0

    @property
    def n_categories(self) -> int:
        return len(self.categories)

    @property
    def config(self) -> ModelConfig:
        names = {f.name for f in fields(ModelConfig)} - {"n_categories"}
        return ModelConfig(n_categories=self.n_categories, **{n: getattr(self, n) for n in names})

    @classmethod
    def of(cls, config: ModelConfig, categories: list[str], extra: dict[str, str] | None = None):
        """The spec of a model with this configuration and these languages."""
        names = {f.name for f in fields(ModelConfig)} - {"n_categories"}
        spec = cls(categories=list(categories), **{n: getattr(config, n) for n in names})
        meta = {**(extra or {}), **metadata(config, categories)}
        return cls(**{**spec.__dict__, "metadata": meta})


def metadata(config: ModelConfig, categories: list[str]) -> dict[str, str]:
    """The header metadata that states this configuration and these languages."""
    meta = {
        "format": FORMAT,
        "cell": config.cell,
        "hidden_size": str(config.hidden_size),
        "num_layers": str(config.num_layers),
        "input": config.input,
        "embedding_dim": str(config.embedding_dim),
        "bidirectional": "true" if config.bidirectional else "false",
        "text_rule": config.text_rule,
        "alphabet": ALPHABET,
        "categories": json.dumps(list(categories)),
    }
    if config.ngram_max or config.ngram_buckets:
        meta.update(ngram_max=str(config.ngram_max), ngram_buckets=str(config.ngram_buckets))
    return meta


def expected_shapes(meta: dict[str, str]) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape for the model this metadata states; a ValueError names what
    does not fit the rules."""
    from namelang import _native

    return {name: tuple(shape) for name, shape in _native.expected_shapes(meta)}


def spec_from_metadata(meta: dict[str, str]) -> ModelSpec:
    """The spec this header metadata states, after the native reader's checks."""
    expected_shapes(meta)
    return ModelSpec(
        cell=meta["cell"],
        hidden_size=int(meta["hidden_size"]),
        num_layers=int(meta["num_layers"]),
        input=meta["input"],
        embedding_dim=int(meta["embedding_dim"]),
        categories=json.loads(meta["categories"]),
        metadata=dict(meta),
        bidirectional=meta.get("bidirectional") == "true",
        text_rule=meta.get("text_rule", "exact"),
        ngram_max=int(meta.get("ngram_max", 0)),
        ngram_buckets=int(meta.get("ngram_buckets", 0)),
    )

"""What a model is, without torch: its configuration (cell, input, sizes, text rule,
n-gram branch), the spec a model file states (the configuration plus its languages and
metadata), and the metadata that carries it.

The rules a configuration must follow, and the tensor names and shapes each one has, are
written once, in the native reader (`rust/model_file.rs`): `ModelConfig` and model files
are checked by it, so training, the PyTorch loader and the Rust backend agree on every
file. Tensor names and shapes are documented in `namelang.model`."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields

from namelang import _native
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
    # Blocks of `ngram.known`, the n-grams the table was trained on (0: none).
    ngram_known_blocks: int = 0
    # Letters outside ASCII taken as evidence, one row of `marks.weight` each (`marks`).
    marks: tuple[str, ...] = ()

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


# What a model file states about itself (cell, sizes, text rule, n-gram branch,
# languages, metadata): one class, the native reader's, so the rules are written once.
ModelSpec = _native.ModelSpec


def config_of(spec: ModelSpec) -> ModelConfig:
    """The configuration a spec states (what `namelang.model` builds a module from)."""
    names = {f.name for f in fields(ModelConfig)} - {"n_categories", "marks"}
    return ModelConfig(
        n_categories=spec.n_categories,
        marks=tuple(spec.marks),
        **{n: getattr(spec, n) for n in names},
    )


def spec_of(
    config: ModelConfig, categories: list[str], extra: dict[str, str] | None = None
) -> ModelSpec:
    """The spec of a model with this configuration and these languages (`extra`: more
    metadata, such as training notes)."""
    return ModelSpec({**(extra or {}), **metadata(config, categories)})


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
    if config.ngram_known_blocks:
        meta["ngram_known_blocks"] = str(config.ngram_known_blocks)
    if config.marks:
        meta["marks"] = json.dumps(list(config.marks), ensure_ascii=False)
    return meta


def expected_shapes(meta: dict[str, str]) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape for the model this metadata states; a ValueError names what
    does not fit the rules."""
    return {name: tuple(shape) for name, shape in ModelSpec(meta).expected_shapes()}

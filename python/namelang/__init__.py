"""namelang: which language does a surname come from?

A character-level RNN (the PyTorch tutorial's cell, GRU and LSTM) with a Rust CPU
backend for normalisation, encoding and the forward pass, and PyTorch for training.
Importing namelang does not import torch.
"""

from __future__ import annotations

from namelang._native import __version__  # Cargo.toml's, the one place it is written
from namelang.batch import Scorer, score_batch
from namelang.classifier import Classifier, load
from namelang.score import score_file
from namelang.text import (
    ALPHABET,
    encode,
    get_num_threads,
    one_hot,
    romanize,
    set_num_threads,
    to_ascii,
    to_ascii_batch,
)

__all__ = [
    "ALPHABET",
    "Classifier",
    "Scorer",
    "__version__",
    "encode",
    "get_num_threads",
    "load",
    "one_hot",
    "romanize",
    "score_batch",
    "score_file",
    "set_num_threads",
    "to_ascii",
    "to_ascii_batch",
]

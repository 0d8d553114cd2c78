"""Optional dependencies: scoring needs numpy, safetensors and tqdm only; training, the
torch backend, the bench and plots need the `train` extra (PyTorch, matplotlib, and Faker
for the second corpus)."""

from __future__ import annotations

import importlib.util

EXTRA = "train"


def require(module: str, what: str, extra: str = EXTRA) -> None:
    """Raises ImportError in one line naming the extra to install when `module` is absent."""
    if importlib.util.find_spec(module) is None:
        raise ImportError(
            f"{what} needs {module}, which is not installed: "
            f"pip install 'namelang[{extra}]' (or, from a clone, pip install '.[{extra}]')"
        )

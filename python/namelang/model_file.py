"""The model file: safetensors (float32, no pickle) with namelang's metadata in the
header. Written only by training; read by the native reader for both backends, so a file
is accepted or refused (with a ValueError naming what is wrong) the same way by each.

Every file written here carries `digest`: SHA-256 of its metadata and tensors, computed
and checked by the native module, so a file damaged after writing is refused ("digest
mismatch") instead of answering nonsense. Files without a digest still load."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from namelang import _native
from namelang.output import default_permissions
from namelang.spec import ModelSpec, config_of, expected_shapes, metadata, spec_of

if TYPE_CHECKING:
    import numpy as np

# The metadata key of the file's digest ("sha256:" and 64 hex digits).
DIGEST_KEY = "digest"
# The one tensor that is not float32: the n-grams the table knows, uint32 words.
KNOWN = "ngram.known"


def read(path: str | os.PathLike[str]) -> tuple[ModelSpec, dict[str, np.ndarray]]:
    """Reads and validates a model file: (spec, {name: float32 array})."""

    spec, tensors = _native.read_model_file(os.fspath(path))
    return spec, dict(tensors)


def write(
    path: str | os.PathLike[str],
    spec: ModelSpec,
    tensors: dict[str, np.ndarray],
    metadata_extra: dict[str, str] | None = None,
) -> Path:
    """Writes a model file atomically (temporary file, then rename); the spec's own
    metadata (training notes, calibration) is kept, `metadata_extra` added to it."""
    import numpy as np
    from safetensors.numpy import save_file

    path = Path(path)
    meta = {**spec.metadata, **(metadata_extra or {}), **metadata(config_of(spec), spec.categories)}
    meta.pop(DIGEST_KEY, None)  # a spec read from a file carries that file's digest
    expected = expected_shapes(meta)
    arrays = {
        k: np.ascontiguousarray(tensors[k], dtype=np.uint32 if k == KNOWN else np.float32)
        for k in expected
    }
    for name, shape in expected.items():
        if arrays[name].shape != shape:
            raise ValueError(f"tensor {name} has shape {arrays[name].shape}, expected {shape}")
    meta[DIGEST_KEY] = _native.model_digest(meta, list(arrays.items()))
    if not path.parent.is_dir():
        raise FileNotFoundError(f"no folder {path.parent} to write {path.name} into")
    import tempfile  # writing only: scoring never loads it

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        save_file(arrays, tmp, metadata=meta)
        default_permissions(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save(
    path: str | os.PathLike[str],
    model,
    categories: list[str],
    metadata: dict[str, str] | None = None,
) -> Path:
    """Writes a namelang.model module (anything with a `config` and a state dict) with
    its categories and training metadata."""
    import numpy as np

    spec = spec_of(model.config, categories)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    state = {
        k: v.numpy().view(np.uint32) if k == KNOWN else v.float().numpy() for k, v in state.items()
    }
    return write(path, spec, state, metadata)

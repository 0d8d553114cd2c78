"""The tutorial's data set: reading `<Language>.txt` files, downloading the archive,
and the split that keeps each distinct name in one part only."""

from __future__ import annotations

import io
import os
import random
import shutil
import tempfile
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from namelang.text import to_ascii_batch

DATA_URL = "https://download.pytorch.org/tutorial/data.zip"
N_LANGUAGES = 18
_ARCHIVE_FOLDER = "data/names/"


def cache_folder() -> Path:
    """Where `download` puts the data by default: $XDG_CACHE_HOME/namelang/names."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "namelang" / "names"


def data_folder(folder: str | os.PathLike[str] | None = None) -> Path:
    """The folder argument, else $NAMELANG_DATA, else the download cache."""
    if folder is not None:
        return Path(folder)
    if env := os.environ.get("NAMELANG_DATA"):
        return Path(env)
    return cache_folder()


def load_names(folder: str | os.PathLike[str] | None = None) -> dict[str, list[str]]:
    """{language: [name, ...]} from `<Language>.txt` files (UTF-8, one name a line),
    languages sorted by name. Names are as written; normalisation comes later."""
    path = data_folder(folder)
    files = sorted(path.glob("*.txt"), key=lambda p: p.stem)
    if not files:
        raise FileNotFoundError(
            f"no <Language>.txt files in {path}: pass a folder, set NAMELANG_DATA, "
            "or run `namelang download`"
        )
    names: dict[str, list[str]] = {}
    for file in files:
        text = file.read_text(encoding="utf-8")
        names[file.stem] = [line.strip("\r") for line in text.split("\n") if line.strip()]
    return names


def download(dest: str | os.PathLike[str] | None = None, url: str = DATA_URL) -> Path:
    """Fetch the tutorial's archive and extract its `data/names/*.txt` into `dest`
    (default: the cache folder). The folder appears whole or not at all."""
    # Imported here: urllib.request brings http, ssl and email (about 20 ms a start).
    import urllib.error
    import urllib.request

    dest = Path(dest) if dest is not None else cache_folder()
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            payload = response.read()
    except (urllib.error.URLError, OSError) as e:
        raise ConnectionError(
            f"could not download {url}: {e}. Check the network, or fetch the archive "
            "by hand and point NAMELANG_DATA at its data/names folder"
        ) from e
    try:
        archive = zipfile.ZipFile(io.BytesIO(payload))
        members = [
            m
            for m in archive.namelist()
            if m.startswith(_ARCHIVE_FOLDER) and m.endswith(".txt") and "/" not in m[11:]
        ]
    except zipfile.BadZipFile as e:
        raise ValueError(f"{url} is not a zip archive: {e}") from e
    if len(members) != N_LANGUAGES:
        raise ValueError(
            f"{url} holds {len(members)} {_ARCHIVE_FOLDER}*.txt files, expected {N_LANGUAGES}"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".names-", dir=dest.parent))
    try:
        for member in members:
            (staging / Path(member).name).write_bytes(archive.read(member))
        if dest.exists():
            shutil.rmtree(dest)
        staging.rename(dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return dest


@dataclass(frozen=True)
class Split:
    """Rows of (ASCII name, category index) for each part; `categories` in output order."""

    categories: list[str]
    train: list[tuple[str, int]]
    valid: list[tuple[str, int]]
    test: list[tuple[str, int]]
    seed: int
    # Each training row's weight in the loss (None: 1 each), for rows from a second corpus.
    train_weights: list[float] | None = None
    # Each language's share of the data set's training lines, names repeated as the files
    # repeat them (None: not counted), kept when distinct rows or a corpus change `train`.
    line_shares: dict[str, float] | None = None

    def weights(self) -> list[float]:
        return self.train_weights or [1.0] * len(self.train)


def split_names(
    names: dict[str, list[str]],
    seed: int = 2022,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
) -> Split:
    """Split by distinct normalised name, never by line: every row of a name goes to the
    same part, so no test name is seen in training. Stratified by each name's most
    frequent language (ties: the first in sorted order). Names with no letters are dropped.
    """
    categories = sorted(names)
    rows_by_name: dict[str, list[int]] = {}
    for ci, category in enumerate(categories):
        for ascii_name in to_ascii_batch(names[category]):
            if ascii_name:
                rows_by_name.setdefault(ascii_name, []).append(ci)
    by_majority: dict[int, list[str]] = {ci: [] for ci in range(len(categories))}
    for name, labels in rows_by_name.items():
        counts = Counter(labels)
        majority = min(counts, key=lambda c: (-counts[c], c))
        by_majority[majority].append(name)
    rng = random.Random(seed)
    parts: list[list[tuple[str, int]]] = [[], [], []]
    for ci in range(len(categories)):
        group = sorted(by_majority[ci])
        rng.shuffle(group)
        n_train = round(len(group) * fractions[0])
        n_valid = round(len(group) * fractions[1])
        bounds = [(0, n_train), (n_train, n_train + n_valid), (n_train + n_valid, len(group))]
        for part, (lo, hi) in zip(parts, bounds, strict=True):
            part.extend((name, label) for name in group[lo:hi] for label in rows_by_name[name])
    return Split(categories, parts[0], parts[1], parts[2], seed)

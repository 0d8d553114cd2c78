"""A second training corpus: the surname lists Faker ships per locale, read at training
time (Faker is in the `train` extra; nothing is downloaded and no list is copied here).

Labels are countries, not origins (fr_FR holds Da Silva and Traoré), so the rows are
chosen conservatively: one language per locale (the map below, with its reasons); a name
found under two languages (in two lists, or in a list and in the tutorial's training
part under another language) is left out, since the data says both; every name of the
tutorial split's validation and test parts is left out, so test figures stay honest;
and each language keeps at most `cap` rows (the most frequent first where the list
carries frequencies, else a seeded sample), so a long list cannot flood its neighbours.
Rows are weighted (`weight`) against the tutorial's in training.
"""

from __future__ import annotations

import importlib
import random
from dataclasses import dataclass

from namelang.data import Split
from namelang.text import apply_text_rule


@dataclass(frozen=True)
class Source:
    locale: str
    language: str
    lists: tuple[str, ...]  # the Provider attributes read
    why: str


SOURCES = (
    Source("en_GB", "English", ("last_names",), "British surnames, with frequencies"),
    Source(
        "en_IE", "Irish", ("last_names",), "anglicised Irish surnames, as Irish.txt spells them"
    ),
    Source("de_DE", "German", ("last_names",), "German surnames"),
    Source("de_AT", "German", ("last_names",), "Austrian surnames: German"),
    Source("fr_FR", "French", ("last_names",), "French surnames"),
    Source("it_IT", "Italian", ("last_names",), "Italian surnames"),
    Source("es_ES", "Spanish", ("last_names",), "surnames of Spain (not the Americas' lists)"),
    Source("pt_PT", "Portuguese", ("last_names",), "Portuguese surnames"),
    Source("pt_BR", "Portuguese", ("last_names",), "Brazilian surnames: Portuguese in spelling"),
    Source("nl_NL", "Dutch", ("last_names",), "Dutch surnames, particles included"),
    Source("nl_BE", "Dutch", ("last_names",), "Flemish surnames, with frequencies"),
    Source("pl_PL", "Polish", ("unisex_last_names", "male_last_names"), "Polish surnames"),
    Source("cs_CZ", "Czech", ("last_names_male", "last_names_female"), "Czech, both genders"),
    Source("ru_RU", "Russian", ("last_names",), "Russian in Cyrillic, read by the romanize rule"),
    Source("el_GR", "Greek", ("last_names",), "Greek in Greek script, read by the romanize rule"),
    Source("zh_CN", "Chinese", ("last_romanized_names",), "Chinese surnames in pinyin"),
    Source("zh_TW", "Chinese", ("last_romanized_names",), "Chinese surnames as Taiwan spells them"),
    Source("ja_JP", "Japanese", ("last_romanized_names",), "Japanese surnames in romaji"),
    Source("vi_VN", "Vietnamese", ("last_names",), "the ten commonest Vietnamese surnames"),
    Source("fr_DZ", "Arabic", ("last_names",), "Algerian surnames in French spelling"),
    Source(
        "en_PK",
        "Arabic",
        ("last_names",),
        "Arabic given names in English spelling (Ibrahim, Omar, Mahmoud, Talal): the "
        "patronymic surnames Arabic.txt holds, whatever the country of the list",
    ),
)
# Left out: en_IN and the other Indian lists (no language of theirs here), ga_IE
# (Irish-language forms, "Ó Briain", unlike the data set's anglicised Irish), en_US and
# the Americas' Spanish lists (countries of many origins), ko_KR (Hangul only, no
# romanised list), de_CH/fr_CH/fr_BE (a country's names of several languages), and
# every Arabic-script list (no romanisation of Arabic here).

# Dutch and other particles: a multi-word entry is a surname when every word but the
# last is one of these (Faker's nl_NL also lists given-name + surname and noble titles).
PARTICLES = {
    "van", "de", "der", "den", "ter", "ten", "te", "het", "'t", "in", "'s", "op", "von",
    "la", "le", "da", "dos", "das", "del", "di", "du", "d'", "vander", "vanden",
}  # fmt: skip


@dataclass
class Corpus:
    rows: list[tuple[str, int]]  # (name as written, category index)
    by_language: dict[str, int]
    dropped_shared: int
    dropped_held_out: int
    version: str


def _entries(source: Source) -> list[tuple[str, float | None]]:
    """(name, frequency or None) of a locale's lists, in the lists' order."""
    provider = importlib.import_module(f"faker.providers.person.{source.locale}").Provider
    out: list[tuple[str, float | None]] = []
    for attr in source.lists:
        values = getattr(provider, attr, ())
        if hasattr(values, "items"):
            out += [(str(k), float(v)) for k, v in values.items()]
        else:
            out += [(str(v), None) for v in values]
    return out


def _is_surname(name: str) -> bool:
    words = name.split()
    return bool(words) and "," not in name and all(w.lower() in PARTICLES for w in words[:-1])


def listed_names(categories: list[str]) -> dict[str, set[str]]:
    """Each surname's read form -> the languages whose Faker lists hold it."""
    found: dict[str, set[str]] = {}
    for source in SOURCES:
        if source.language not in categories:
            continue
        entries = [n for n, _ in _entries(source) if _is_surname(n)]
        for read in apply_text_rule(entries, "romanize"):
            if read:
                found.setdefault(read, set()).add(source.language)
    return found


def unsettled_rows(split: Split) -> list[bool]:
    """For each training row of the data set: whether the corpus contradicts its label.
    A name the data set lists under several languages (Wang: Chinese, English, German,
    Korean) keeps the labels the corpus confirms (Chinese) and those of languages the
    corpus has no list for (Korean, Scottish); a label whose language has a list that
    leaves the name out, while another of its labels' lists holds it, is contradicted
    (English, German). Names under one language are left as they are."""
    cats = split.categories
    listed = listed_names(cats)
    has_list = {s.language for s in SOURCES}
    reads = apply_text_rule([n for n, _ in split.train], "romanize")
    labels: dict[str, set[str]] = {}
    for read, (_, label) in zip(reads, split.train, strict=True):
        labels.setdefault(read, set()).add(cats[label])
    out = []
    for read, (_, label) in zip(reads, split.train, strict=True):
        ours, theirs, language = labels[read], listed.get(read, set()), cats[label]
        confirmed = len(ours) > 1 and bool(theirs & ours)
        out.append(confirmed and language in has_list and language not in theirs)
    return out


def faker_corpus(
    split: Split,
    cap: int = 300,
    seed: int = 2022,
    keep_shared: bool = False,
    cap_ratio: float = 0.0,
) -> Corpus:
    """The Faker rows for the languages of `split` (see the module's notes);
    `keep_shared`: keep a name found under two languages, with its list's language, so
    the data says both (as the data set does for its own shared names). `cap_ratio` > 0
    also caps a language at that many times its training names (at least 50), so a
    small language's neighbours are not outweighed."""
    import faker

    index = {c: i for i, c in enumerate(split.categories)}
    candidates: dict[str, dict[str, float | None]] = {}  # read form -> ...
    names_of: dict[str, dict[str, tuple[str, float | None]]] = {}
    for source in SOURCES:
        if source.language not in index:
            continue
        entries = [(n, f) for n, f in _entries(source) if _is_surname(n)]
        reads = apply_text_rule([n for n, _ in entries], "romanize")
        for (name, freq), read in zip(entries, reads, strict=True):
            if read:
                candidates.setdefault(read, {})[source.language] = freq
                names_of.setdefault(source.language, {}).setdefault(read, (name, freq))
    train_reads = apply_text_rule([n for n, _ in split.train], "romanize")
    tutorial = {}
    for read, (_, label) in zip(train_reads, split.train, strict=True):
        tutorial.setdefault(read, set()).add(split.categories[label])
    held = [n for n, _ in split.valid + split.test]
    held_out = set(apply_text_rule(held, "romanize"))
    rng = random.Random(seed)
    rows, by_language, shared, out_held = [], {}, 0, 0
    for language, names in sorted(names_of.items()):
        kept = []
        for read, (name, freq) in names.items():
            if read in held_out:
                out_held += 1
            elif not keep_shared and (
                len(candidates[read]) > 1 or tutorial.get(read, {language}) != {language}
            ):
                shared += 1
            else:
                kept.append((name, freq))
        if kept and all(f is not None for _, f in kept):
            kept.sort(key=lambda nf: -nf[1])
        else:
            rng.shuffle(kept)
        own = sum(1 for _, label in split.train if label == index[language])
        limit = min(cap, max(50, int(cap_ratio * own))) if cap_ratio > 0 else cap
        kept = kept[:limit]
        rows += [(name, index[language]) for name, _ in kept]
        by_language[language] = len(kept)
    return Corpus(rows, by_language, shared, out_held, faker.VERSION)

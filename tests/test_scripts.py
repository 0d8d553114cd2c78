"""Names in Cyrillic and Greek script: the `romanize` text rule, held to its plain Python
oracle (`reference.romanize`), through every input path and both backends."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import namelang
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from namelang import reference
from namelang.score import score_file

COMMON = [
    line.split("\t")
    for line in (Path(__file__).parent / "data" / "scripts_common_surnames.tsv")
    .read_text(encoding="utf-8")
    .splitlines()
    if line and not line.startswith("#")
]


def test_the_table_reads_names_as_the_data_set_spells_them():
    assert namelang.romanize("Иванов") == "Ivanov"
    assert namelang.romanize("Хабаров Достоевский") == "Habarov Dostoevsky"
    assert namelang.romanize("Παπαδόπουλος") == "Papadopoulos"
    assert namelang.romanize("Müller 王") == "Müller 王"
    spelled = sum(namelang.romanize(script) == latin for script, latin, _ in COMMON)
    assert spelled >= 36, spelled  # 37 of 40: Solovyov, Vasilyev, Semyonov differ (ё, ье)


# Letters (Lu/Ll) of the Cyrillic, Greek and Greek Extended blocks, Latin letters,
# accents as separate marks, spaces, apostrophes, hyphens and digits.
SCRIPT_TEXT = st.text(
    st.one_of(
        st.characters(min_codepoint=0x370, max_codepoint=0x52F, categories=["Lu", "Ll"]),
        st.characters(min_codepoint=0x1F00, max_codepoint=0x1FFF, categories=["Lu", "Ll"]),
        st.sampled_from(list("aZ '-1\u2019\u0301\u0308")),
    ),
    max_size=24,
)


TRICKY = [
    "Достоевский", "Красный", "Хабаров", "Абалихин", "Соловьёв", "ЩУКИН", "Ґудзій", "Гриців",
    "Євтушенко", "Ковальчук", "Ђорђевић", "Ўладзь", "Ѓорѓиевски", "Παπαδόπουλος", "Ευθυμίου",
    "Αυγερινός", "Μωραΐτης", "ΝΙΚΟΛΑΟΥ", "Μπάνος", "Παλούμπας", "Ντούνιας", "Αγγελόπουλος",
    "Λογγκ", "Ἀθανάσιος", "de Иванов-Smith", "О'Коннор", "Ж", "Й", "й", "ΟΥ", "Ευ",
]  # fmt: skip


@pytest.mark.parametrize("name", TRICKY + [row[0] for row in COMMON])
def test_romanize_matches_its_reference_on_names(name):
    assert namelang.romanize(name) == reference.romanize(name)


@settings(max_examples=3000, derandomize=True, database=None, deadline=None)
@given(SCRIPT_TEXT)
def test_romanize_matches_its_reference(text):
    assert namelang.romanize(text) == reference.romanize(text)
    read = namelang.text.apply_text_rule([text], "romanize")[0]
    assert read == reference.romanize_lower(text)
    assert namelang.text.apply_text_rule([read], "romanize")[0] == read


@pytest.mark.parametrize("backend", ["rust", "torch"])
def test_common_surnames_in_their_scripts_get_their_language(backend):
    clf = namelang.load("default", backend=backend)
    script = [row[0] for row in COMMON]
    latin = [row[1] for row in COMMON]
    top_script = [p[0][0] for p in clf.predict(script, k=1)]
    top_latin = [p[0][0] for p in clf.predict(latin, k=1)]
    for language in ("Russian", "Greek"):
        rows = [i for i, row in enumerate(COMMON) if row[2] == language]
        right = sum(top_script[i] == language for i in rows)
        assert right >= 18, (language, right, [script[i] for i in rows])
    same = sum(a == b for a, b in zip(top_script, top_latin, strict=True))
    assert same >= 38, same  # 40 of 40 measured


def test_the_tutorial_model_keeps_the_tutorials_reading():
    clf = namelang.load("tutorial")
    assert clf.spec.text_rule == "exact"
    assert clf.predict(["Иванов", "Παπαδόπουλος"], k=1) == [[], []]


@pytest.mark.parametrize("backend", ["rust", "torch"])
def test_every_input_path_reads_cyrillic_and_greek(tmp_path, backend):
    names = ["Иванов", "Παπαδόπουλος", "Müller", "王", "ЖУКОВ"]
    text = tmp_path / "in.txt"
    text.write_text("\n".join(names) + "\n", encoding="utf-8")
    table = tmp_path / "in.csv"
    table.write_text("id,name\n" + "".join(f"{i},{n}\n" for i, n in enumerate(names)))
    lines = tmp_path / "in.jsonl"
    lines.write_text("".join(json.dumps({"name": n}) + "\n" for n in names))
    want_ascii = ["Ivanov", "Papadopoulos", "Muller", "", "ZHUKOV"]
    want_errors = ["", "", "", "no_letters", ""]
    for src in (text, table, lines):
        out = tmp_path / f"{src.suffix[1:]}.csv"
        score_file(src, out, backend=backend, progress=False)
        with open(out, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        assert [r["ascii"] for r in rows] == want_ascii, src
        assert [r["error"] for r in rows] == want_errors, src
        assert [r["language"] for r in rows][:2] == ["Russian", "Greek"], src
    if backend == "rust":
        import pandas as pd

        frame = namelang.score_batch(pd.DataFrame({"name": names}))
        assert frame["language"].tolist()[:2] == ["Russian", "Greek"]
    done = subprocess.run(
        [sys.executable, "-m", "namelang.cli", "predict", "Иванов", "王", "--backend", backend],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    first, second = done.stdout.splitlines()
    assert first.startswith("Иванов: Russian")
    assert "no_letters" in second and "Han (CJK) script" in second


def test_model_files_name_the_text_rules_they_accept(tmp_path):
    from namelang import model_file
    from namelang.classifier import model_path
    from safetensors.numpy import save_file

    spec, tensors = model_file.read(model_path("tutorial"))
    meta = {k: v for k, v in spec.metadata.items() if k != "digest"}
    bad = tmp_path / "bad.safetensors"
    save_file(tensors, str(bad), metadata={**meta, "text_rule": "transliterate"})
    with pytest.raises(ValueError, match="romanize"):
        namelang.load(bad)

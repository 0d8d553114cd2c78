"""The `namelang` command, through main(argv)."""

from __future__ import annotations

import json

import pytest
from namelang.cli import main


def test_predict_prints_top_k(capsys):
    assert main(["predict", "Hinton", "Schmidhuber", "Zhou", "王"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("Hinton: English ")
    assert lines[2].startswith("Zhou: Chinese ")
    assert lines[3] == "王: no letters to classify"
    assert len(lines[1].split(",")) == 3


@pytest.mark.parametrize("backend", ["rust", "torch"])
def test_predict_json(capsys, backend):
    assert (
        main(["predict", "--json", "-k", "2", "--backend", backend, "--model", "tutorial", "Zhou"])
        == 0
    )
    row = json.loads(capsys.readouterr().out)
    assert row["name"] == "Zhou" and len(row["top"]) == 2


def test_predict_with_a_missing_model_is_an_error(capsys, tmp_path):
    assert main(["predict", "--model", str(tmp_path / "none.safetensors"), "Zhou"]) == 2
    assert "no model file" in capsys.readouterr().err


def test_train_then_evaluate_on_a_tsv_with_plots(tmp_path, tiny_dataset, capsys):
    model = tmp_path / "m.safetensors"
    argv = ["train", "--data", str(tiny_dataset), "--hidden-size", "16", "--embedding-dim", "8"]
    assert main([*argv, "--epochs", "3", "--output", str(model)]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["model"] == str(model)
    tsv = tmp_path / "eval.tsv"
    tsv.write_text("Aekilo\tAlpha\nBudgrz\tBeta\nCfhjpq\tGamma\n", encoding="utf-8")
    assert (
        main(
            [
                "evaluate",
                "--model",
                str(model),
                "--tsv",
                str(tsv),
                "--plot",
                str(tmp_path / "plots"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "accuracy" in out and "Gamma" in out
    assert (tmp_path / "plots" / "confusion.png").stat().st_size > 1000
    assert (tmp_path / "plots" / "loss.png").stat().st_size > 1000


def test_evaluate_refuses_unknown_languages(tmp_path, capsys):
    tsv = tmp_path / "eval.tsv"
    tsv.write_text("Zhou\tKlingon\n", encoding="utf-8")
    assert main(["evaluate", "--tsv", str(tsv)]) == 2
    assert "Klingon" in capsys.readouterr().err


def test_evaluate_distinct_counts_each_pair_once(tmp_path, capsys):
    tsv = tmp_path / "eval.tsv"
    tsv.write_text("Zhou\tChinese\n" * 3 + "Hinton\tEnglish\nZhou\tKorean\n", encoding="utf-8")
    assert main(["evaluate", "--model", "tutorial", "--tsv", str(tsv)]) == 0
    assert "rows 5" in capsys.readouterr().out.splitlines()[-1]
    assert main(["evaluate", "--model", "tutorial", "--tsv", str(tsv), "--distinct"]) == 0
    assert "rows 3" in capsys.readouterr().out.splitlines()[-1]


def test_evaluate_bundled_tutorial_on_the_test_split(capsys):
    assert main(["evaluate", "--model", "tutorial"]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith("accuracy 0.5182") and "rows 2005" in last

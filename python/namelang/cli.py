"""The `namelang` command: thin argparse over the library."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import namelang
from namelang import __version__, _native
from namelang.classifier import BUNDLED, load, model_path
from namelang.extras import require
from namelang.score import score_file
from namelang.shared_names import WAYS as SHARED_WAYS
from namelang.text import scored_parts, script_of


def _predict(args: argparse.Namespace) -> int:

    classifier = load(
        args.model,
        backend=args.backend,
        device=args.device,
        prior=args.prior,
        precision=args.precision,
    )
    job = classifier.job(
        k=args.k,
        max_length=_native.MAX_LENGTH_LIMIT,  # predict answers names of any length
        coverage=args.coverage,
        min_probability=args.min_probability,
        explain=args.explain,
        full_name=args.full_name,
    )
    parts = scored_parts(args.names, args.full_name)
    answers = classifier.answers(args.names, job)
    for name, part, (top, chosen, error, why) in zip(args.names, parts, answers, strict=True):
        script = script_of(name) if error == "no_letters" else None
        if args.json:
            record: dict = {"name": name, "top": [[lang, round(p, 6)] for lang, p in top]}
            if args.full_name:
                record["surname"] = part
            if chosen is not None:
                record["set"] = [lang for lang, _ in chosen]
            if why is not None:
                record["why"] = [{**p, "weight": round(p["weight"], 3)} for p in why]
            record["error"] = error
            if script:
                record["script"] = script
            print(json.dumps(record, ensure_ascii=False))
            continue
        shown = f"{name} [{part}]" if args.full_name and part != name else name
        print(_predict_line(shown, top, chosen, error, script, args))
        if why:
            print("    why: " + ", ".join(f"{p['text']} +{p['weight']:.2f}" for p in why))
    return 0


def _predict_line(name, top, chosen, error, script, args) -> str:
    shown = ", ".join(f"{lang} {p:.3f}" for lang, p in top)
    if error == "low_confidence":
        best = f"best {top[0][1]:.3f} < {args.min_probability}"
        line = f"{name}: not sure (low_confidence: {best}); {shown}"
    elif error is not None:
        return f"{name!r}: empty" if error == "empty" else f"{name}: {_no_answer(error, script)}"
    else:
        line = f"{name}: {shown}"
    if chosen is not None:
        line += f"  | {args.coverage:.0%} set: {{{', '.join(lang for lang, _ in chosen)}}}"
    return line


def _no_answer(error: str, script: str | None) -> str:
    """What a row without an answer says; any code the native job gives has a line."""
    if error == "no_letters":
        seen = f"; {script} script" if script else ""
        return f"no Latin letters to classify (no_letters{seen})"
    if error == "model_error":
        return "no answer (model_error: the model's weights give NaN for this name)"
    return f"no answer ({error})"


def _train(args: argparse.Namespace) -> int:

    require("torch", "training")
    from namelang.train import TrainConfig, train

    fields = {
        k: v
        for k, v in vars(args).items()
        if k in TrainConfig.__dataclass_fields__ and v is not None
    }
    config = TrainConfig(**fields)
    _, _, results = train(config, args.output)
    print(json.dumps({"model": str(args.output), **results}))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    # numpy and the metrics load here: `score` and `predict` start without them.
    import numpy as np

    from namelang.calibration import coverage_report, expected_calibration_error
    from namelang.evaluate import (
        format_table,
        metrics,
        plot_confusion,
        plot_history,
        plot_reliability,
        top_k_accuracy,
    )

    classifier = load(args.model, backend=args.backend, device=args.device)
    rows = _evaluation_rows(args, classifier)
    if args.distinct:  # each (name, language) pair once: repeated lines weigh no more
        rows = list(dict.fromkeys(rows))
    index = {c: i for i, c in enumerate(classifier.categories)}
    unknown = sorted({lang for _, lang in rows if lang not in index})
    if unknown:
        print(f"error: languages not in the model: {unknown}", file=sys.stderr)
        return 2
    scores = classifier.log_probs([n for n, _ in rows])
    predicted = np.where(
        np.isnan(scores).any(axis=1), -1, np.nan_to_num(scores, nan=-np.inf).argmax(1)
    )
    truth = np.array([index[lang] for _, lang in rows])
    m = metrics(truth, predicted, len(classifier.categories))
    print(format_table(m, classifier.categories))
    probs = np.nan_to_num(np.exp(scores), nan=0.0)
    print(
        f"top-3 accuracy {top_k_accuracy(probs, truth, 3):.4f}   "
        f"ECE (15 bins) {expected_calibration_error(probs, truth):.4f}"
    )
    if "conformal" in classifier.spec.metadata:
        for level in (0.8, 0.9, 0.95):
            covered, size = coverage_report(probs, truth, classifier.conformal_threshold(level))
            print(f"prediction sets at {level:.2f}: coverage {covered:.4f}, mean size {size:.2f}")
    if args.plot:
        require("matplotlib", "evaluate --plot")
        out = Path(args.plot)
        out.mkdir(parents=True, exist_ok=True)
        title = f"{_model_label(args.model)} on {_rows_label(args)}"
        plot_confusion(m, classifier.categories, out / "confusion.png", title)
        plot_reliability(probs, truth, out / "reliability.png", title)
        history = Path(str(classifier.path) + ".history.json")
        if history.exists():
            loss_title = f"{_model_label(args.model)}: training"
            plot_history(json.loads(history.read_text()), out / "loss.png", loss_title)
        print(f"plots written to {out}/", file=sys.stderr)
    return 0


def _model_label(model: str) -> str:

    return model if model in ("default", "tutorial") else Path(model).name


def _rows_label(args: argparse.Namespace) -> str:

    if args.tsv:
        return Path(args.tsv).name
    if args.folder:
        return Path(args.folder).name
    return f"the {args.split} split" + (", distinct pairs" if args.distinct else "")


def _evaluation_rows(args: argparse.Namespace, classifier) -> list[tuple[str, str]]:

    if args.tsv:
        rows = []
        for line in Path(args.tsv).read_text(encoding="utf-8").splitlines():
            if line.strip():
                name, _, lang = line.partition("\t")
                rows.append((name, lang.strip()))
        return rows
    from namelang.data import load_names, split_names  # evaluate only: scoring never loads it

    if args.folder:
        return [(n, lang) for lang, ns in load_names(args.folder).items() for n in ns]
    names = load_names(args.data)
    split_seed = int(classifier.spec.metadata.get("split_seed", "2022"))
    split = split_names(names, seed=split_seed)
    part = getattr(split, args.split)
    return [(name, split.categories[label]) for name, label in part]


def _score(args: argparse.Namespace) -> int:

    summary = score_file(
        args.input,
        args.output,
        format=args.format,
        input_format=args.input_format,
        column=args.column,
        k=args.k,
        model=args.model,
        backend=args.backend,
        batch_size=args.batch_size,
        threads=args.threads,
        max_length=args.max_length,
        progress=False if args.quiet else None,
        coverage=args.coverage,
        min_probability=args.min_probability,
        explain=args.explain,
        prior=args.prior,
        precision=args.precision,
        full_name=args.full_name,
        delimiter={"tab": "\t", "\\t": "\t"}.get(args.delimiter, args.delimiter),
        encoding=args.encoding,
        compression=args.compression,
    )
    if not args.quiet:
        print(summary.line(), file=sys.stderr)
    return 0


def _bench(args: argparse.Namespace) -> int:

    require("torch", "the bench")
    from namelang.bench import main as bench_main

    return bench_main(args.quick, args.threads, args.json, args.plot, args.data)


def _precision_line() -> str:
    """Which precision `auto` runs here, and which reduced ones this CPU offers."""
    kernel = _native.bf16_kernel()
    int16 = "int16 available (--precision int16)" if _native.int16_available() else "no int16"
    if kernel == "amx":
        return f"bf16 on AMX tiles (auto: gru and lstm, hidden a multiple of 32); else f32; {int16}"
    if _native.kernel_isa() == "avx2+fma":
        return "int16 (auto: gru and lstm); bf16 not on this CPU"
    if kernel:
        return f"f32 (auto); bf16 available ({kernel}, --precision bf16); {int16}"
    return f"f32 (auto); bf16 not on this CPU; {int16}"


def _info(args: argparse.Namespace) -> int:
    """What this install is: versions, the kernel the CPU dispatched to, threads, torch,
    the bundled models and where the data set is looked for."""

    from namelang.data import data_folder

    torch_found = importlib.util.find_spec("torch") is not None
    data = data_folder(args.data)
    lines = {
        "namelang": namelang.__version__,
        "python": f"{sys.version.split()[0]} ({sys.executable})",
        "kernel": f"{_native.kernel_isa()} (chosen at run time: avx512, avx2+fma or portable)",
        "precision": _precision_line(),
        "threads": f"{namelang.get_num_threads()} (at most {_native.max_threads()})",
        "torch": "installed (training, the torch backend, bench, plots)"
        if torch_found
        else "not installed: scoring only; pip install 'namelang[train]' to train",
        **{f"model {name}": str(model_path(name)) for name in BUNDLED},
        "data": f"{data} ({'found' if any(data.glob('*.txt')) else 'missing: namelang download'})",
    }
    for key, value in lines.items():
        print(f"{key + ':':<16}{value}")
    return 0


def _download(args: argparse.Namespace) -> int:
    from namelang.data import download

    print(download(args.dest))
    return 0


def _answer_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--coverage",
        type=float,
        help="also give the set of languages that holds the true one with this probability "
        "(0.50-0.99; split-conformal, fitted on validation)",
    )
    p.add_argument(
        "--min-probability",
        dest="min_probability",
        type=float,
        default=0.0,
        help="below this top probability give no language: error low_confidence",
    )
    p.add_argument(
        "--explain",
        type=int,
        nargs="?",
        const=3,
        default=0,
        metavar="K",
        help="also give the K parts of each name (default 3) that raised its language most, "
        "with the log-odds points each is worth",
    )
    order = p.add_mutually_exclusive_group()
    order.add_argument(
        "--full-name",
        dest="full_name",
        action="store_true",
        help="names are full names (John Smith, 'Smith, John', Jan van den Berg): score the "
        "surname with its particles",
    )
    order.add_argument(
        "--family-first",
        dest="full_name",
        action="store_const",
        const="family-first",
        help="names are full names written family name first (Wang Xiaoming, Nguyen Van An, "
        "as Chinese, Korean, Vietnamese, Japanese and Hungarian lists often are): score "
        "the first word",
    )
    p.add_argument(
        "--prior",
        help="the language mix expected: 'data' (the training shares, default), 'uniform', "
        "or a JSON file of {language: share}",
    )
    p.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "f32", "bf16", "int16", "int8"],
        help="of the recurrent products on the rust backend: auto is bf16 where AMX tiles run "
        "it (faster in bulk, about as fast for one name), int16 where AVX2 is the widest "
        "kernel (faster in bulk and for one name), else f32; bf16 needs AVX512_BF16, int16 "
        "AVX2 (BENCHMARKS.md)",
    )


DATA_HELP = "folder of <Language>.txt (default: $NAMELANG_DATA, else the download cache)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="namelang", description="Which language does a surname come from?"
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (
        _add_predict,
        _add_train,
        _add_evaluate,
        _add_score,
        _add_bench,
        _add_download,
        _add_info,
    ):
        add(sub)
    return parser


def _version() -> str:

    return f"namelang {__version__} (kernel {_native.kernel_isa()})"


def _add_info(sub) -> None:
    p = sub.add_parser("info", help="versions, CPU kernel, threads, torch, models, data folder")
    p.add_argument("--data", help=DATA_HELP)
    p.set_defaults(run=_info)


def _model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", "-m", default="default", help="'default', 'tutorial' or a model file")
    p.add_argument("--backend", default="auto", choices=["auto", "rust", "torch"])
    p.add_argument("--device", default="cpu", help="cpu or cuda (torch backend)")


def _add_predict(sub) -> None:
    p = sub.add_parser("predict", help="top-k languages for each name")
    p.add_argument("names", nargs="+", metavar="NAME")
    p.add_argument("-k", type=int, default=3, help="languages per name (default: 3)")
    p.add_argument("--json", action="store_true", help="one JSON object a line")
    _answer_options(p)
    _model_options(p)
    p.set_defaults(run=_predict)


def _corpus_options(p: argparse.ArgumentParser) -> None:
    """The second training corpus (namelang.corpus) and how much it counts."""
    p.add_argument(
        "--corpus",
        choices=["faker"],
        help="add a second corpus to training: Faker's surname lists (namelang.corpus)",
    )
    p.add_argument(
        "--corpus-cap", dest="corpus_cap", type=int, help="corpus rows per language (300)"
    )
    p.add_argument(
        "--corpus-cap-ratio",
        dest="corpus_cap_ratio",
        type=float,
        help="also cap a language's corpus rows at this many times its training names",
    )
    p.add_argument(
        "--corpus-keep-shared",
        dest="corpus_keep_shared",
        action="store_true",
        default=None,
        help="keep corpus names found under two languages, each with its list's language",
    )
    p.add_argument(
        "--corpus-settles",
        dest="corpus_settles",
        action="store_true",
        default=None,
        help="drop the data set's labels of names under several languages that the "
        "corpus contradicts (Wang: English, German; Chinese and Korean kept)",
    )
    p.add_argument(
        "--shared-names",
        dest="shared_names",
        choices=SHARED_WAYS,
        help="a name under several languages: each row class-weighted (rows, the "
        "default), its weight split evenly (even), or as the model's probabilities among "
        "its languages, updated each epoch (vote)",
    )
    p.add_argument(
        "--corpus-weight",
        dest="corpus_weight",
        type=float,
        help="a corpus row's weight against a data set row (0.3)",
    )


def _shape_options(p) -> None:
    """The shape of the model `train` makes: cell, sizes, input, text rule, n-grams."""
    p.add_argument("--cell", choices=["elman", "gru", "lstm"])
    p.add_argument("--hidden-size", dest="hidden_size", type=int)
    p.add_argument("--num-layers", dest="num_layers", type=int)
    p.add_argument("--input", choices=["one_hot", "embedding"])
    p.add_argument("--embedding-dim", dest="embedding_dim", type=int)
    p.add_argument(
        "--bidirectional",
        action="store_true",
        default=None,
        help="one-layer gru/lstm reading each name forwards and backwards",
    )
    p.add_argument(
        "--text-rule",
        dest="text_rule",
        choices=["romanize", "trim_lower", "exact"],
        help="how names are read: romanize (default) romanises Cyrillic and Greek, then "
        "ignores case and surrounding spaces as trim_lower does",
    )
    p.add_argument(
        "--ngram-max", dest="ngram_max", type=int, help="add a hashed n-gram branch (1-8; 0: none)"
    )
    p.add_argument("--ngram-buckets", dest="ngram_buckets", type=int, help="its table's rows")
    p.add_argument("--ngram-lr", dest="ngram_lr", type=float, help="its learning rate")
    p.add_argument(
        "--ngram-min-names",
        dest="ngram_min_names",
        type=int,
        help="read only n-grams that this many distinct training names hold (0: every one)",
    )


def _many_models_options(p: argparse.ArgumentParser) -> None:
    """Training several models: merged into one wider model, or teaching one model."""
    p.add_argument(
        "--ensemble", type=int, help="members merged into one model (gru/lstm, one direction)"
    )
    p.add_argument(
        "--distill",
        type=int,
        help="train this many teachers (seeds seed+1, ...), then the model on their mean "
        "answers mixed with the labels: one model's size and speed, K + 1 trainings' time "
        "(--time-budget applies to each)",
    )
    p.add_argument(
        "--distill-weight",
        dest="distill_weight",
        type=float,
        help="the teachers' share of each training target (default 0.5)",
    )


def _fitted_on_validation_options(p) -> None:
    """What training fits on validation after the network: shifts and a temperature."""
    p.add_argument("--no-logit-adjust", dest="logit_adjust", action="store_false", default=None)
    p.add_argument(
        "--line-prior",
        dest="line_prior",
        action="store_true",
        default=None,
        help="also tune, on validation, a shift toward the data set's line shares (its "
        "files repeat names; distinct rows under-count those languages)",
    )
    p.add_argument(
        "--no-calibrate",
        dest="calibrate",
        action="store_false",
        default=None,
        help="do not fit a temperature on validation",
    )


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train a model and write its file")
    p.add_argument("--data", help=DATA_HELP)
    p.add_argument("--recipe", choices=["batched", "tutorial"])
    _shape_options(p)
    p.add_argument(
        "--label-smoothing",
        dest="label_smoothing",
        type=float,
        help="mix this weight of a uniform target into each label (0 to 1)",
    )
    p.add_argument("--batch-size", dest="batch_size", type=int)
    p.add_argument("--optimizer", choices=["adam", "sgd"])
    p.add_argument("--lr", type=float)
    p.add_argument("--weight-decay", dest="weight_decay", type=float)
    p.add_argument("--dropout", type=float)
    p.add_argument("--epochs", type=int)
    p.add_argument("--time-budget", dest="time_budget", type=float, help="seconds")
    p.add_argument("--balanced", action="store_true", default=None, help="class-balanced sampling")
    p.add_argument("--class-weight-power", dest="class_weight_power", type=float)
    p.add_argument("--clip", type=float, help="gradient norm clip (0: none)")
    p.add_argument("--seed", type=int)
    p.add_argument("--split-seed", dest="split_seed", type=int)
    p.add_argument(
        "--distinct",
        action="store_true",
        default=None,
        help="train on each distinct (name, language) pair once, not once per line",
    )
    _many_models_options(p)
    _corpus_options(p)
    _fitted_on_validation_options(p)
    p.add_argument(
        "--feminine-forms",
        dest="feminine_forms",
        action="store_true",
        default=None,
        help="also train on the -ova/-eva/-ina/-aya forms of Russian training names",
    )
    p.add_argument(
        "--marks",
        action="store_true",
        default=None,
        help="take letters outside ASCII (í, ł, ř, ã) as evidence, counted over the "
        "training rows as written (namelang.marks)",
    )
    p.add_argument("--steps", type=int, help="tutorial recipe: SGD steps")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"])
    p.add_argument("--output", "-o", required=True)
    p.set_defaults(run=_train)


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="accuracy, macro recall, per-class table, plots")
    _model_options(p)
    p.add_argument("--data", help=DATA_HELP)
    p.add_argument("--split", default="test", choices=["train", "valid", "test"])
    p.add_argument("--folder", help="evaluate on every name of this <Language>.txt folder")
    p.add_argument("--tsv", help="evaluate on a TSV of name<TAB>language")
    p.add_argument(
        "--distinct",
        action="store_true",
        help="count each distinct (name, language) pair once, not once per line",
    )
    p.add_argument("--plot", metavar="DIR", help="write confusion.png and loss.png here")
    p.set_defaults(run=_evaluate)


def _add_score(sub) -> None:
    p = sub.add_parser("score", help="score a name list (text, CSV, TSV, JSONL) to CSV/TSV/JSONL")
    p.add_argument("input", help="file with one name a line, or CSV/TSV/JSONL; '-' for stdin")
    p.add_argument("-o", "--output", help="output file (default: stdout); written atomically")
    p.add_argument("--format", choices=["csv", "tsv", "jsonl", "parquet"], help="output format")
    p.add_argument("--input-format", choices=["text", "csv", "tsv", "jsonl", "parquet"])
    p.add_argument("--column", help="the name field of a CSV/TSV/JSONL input (default: name)")
    p.add_argument(
        "--delimiter",
        choices=[",", ";", "tab", "|"],
        help="a CSV/TSV input's delimiter (default: sniffed from its header line)",
    )
    p.add_argument(
        "--compression",
        choices=["gzip", "zstd", "none"],
        help="compress the output (default: by its suffix, .gz or .zst); compressed inputs "
        "are read as they are",
    )
    p.add_argument(
        "--encoding",
        help="the input's encoding (default UTF-8; a UTF-16 BOM is recognised): cp1252, "
        "latin-1, utf-16, ... (bytes it cannot decode: error invalid_encoding)",
    )
    p.add_argument("-k", type=int, default=1, help="languages per row (default: 1)")
    _answer_options(p)
    p.add_argument("--batch-size", type=int, default=65_536)
    p.add_argument("--threads", type=int, help="native threads (default: all cores)")
    p.add_argument(
        "--max-length",
        type=int,
        help=f"letters; longer rows are flagged (default {_native.DEFAULT_MAX_LENGTH})",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary")
    p.add_argument("--model", "-m", default="default", help="'default', 'tutorial' or a model file")
    p.add_argument("--backend", default="auto", choices=["auto", "rust", "torch"])
    p.set_defaults(run=_score)


def _add_bench(sub) -> None:
    p = sub.add_parser(
        "bench", help="compare the tutorial's code, PyTorch and Rust on this machine"
    )
    p.add_argument("--quick", action="store_true", help="small inputs, under a minute")
    p.add_argument("--data", help=DATA_HELP)
    p.add_argument("--threads", type=int, help="threads for Rust and torch (default: all cores)")
    p.add_argument("--json", metavar="PATH", help="write every figure as JSON")
    p.add_argument("--plot", metavar="PATH", help="write a PNG bar chart")
    p.set_defaults(run=_bench)


def _add_download(sub) -> None:
    p = sub.add_parser("download", help="fetch the tutorial's data set")
    p.add_argument("dest", nargs="?", help="folder (default: the cache folder)")
    p.set_defaults(run=_download)


def _terminate(signum, frame):
    # SIGTERM unwinds like Ctrl-C, so partial outputs are removed on the way out.
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:

    args = build_parser().parse_args(argv)
    # The handler lasts for this call only: a caller's own (or the default) comes back
    # after, so processes it forks later are not left with a SIGTERM that raises.
    installed = threading.current_thread() is threading.main_thread()
    if installed:
        previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return _run(args)
    finally:
        if installed:  # None: one set outside Python, which cannot be put back
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def _run(args: argparse.Namespace) -> int:
    """The command `args` names, its errors turned into an exit status and a line."""
    try:
        return args.run(args)
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python from reporting
        # the pipe again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        print(f"namelang: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2
    except (ValueError, ConnectionError, TypeError, ImportError) as e:
        print(f"namelang: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"namelang: interrupted; {_what_was_left(args)}", file=sys.stderr)
        return 130


def _what_was_left(args: argparse.Namespace) -> str:
    if getattr(args, "command", None) != "score":
        return "stopped"
    if args.output in (None, "-"):
        return "stdout holds the rows written before it"
    return f"{args.output} was not written (or left as it was)"


if __name__ == "__main__":
    sys.exit(main())

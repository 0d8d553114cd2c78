"""The `namelang` command: thin argparse over the library."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence


def _predict(args: argparse.Namespace) -> int:
    from namelang.classifier import load

    classifier = load(args.model, backend=args.backend, device=args.device)
    results = classifier.predict(args.names, k=args.k)
    for name, top in zip(args.names, results, strict=True):
        if args.json:
            print(json.dumps({"name": name, "top": [[lang, round(p, 6)] for lang, p in top]}))
        elif not top:
            print(f"{name}: no letters to classify")
        else:
            print(f"{name}: " + ", ".join(f"{lang} {p:.3f}" for lang, p in top))
    return 0


def _train(args: argparse.Namespace) -> int:
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
    import numpy as np

    from namelang.classifier import load
    from namelang.evaluate import format_table, metrics, plot_confusion, plot_history

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
    if args.plot:
        from pathlib import Path

        out = Path(args.plot)
        out.mkdir(parents=True, exist_ok=True)
        plot_confusion(m, classifier.categories, out / "confusion.png")
        history = Path(str(classifier.path) + ".history.json")
        if history.exists():
            plot_history(json.loads(history.read_text()), out / "loss.png")
        print(f"plots written to {out}/", file=sys.stderr)
    return 0


def _evaluation_rows(args: argparse.Namespace, classifier) -> list[tuple[str, str]]:
    from pathlib import Path

    from namelang.data import load_names, split_names

    if args.tsv:
        rows = []
        for line in Path(args.tsv).read_text(encoding="utf-8").splitlines():
            if line.strip():
                name, _, lang = line.partition("\t")
                rows.append((name, lang.strip()))
        return rows
    names = load_names(args.data)
    if args.folder:
        return [(n, lang) for lang, ns in load_names(args.folder).items() for n in ns]
    split_seed = int(classifier.spec.metadata.get("split_seed", "2022"))
    split = split_names(names, seed=split_seed)
    part = getattr(split, args.split)
    return [(name, split.categories[label]) for name, label in part]


def _score(args: argparse.Namespace) -> int:
    from namelang.score import score_file

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
    )
    if not args.quiet:
        print(summary.line(), file=sys.stderr)
    return 0


def _bench(args: argparse.Namespace) -> int:
    from namelang.bench import main as bench_main

    return bench_main(args.quick, args.threads, args.json, args.plot)


def _download(args: argparse.Namespace) -> int:
    from namelang.data import download

    print(download(args.dest))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="namelang", description="Which language does a surname come from?"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def model_options(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--model", "-m", default="default", help="'default', 'tutorial' or a model file"
        )
        p.add_argument("--backend", default="auto", choices=["auto", "rust", "torch"])
        p.add_argument("--device", default="cpu", help="cpu or cuda (torch backend)")

    p = sub.add_parser("predict", help="top-k languages for each name")
    p.add_argument("names", nargs="+", metavar="NAME")
    p.add_argument("-k", type=int, default=3)
    p.add_argument("--json", action="store_true", help="one JSON object a line")
    model_options(p)
    p.set_defaults(run=_predict)

    p = sub.add_parser("train", help="train a model and write its file")
    p.add_argument(
        "--data", help="folder of <Language>.txt (default: $NAMELANG_DATA or the download cache)"
    )
    p.add_argument("--recipe", choices=["batched", "tutorial"])
    p.add_argument("--cell", choices=["elman", "gru", "lstm"])
    p.add_argument("--hidden-size", dest="hidden_size", type=int)
    p.add_argument("--num-layers", dest="num_layers", type=int)
    p.add_argument("--input", choices=["one_hot", "embedding"])
    p.add_argument("--embedding-dim", dest="embedding_dim", type=int)
    p.add_argument(
        "--label-smoothing",
        dest="label_smoothing",
        type=float,
        help="mix this weight of a uniform target into each label (0 to 1)",
    )
    p.add_argument(
        "--bidirectional",
        action="store_true",
        default=None,
        help="one-layer gru/lstm reading each name forwards and backwards",
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
    p.add_argument("--no-logit-adjust", dest="logit_adjust", action="store_false", default=None)
    p.add_argument("--clip", type=float, help="gradient norm clip (0: none)")
    p.add_argument("--seed", type=int)
    p.add_argument("--split-seed", dest="split_seed", type=int)
    p.add_argument(
        "--distinct",
        action="store_true",
        default=None,
        help="train on each distinct (name, language) pair once, not once per line",
    )
    p.add_argument("--ensemble", type=int, help="members merged into one model (gru/lstm, one_hot)")
    p.add_argument("--steps", type=int, help="tutorial recipe: SGD steps")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"])
    p.add_argument("--output", "-o", required=True)
    p.set_defaults(run=_train)

    p = sub.add_parser("evaluate", help="accuracy, macro recall, per-class table, plots")
    model_options(p)
    p.add_argument("--data", help="data folder the split is drawn from")
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

    p = sub.add_parser("score", help="score a name list (text, CSV, TSV, JSONL) to CSV/TSV/JSONL")
    p.add_argument("input", help="file with one name a line, or CSV/TSV/JSONL; '-' for stdin")
    p.add_argument("-o", "--output", help="output file (default: stdout); written atomically")
    p.add_argument("--format", choices=["csv", "tsv", "jsonl"], help="output format")
    p.add_argument("--input-format", choices=["text", "csv", "tsv", "jsonl"])
    p.add_argument("--column", help="the name field of a CSV/TSV/JSONL input (default: name)")
    p.add_argument("-k", type=int, default=1, help="languages per row")
    p.add_argument("--batch-size", type=int, default=65_536)
    p.add_argument("--threads", type=int, help="native threads (default: all cores)")
    p.add_argument("--max-length", type=int, default=256, help="letters; longer rows are flagged")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary")
    p.add_argument("--model", "-m", default="default", help="'default', 'tutorial' or a model file")
    p.add_argument("--backend", default="auto", choices=["auto", "rust", "torch"])
    p.set_defaults(run=_score)

    p = sub.add_parser(
        "bench", help="compare the tutorial's code, PyTorch and Rust on this machine"
    )
    p.add_argument("--quick", action="store_true", help="small inputs, under a minute")
    p.add_argument("--threads", type=int, help="threads for Rust and torch (default: all cores)")
    p.add_argument("--json", metavar="PATH", help="write every figure as JSON")
    p.add_argument("--plot", metavar="PATH", help="write a PNG bar chart")
    p.set_defaults(run=_bench)

    p = sub.add_parser("download", help="fetch the tutorial's data set")
    p.add_argument("dest", nargs="?", help="folder (default: the cache folder)")
    p.set_defaults(run=_download)
    return parser


def _terminate(signum, frame):
    # SIGTERM unwinds like Ctrl-C, so partial outputs are removed on the way out.
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    import signal
    import threading

    args = build_parser().parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    try:
        return args.run(args)
    except (ValueError, FileNotFoundError, ConnectionError, TypeError) as e:
        print(f"namelang: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("namelang: interrupted; no output was written", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 141


if __name__ == "__main__":
    sys.exit(main())

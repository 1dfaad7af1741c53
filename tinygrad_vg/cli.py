"""The `tinygrad-vg` command (also `python -m tinygrad_vg`).

    tinygrad-vg list                          the experiments and their options
    tinygrad-vg run EXPERIMENT [options] --out DIR
    tinygrad-vg report DIR                    one self-contained HTML page of DIR's results
    tinygrad-vg demo [--out DIR]              seed-figure + short depth and recurrent runs + report

Each experiment's options come from its function's keyword arguments: a list option
takes comma-separated values (`--kinds plain,residual --depths 5,50,500`).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from . import kernels

__all__ = ["main"]


def _parse_value(text: str, default: Any, name: str) -> Any:
    if isinstance(default, (list, tuple)):
        item_default = default[0] if default else ""
        return [_parse_value(t.strip(), item_default, name) for t in text.split(",") if t.strip()]
    kind = type(default)
    try:
        if kind is bool:
            if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return text.lower() in ("true", "1", "yes")
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--{name}: {text!r} is not a {kind.__name__}") from None
    return text


def _run_parser(sub: Any, name: str) -> None:
    from .lab import EXPERIMENTS, experiment_options
    doc = (EXPERIMENTS[name].__doc__ or "").strip()
    p = sub.add_parser(name, help=doc.splitlines()[0] if doc else name, description=doc)
    for option, default in experiment_options(name).items():
        flag = "--" + option.replace("_", "-")
        shown = ",".join(map(str, default)) if isinstance(default, (list, tuple)) else default
        p.add_argument(flag, dest=option, default=argparse.SUPPRESS, metavar=type(default).__name__.upper(),
                       type=lambda text, d=default, o=option: _parse_value(text, d, o),
                       help=f"default: {shown}")
    p.add_argument("--out", default="out", help="directory for the JSON and PNG files (default: out)")
    p.add_argument("--no-plot", action="store_true", help="write the JSON only")


def run_one(name: str, options: dict, out: Path, plot: bool = True, quiet: bool = False) -> Path:
    """Run an experiment, write NAME.json (exactly run_experiment's dict) and its PNGs, print a summary."""
    from .lab import run_experiment
    out.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    data = run_experiment(name, progress=True, **options)
    path = out / f"{name}.json"
    path.write_text(json.dumps(data, indent=1))
    files = [path]
    if plot and importlib.util.find_spec("matplotlib") is None:
        print("tinygrad-vg: matplotlib is not installed: the JSON is written, the plots are skipped "
              "(pip install matplotlib)", file=sys.stderr)
        plot = False
    if plot:
        from .lab.plots import plot as draw
        files += draw(data, out)
    if not quiet:
        from .lab.report import format_table, summary_rows
        headers, rows = summary_rows(data)
        print(f"\n{name}: {len(data['runs'])} runs in {time.monotonic() - start:.1f} s")
        print(format_table(headers, rows))
        for f in files:
            print(f"  wrote {f}")
    return path


DEMO_PLAN = [
    ("seed-figure", {}),
    ("depth", {"depths": [5, 10, 20, 50, 100, 200], "norms": ["none", "batch"]}),
    ("recurrent", {"T": 100}),
]


def demo(out: Path) -> None:
    from .lab.report import write_report
    print(f"tinygrad_vg demo (kernel backend: {kernels.BACKEND})")
    for name, options in DEMO_PLAN:
        run_one(name, options, out)
    page = write_report(out)
    print(f"\nreport: {page.resolve()}")
    print("The plain tanh net's gradient falls by several decades between its last and first layer;"
          " the residual net's does not (see seed_figure_grad_norms.png).")


def build_parser() -> argparse.ArgumentParser:
    from .lab import EXPERIMENTS
    parser = argparse.ArgumentParser(prog="tinygrad-vg", description="The vanishing-gradient lab of tinygrad_vg.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the experiments and their options")
    run = sub.add_parser("run", help="run one experiment and write JSON + PNG")
    run_sub = run.add_subparsers(dest="experiment", required=True, metavar="EXPERIMENT")
    for name in EXPERIMENTS:
        _run_parser(run_sub, name)
    report = sub.add_parser("report", help="write DIR/report.html from the JSON files in DIR")
    report.add_argument("directory")
    d = sub.add_parser("demo", help="the main job: seed figure, depth and recurrent runs, report")
    d.add_argument("--out", default="out")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in ("run", "demo") and kernels.compiled is None:
        why = (f" (installed with {kernels.NO_EXTENSIONS_SWITCH}=1)" if not kernels.EXTENSIONS else "")
        print(f"tinygrad-vg: the kernels are not compiled{why}: running on their numpy twins, "
              "slower", file=sys.stderr)
    try:
        if args.command == "list":
            from .lab import EXPERIMENTS, experiment_options
            for name in EXPERIMENTS:
                doc = (EXPERIMENTS[name].__doc__ or "").strip().splitlines()[0]
                print(f"{name:16s} {doc}")
                for option, default in experiment_options(name).items():
                    print(f"    --{option.replace('_', '-'):14s} {default}")
        elif args.command == "run":
            options = {k: v for k, v in vars(args).items() if k not in ("command", "experiment", "out", "no_plot")}
            run_one(args.experiment, options, Path(args.out), plot=not args.no_plot)
        elif args.command == "report":
            from .lab.report import write_report
            directory = Path(args.directory)
            if not directory.is_dir() or not list(directory.glob("*.json")):
                raise ValueError(f"{directory} holds no experiment JSON files; run `tinygrad-vg run ...` first")
            print(write_report(directory).resolve())
        elif args.command == "demo":
            demo(Path(args.out))
    except ValueError as e:
        print(f"tinygrad-vg: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tinygrad-vg: interrupted", file=sys.stderr)
        return 130
    return 0

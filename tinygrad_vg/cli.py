"""The `tinygrad-vg` command (also `python -m tinygrad_vg`).

    tinygrad-vg list                          the experiments and their options
    tinygrad-vg run EXPERIMENT [options] --out DIR
    tinygrad-vg report DIR                    one self-contained HTML page of DIR's results
    tinygrad-vg demo [--out DIR]              seed-figure + short depth and recurrent runs + report
    tinygrad-vg sweep SPEC.toml --out DIR     an experiment over a grid of options x seeds, on every
                                              core (--jobs N) or a Dask cluster (--scheduler, --dask-local)

Each experiment's options come from its function's keyword arguments: a list option
takes comma-separated values (`--kinds plain,residual --depths 5,50,500`).

Design: a run's work must survive its user. Every option is checked before any work
(lab.validate_options), and the sizes are priced (lab.estimate_cost) against the memory
this machine has available, so a run that cannot fit is refused with the numbers rather
than dying an hour in (--force runs it anyway). Every file is written atomically
(io.atomic_write). Each configuration's runs are kept in DIR/.tinygrad-vg-runs as soon
as they are done, so a run that is interrupted and started again computes only the rest.
Every error ends in one line on stderr and an exit code: 2 for a usage error (found
before any work), 1 for a failure (a file that cannot be written or read, a damaged
result, out of memory), 130 for Ctrl-C; --debug shows the traceback instead.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import re
import sys
import textwrap
import time
import traceback
from pathlib import Path
from typing import Any, Sequence

from . import kernels

__all__ = ["main", "EXIT_OK", "EXIT_FAILURE", "EXIT_USAGE", "EXIT_INTERRUPTED"]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_BROKEN_PIPE = 141   # 128 + SIGPIPE: what a shell reports for a reader that stopped early
RUNS_DIR = ".tinygrad-vg-runs"
PROG = "tinygrad-vg"


class UsageError(Exception):
    """A bad command line, found before any work: exit 2."""


class Failure(Exception):
    """The work could not be done (a file, a damaged result): exit 1."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: the usage block is what --help is for."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for action in self._actions:
            if action.dest == "help":
                action.help = "Show this help and exit."

    def error(self, message: str) -> None:   # type: ignore[override]
        raise UsageError(f"{message} (see `{self.prog} --help`)")


# ----- options as the user types them ------------------------------------------------------
_TYPE_WORDS = {int: "a whole number", float: "a number", str: "a name"}
_PLURALS = {int: "whole numbers", float: "numbers", str: "names"}
_METAVARS = {int: "N", float: "X", str: "NAME"}


def _typed(value: Any) -> str:
    """A default as the user would type it: 5,10,20 for a list, 0.01 for a float."""
    if isinstance(value, (list, tuple)):
        return ",".join(_typed(v) for v in value)
    return str(value)


def _parse_value(text: str, default: Any) -> Any:
    """One option's value from its text, by the type of its default (argparse prefixes an
    error with the option's name)."""
    if isinstance(default, (list, tuple)):
        kind = type(default[0]) if default else str
        values = [t.strip() for t in text.split(",")]
        rule = f"the option takes {_PLURALS[kind]} separated by commas, e.g. {_typed(default[:3])}"
        if any(v == "" for v in values) and text.strip():
            raise argparse.ArgumentTypeError(f"{text!r} has an empty item; {rule}")
        try:
            return [_parse_value(v, kind()) for v in values if v]
        except argparse.ArgumentTypeError as e:
            within = f" in {text!r}" if len(values) > 1 else ""
            raise argparse.ArgumentTypeError(f"{e}{within}; {rule}") from None
    kind = type(default)
    try:
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {_TYPE_WORDS[kind]}") from None
    return text


def _parse_seeds(text: str) -> Any:
    """--seeds 10 (a count) or --seeds 0,3,7 (seed indices)."""
    rule = "--seeds takes a count (10) or seed indices separated by commas (0,3,7)"
    try:
        if "," in text:
            return [int(t) for t in text.split(",")]
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a count or a list of seed indices; {rule}") from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return value


def _option_help(name: str, default: Any) -> str:
    from .lab import OPTIONS
    # argparse %-formats help texts
    return f"{OPTIONS[name].help} (default: {_typed(default)})".replace("%", "%%")


def _description(name: str) -> str:
    from .lab import EXPERIMENTS
    return " ".join((EXPERIMENTS[name].__doc__ or "").split())


def _first_sentence(text: str) -> str:
    end = text.find(". ")
    return text if end < 0 else text[:end + 1]


def _run_parser(sub: Any, name: str) -> None:
    from .lab import experiment_options
    description = _description(name)
    p = sub.add_parser(name, help=_first_sentence(description), description=description)
    for option, default in experiment_options(name).items():
        flag = "--" + option.replace("_", "-")
        item = default[0] if isinstance(default, (list, tuple)) else default
        metavar = _METAVARS[type(item)] + (",..." if isinstance(default, (list, tuple)) else "")
        parse = _parse_seeds if option == "seeds" else (lambda text, d=default: _parse_value(text, d))
        p.add_argument(flag, dest=option, default=argparse.SUPPRESS, metavar="N|I,J,..." if option == "seeds" else metavar,
                       type=parse, help=_option_help(option, default))
    _output_options(p)
    p.add_argument("--no-plot", action="store_true", help="Write the JSON file only, without figures.")
    p.add_argument("--fresh", action="store_true",
                   help=f"Compute every configuration again, even those kept in DIR/{RUNS_DIR} by an "
                        "earlier run with the same options.")


def _output_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="out", metavar="DIR",
                   help="The directory for the JSON and PNG files; it is created if missing (default: out).")
    p.add_argument("--force", action="store_true",
                   help="Run even when the estimated memory is more than this machine has available.")


def build_parser() -> argparse.ArgumentParser:
    from .lab import EXPERIMENTS
    parser = _Parser(prog=PROG, description="The vanishing-gradient lab of tinygrad_vg: run experiments, "
                                            "write their results as JSON and PNG files, and report them as "
                                            "one HTML page.",
                     epilog="Exit codes: 0 done, 1 failure, 2 usage error, 130 interrupted.")
    parser.add_argument("--debug", action="store_true",
                        help="Show the full traceback of an error instead of one line.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("list", help="List the experiments, what each shows, and their options with defaults.",
                   description="List the experiments, what each shows, and their options with defaults.")
    run = sub.add_parser("run", help="Run one experiment and write its JSON and PNG files.",
                         description="Run one experiment and write its JSON and PNG files.")
    run_sub = run.add_subparsers(dest="experiment", required=True, metavar="EXPERIMENT")
    for name in EXPERIMENTS:
        _run_parser(run_sub, name)
    report = sub.add_parser("report", help="Write DIR/report.html from the experiment results in DIR.",
                            description="Write DIR/report.html, one self-contained page with the figures, "
                                        "tables and conclusions of every experiment result (*.json) in DIR.")
    report.add_argument("directory", metavar="DIR",
                        help="The directory that `tinygrad-vg run --out DIR` wrote the results to.")
    report.add_argument("--skip-bad", action="store_true",
                        help="Leave damaged result files out of the report (each is named) instead of "
                             "stopping with an error.")
    demo_parser = sub.add_parser("demo", help="Run the seed figure, short depth and recurrent runs, and the report.",
                                 description="Run the seed figure, a depth sweep to 200 layers with and without "
                                             "batch norm, and 100 steps of recurrent cells, then write the report.")
    _output_options(demo_parser)
    sweep = sub.add_parser("sweep", help="Run an experiment over a grid of options and seeds, in parallel, from "
                                         "a TOML file.",
                           description="Run an experiment over every combination of the option values a TOML "
                                       "file lists, times its seeds, in parallel on this machine or on a Dask "
                                       "cluster; write DIR/runs.csv and runs.jsonl (one row per run), "
                                       "DIR/sweep.json (provenance, mean, sd, min, max and 95%% interval per "
                                       "configuration) and summary plots. Started again, it computes only the "
                                       "points missing from DIR.")
    sweep.add_argument("spec", metavar="SPEC.toml", help="The sweep's TOML file (see sweeps/depth-by-init.toml).")
    sweep.add_argument("--out", default="sweep-out", metavar="DIR",
                       help="The directory for the tables and plots; created if missing (default: sweep-out).")
    sweep.add_argument("--jobs", type=_positive_int, default=None, metavar="N",
                       help="Worker processes on this machine (default: all cores); each uses one BLAS thread.")
    where = sweep.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                       help="Run the points on the Dask cluster of this scheduler (needs tinygrad_vg[cluster]).")
    where.add_argument("--dask-local", type=_positive_int, metavar="N",
                       help="Start a Dask LocalCluster of N worker processes on this machine and run on it.")
    sweep.add_argument("--no-plot", action="store_true", help="Write the tables only, without plots.")
    sweep.add_argument("--fresh", action="store_true",
                       help="Compute every point again, even those an earlier run left in DIR.")
    return parser


# ----- sizes and files -----------------------------------------------------------------------
def _size_text(nbytes: float) -> str:
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes:.0f} bytes"


def _time_text(seconds: float) -> str:
    if seconds < 60:
        return f"{max(seconds, 1):.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400 * 3:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"


def available_memory() -> int:
    """Bytes this run may use: TINYGRAD_VG_MEMORY_LIMIT if set (bytes, or with a K, M or G
    suffix), else the kernel's MemAvailable, else the physical memory."""
    limit = os.environ.get("TINYGRAD_VG_MEMORY_LIMIT", "").strip()
    if limit:
        scale = {"K": 2**10, "M": 2**20, "G": 2**30}.get(limit[-1].upper(), 1)
        try:
            return int(float(limit[:-1] if scale > 1 else limit) * scale)
        except ValueError:
            raise UsageError(f"TINYGRAD_VG_MEMORY_LIMIT={limit!r} is not a size such as 4G or 512M") from None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 2**62   # unknown: refuse nothing


def _sizes(options: dict) -> str:
    parts = []
    for key in ("depths", "depth", "T", "width", "hidden", "batch", "steps"):
        if key in options:
            value = options[key]
            parts.append(f"depth {max(value)}" if key == "depths" else f"{key} {value}")
    return ", ".join(parts)


def _price(name: str, options: dict, force: bool) -> str:
    """Check the options and the memory they need; the line to print before the work."""
    from .lab import estimate_cost, validate_options
    try:
        full = validate_options(name, options)
        need, seconds = estimate_cost(name, options)
    except ValueError as e:
        raise UsageError(f"run {name}: {e}") from None
    have = available_memory()
    if need > have and not force:
        raise UsageError(f"run {name} needs about {_size_text(need)} of memory ({_sizes(full)}), more than the "
                         f"{_size_text(have)} available; choose smaller sizes, or pass --force to try anyway")
    return f"{name}: about {_size_text(need)} of memory and {_time_text(seconds)}"


def _make_directory(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise Failure(f"cannot create the output directory {out}: {e.strerror or e}") from None
    if not os.access(out, os.W_OK):
        raise Failure(f"cannot write to the output directory {out}: permission denied")


def _write_failure(e: OSError, fallback: Path) -> Failure:
    path = Path(e.filename) if e.filename else fallback
    kept = " (the previous file is unchanged)" if path.is_file() else ""
    return Failure(f"cannot write {path}: {e.strerror or e}{kept}")


def run_one(name: str, options: dict, out: Path, plot: bool = True, quiet: bool = False,
            force: bool = False, fresh: bool = False) -> Path:
    """Run an experiment, write NAME.json (exactly run_experiment's dict) and its PNGs, print a summary."""
    import json

    from .io import atomic_write
    from .lab import ResultStore, run_experiment
    priced = _price(name, options, force)
    _make_directory(out)
    store = ResultStore(out / RUNS_DIR, reuse=not fresh)
    print(f"{priced}; results go to {out}", flush=True)
    start = time.monotonic()
    data = run_experiment(name, progress=True, store=store, **options)
    path = out / f"{name}.json"
    try:
        with atomic_write(path, "w", encoding="utf-8") as f:
            f.write(json.dumps(data, indent=1))
    except OSError as e:
        raise _write_failure(e, path) from None
    files = [path]
    if plot and importlib.util.find_spec("matplotlib") is None:
        print("tinygrad-vg: matplotlib is not installed: the JSON is written, the plots are skipped "
              "(pip install matplotlib)", file=sys.stderr)
        plot = False
    if plot:
        try:
            from .lab.plots import plot as draw
            files += draw(data, out)
        except ImportError as e:
            raise Failure(f"{path} was written, but the figures were not: {e}; pass --no-plot to write the "
                          "JSON only") from None
        except OSError as e:
            raise _write_failure(e, out) from None
    if not quiet:
        from .lab.report import format_table, summary_rows
        headers, rows = summary_rows(data)
        reused = f", {store.reused} of {store.reused + store.computed} configurations kept from an earlier run" \
            if store.reused else ""
        print(f"\n{name}: {len(data['runs'])} runs in {time.monotonic() - start:.1f} s{reused}")
        print(format_table(headers, rows))
        for f in files:
            print(f"  wrote {f}")
    return path


def sweep_command(args: argparse.Namespace) -> None:
    """`tinygrad-vg sweep`: check the spec, connect where asked, run, print the table."""
    from .lab.report import format_table
    from .lab.sweep import (ClusterUnavailable, SweepError, close_client, dask_client, expand, load_spec,
                            run_sweep, summary_table)
    try:
        spec = load_spec(args.spec)
    except SweepError as e:
        raise UsageError(f"sweep: {e}") from None
    out = Path(args.out)
    _make_directory(out)
    client = None
    if args.scheduler or args.dask_local:
        if args.jobs:
            raise UsageError("sweep: --jobs is for this machine's processes; on Dask the cluster's workers run the "
                             "points (--dask-local N sets how many)")
        if args.scheduler and not re.fullmatch(r"([a-z]+://)?[^:/\s]+:\d+", args.scheduler):
            raise UsageError(f"sweep: --scheduler {args.scheduler!r} is not a scheduler address; give one such as "
                             "tcp://HOST:8786")
        try:
            timeout = float(os.environ.get("TINYGRAD_VG_DASK_TIMEOUT", "10"))
        except ValueError:
            raise UsageError("TINYGRAD_VG_DASK_TIMEOUT must be a number of seconds") from None
        try:
            client = dask_client(args.scheduler, args.dask_local, timeout=timeout)
        except ClusterUnavailable as e:
            missing = "needs dask" in str(e)
            raise (UsageError if missing else Failure)(f"sweep: {e}") from None
    try:
        points = len(expand(spec))
        where = (f"the Dask cluster at {args.scheduler}" if args.scheduler else
                 f"a Dask LocalCluster of {args.dask_local} workers" if client is not None else
                 f"{args.jobs or os.cpu_count() or 1} local processes")
        print(f"sweep {spec.experiment}: {points} points ({points // len(spec.seeds)} configurations x "
              f"{len(spec.seeds)} seeds) on {where}; results go to {out}", flush=True)
        result = run_sweep(spec, out, jobs=args.jobs, client=client, fresh=args.fresh, plot=not args.no_plot,
                           progress=True)
    except OSError as e:
        raise _write_failure(e, out) from None
    finally:
        if client is not None:
            close_client(client)
    kept = f", {result.reused} kept from an earlier run" if result.reused else ""
    print(f"\nsweep {spec.experiment}: {len(result.rows)} runs, {result.computed} points computed in "
          f"{result.seconds:.1f} s{kept}")
    print(format_table(*summary_table(result.summaries, spec)))
    for f in result.files:
        print(f"  wrote {f}")
    if result.failed:
        first = next(r for r in result.rows if r.get("status") != "ok")
        raise Failure(f"{result.failed} of {len(result.rows)} runs failed (first: {first.get('error')}); the other "
                      f"runs are written, the tracebacks are in {out / 'runs.jsonl'}, and the same command runs "
                      "the failed points again")


# A few seeds each, so that every number the demo prints carries its spread (mean +- sd (n)).
DEMO_PLAN = [
    ("seed-figure", {"seeds": 3}),
    ("depth", {"depths": [5, 10, 20, 50, 100, 200], "norms": ["none", "batch"], "seeds": 3}),
    ("recurrent", {"T": 100, "seeds": 3}),
]


def demo(out: Path, force: bool = False) -> None:
    print(f"tinygrad_vg demo (kernel backend: {kernels.BACKEND})")
    for name, options in DEMO_PLAN:
        _price(name, options, force)
    for name, options in DEMO_PLAN:
        run_one(name, options, out, force=force)
    page = _report(out, skip_bad=False)
    print(f"\nreport: {page.resolve()}")
    print("The plain tanh net's gradient falls by several decades between its last and first layer;"
          " the residual net's does not (see seed_figure_grad_norms.png).")


def _report(directory: Path, skip_bad: bool) -> Path:
    from .lab.report import DamagedResults, NoResults, write_report
    if not directory.exists():
        raise UsageError(f"report: no such directory: {directory}")
    if not directory.is_dir():
        raise UsageError(f"report: {directory} is a file, not a directory of results")
    def name(file: str, why: str) -> None:
        print(f"{PROG}: skipped {file}: {why}", file=sys.stderr)
    try:
        return write_report(directory, skip_bad=skip_bad, on_skip=name)
    except DamagedResults as e:
        raise Failure(f"{e}; the report was not written: repair or remove the file, or pass --skip-bad "
                      "to leave it out") from None
    except NoResults as e:
        raise UsageError(str(e)) from None
    except OSError as e:
        raise _write_failure(e, directory / "report.html") from None


def _list() -> None:
    from .lab import EXPERIMENTS, OPTIONS, experiment_options
    wrap = textwrap.TextWrapper(width=96, initial_indent="    ", subsequent_indent="    ")
    for name in EXPERIMENTS:
        print(name)
        print(wrap.fill(_description(name)))
        for option, default in experiment_options(name).items():
            print(f"      --{option.replace('_', '-')} (default: {_typed(default)})")
            print(textwrap.fill(OPTIONS[option].help, width=96, initial_indent="          ",
                                subsequent_indent="          "))
        print()


# ----- the entry point ---------------------------------------------------------------------
def _dispatch(args: argparse.Namespace) -> None:
    if args.command == "list":
        _list()
    elif args.command == "run":
        from .lab import experiment_options
        names = experiment_options(args.experiment)
        options = {k: v for k, v in vars(args).items() if k in names}
        run_one(args.experiment, options, Path(args.out), plot=not args.no_plot, force=args.force,
                fresh=args.fresh)
    elif args.command == "report":
        print(_report(Path(args.directory), args.skip_bad).resolve())
    elif args.command == "demo":
        demo(Path(args.out), force=args.force)
    elif args.command == "sweep":
        sweep_command(args)


def _error(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv   # accepted anywhere on the line, not only before the command
    argv = [a for a in argv if a != "--debug"]
    try:
        try:
            parser = build_parser()
            args, extra = parser.parse_known_args(argv)
            if extra:   # named by the command's own parser, whose --help lists what it takes
                where = " ".join(filter(None, [PROG, args.command, getattr(args, "experiment", None)]))
                raise UsageError(f"unrecognized arguments: {' '.join(extra)} (see `{where} --help`)")
            if args.command in ("run", "demo", "sweep") and kernels.compiled is None:
                why = f" (installed with {kernels.NO_EXTENSIONS_SWITCH}=1)" if not kernels.EXTENSIONS else ""
                print(f"{PROG}: the kernels are not compiled{why}: running on their numpy twins, "
                      "slower", file=sys.stderr)
            _dispatch(args)
            sys.stdout.flush()
        except SystemExit as e:   # --help
            return e.code if isinstance(e.code, int) else EXIT_OK
        return EXIT_OK
    except BrokenPipeError:
        # the reader stopped early (`tinygrad-vg list | head -2`): nothing to say to anyone;
        # stdout goes to devnull so that the interpreter's final flush does not fail again
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return EXIT_BROKEN_PIPE
    except BaseException as e:
        if "tinygrad_vg.lab.progress" in sys.modules:   # a progress bar's line is ended first
            sys.modules["tinygrad_vg.lab.progress"].end_line()
        if debug:
            traceback.print_exc()
        if isinstance(e, UsageError):
            _error(str(e))
            return EXIT_USAGE
        if isinstance(e, Failure):
            _error(str(e))
            return EXIT_FAILURE
        if isinstance(e, KeyboardInterrupt):
            command = next((a for a in argv if not a.startswith("-")), "")
            resume = ("; the configurations already finished are kept, and the same command resumes "
                      "after them") if command in ("run", "demo", "sweep") else ""
            print(f"{PROG}: interrupted{resume}", file=sys.stderr)
            return EXIT_INTERRUPTED
        if isinstance(e, MemoryError):
            _error("out of memory; choose smaller sizes (the estimate printed at the start is rough)")
            return EXIT_FAILURE
        if isinstance(e, OSError):
            where = f" {e.filename}" if e.filename else ""
            _error(f"cannot access{where}: {e.strerror or e}")
            return EXIT_FAILURE
        if not isinstance(e, Exception):
            raise
        _error(f"internal error: {type(e).__name__}: {e} (run again with --debug for the traceback)")
        return EXIT_FAILURE

"""Makes docs/img/arch_seed_figure.png, arch_depth.png and narx.png (docs/architectures.md) and
prints the numbers the page quotes: each experiment at its defaults over 5 seed indices; the
figures draw seed index 0 (what `run_arch_experiment(name)` returns), the numbers are the mean
and standard deviation over the 5.  Run from the repository root:

    python docs/img/architectures.py [directory for the JSON]
"""
import json
import sys
from pathlib import Path

import numpy as np

from tinygrad_vg.lab.architectures import run_arch_experiment
from tinygrad_vg.lab.plots_arch import plot_arch

HERE = Path(__file__).resolve().parent


def spread(values, digits=2):
    values = [v for v in values if v is not None]
    if len(values) < 2:
        return "-" if not values else f"{values[0]:+.{digits}f}"
    return f"{np.mean(values):+.{digits}f} ± {np.std(values, ddof=1):.{digits}f} (n={len(values)})"


def main(json_dir=None):
    for name in ("arch-seed-figure", "arch-depth", "narx"):
        path = Path(json_dir) / f"{name}.json" if json_dir else None
        data = json.loads(path.read_text()) if path and path.exists() else run_arch_experiment(name, seeds=5)
        if path and not path.exists():
            path.write_text(json.dumps(data))
        plot_arch(data, HERE)
        runs = data["runs"]
        print(f"== {name}")
        if name == "arch-seed-figure":
            for variant in dict.fromkeys(r["variant"] for r in runs):
                for phase in ("init", "trained"):
                    mine = [r for r in runs if r["variant"] == variant and r["phase"] == phase]
                    print(f"{variant:16s} {phase:8s} log10 ratio {spread([r['log10_ratio_h'] for r in mine])}"
                          f"  loss {spread([r['loss'] for r in mine])}")
        elif name == "arch-depth":
            for variant in dict.fromkeys(r["variant"] for r in runs):
                for depth in dict.fromkeys(r["depth"] for r in runs):
                    mine = [r["log10_ratio_h"] for r in runs if r["variant"] == variant and r["depth"] == depth]
                    print(f"{variant:16s} depth {depth:4d} log10 ratio {spread(mine)}")
        else:
            keys = dict.fromkeys((r["cell"], r["delay"], r["narx_init"], r["gate_bias"]) for r in runs)
            for key in keys:
                mine = [r for r in runs if (r["cell"], r["delay"], r["narx_init"], r["gate_bias"]) == key]
                print(f"{key}: decades lost over T {spread([r['log10_ratio_h'] for r in mine])}, slope "
                      f"{spread([r['log10_slope'] for r in mine], 3)}, predicted "
                      f"{spread([r['prediction']['log10_slope'] for r in mine], 3)}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)

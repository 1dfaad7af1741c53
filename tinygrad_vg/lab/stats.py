"""Statistics over seeds: what every number the lab states carries with it.

A configuration run with n seeds gives n values of each statistic (log10_ratio_h, the loss,
a fitted slope, ...). `describe` reduces them to n, mean, standard deviation (n - 1 in the
denominator), min, median, max and a 95% interval of the mean (Student's t, n - 1 degrees of
freedom); a value that could not be measured (None: a norm underflowed to 0) is counted in
`missing`, not averaged. `summarise` groups a list of runs by configuration (every scalar
field except the seed index and the statistics themselves) and describes each statistic.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

__all__ = ["STATISTICS", "describe", "summarise", "configuration", "mean_sd_text"]

# The scalar measurements the lab summarises over seeds, where a run has them.
STATISTICS = ("log10_ratio_h", "log10_slope", "log10_gain_per_layer", "loss")
# Scalar fields that vary between seeds of one configuration without being one of it.
PER_SEED = ("seed_index",)


def _t975(dof: int) -> float:
    """The 97.5% quantile of Student's t with `dof` degrees of freedom (scipy, loaded lazily)."""
    from scipy.stats import t
    return float(t.ppf(0.975, dof))


def describe(values: Iterable[Any]) -> dict:
    """n, missing, mean, sd, min, median, max and ci95 (the 95% t-interval of the mean) of the
    finite numbers among `values`; sd and ci95 are None below two values, everything is None
    with none."""
    finite, missing = [], 0
    for v in values:
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            finite.append(float(v))
        else:
            missing += 1
    n = len(finite)
    out: dict[str, Any] = {"n": n, "missing": missing, "mean": None, "sd": None, "min": None, "median": None,
                           "max": None, "ci95": None}
    if not n:
        return out
    ordered = sorted(finite)
    mean = math.fsum(finite) / n
    middle = n // 2
    out.update(mean=mean, min=ordered[0], max=ordered[-1],
               median=ordered[middle] if n % 2 else (ordered[middle - 1] + ordered[middle]) / 2)
    if n > 1:
        sd = math.sqrt(math.fsum((v - mean) ** 2 for v in finite) / (n - 1))
        half = _t975(n - 1) * sd / math.sqrt(n)
        out.update(sd=sd, ci95=[mean - half, mean + half])
    return out


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def configuration(run: dict, statistics: Sequence[str] = STATISTICS) -> dict:
    """The fields of a run that name its configuration: every scalar except the per-seed fields
    and the statistics."""
    return {k: v for k, v in run.items() if _scalar(v) and k not in statistics and k not in PER_SEED}


def summarise(runs: Sequence[dict], statistics: Sequence[str] = STATISTICS) -> list[dict]:
    """One entry per configuration, in the order of first appearance:
    {**configuration, "seeds": [seed indices], "stats": {statistic: describe(...)}} for the
    statistics any of its runs has."""
    groups: dict[str, tuple[dict, list[dict]]] = {}
    for run in runs:
        config = configuration(run, statistics)
        key = repr(sorted(config.items(), key=lambda item: item[0]))
        groups.setdefault(key, (config, []))[1].append(run)
    out = []
    for config, members in groups.values():
        present = [s for s in statistics if any(s in r for r in members)]
        out.append({**config, "seeds": [r.get("seed_index") for r in members],
                    "stats": {s: describe(r.get(s) for r in members) for s in present}})
    return out


def mean_sd_text(stats: dict, digits: int = 2, signed: bool = True) -> str:
    """'-4.87 +- 0.31 (10)': mean, standard deviation and how many seeds measured it (with
    '+ k missing' when k runs could not be measured); '-' when none could."""
    if not stats or stats.get("mean") is None:
        return "-" if not stats or not stats.get("missing") else f"- ({stats['missing']} missing)"
    big = abs(stats["mean"]) >= 1e4 or (stats.get("sd") or 0) >= 1e4
    sd = "n/a" if stats.get("sd") is None else f"{stats['sd']:.{digits + 1}g}" if big else f"{stats['sd']:.{digits}f}"
    sign = "+" if signed else ""
    mean = f"{stats['mean']:{sign}.{digits + 1}g}" if big else f"{stats['mean']:{sign}.{digits}f}"
    missing = f", {stats['missing']} missing" if stats.get("missing") else ""
    return f"{mean} +- {sd} ({stats['n']}{missing})"

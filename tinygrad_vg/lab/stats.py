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

import numpy as np

__all__ = ["STATISTICS", "describe", "summarise", "configuration", "mean_sd_text", "collapse_seeds"]

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


# Per-sample arrays (one input's activations and gradients): a median over seeds, which drew
# different inputs, would describe no input, so a collapsed run keeps its first seed's.
PER_SAMPLE = ("activations", "grad_h")
# Fields whose spread over seeds the figures draw as a band: FIELD_min and FIELD_max.
BAND_FIELDS = ("grad_h_norm", "mean_update_ratio", "log10_ratio_h")


def _numbers(values: Sequence[Any]) -> np.ndarray | None:
    """The values as a float array (None -> NaN), or None if they are not all numbers or lists
    of numbers of one shape."""
    try:
        arr = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return arr


def collapse_seeds(runs: Sequence[dict]) -> list[dict]:
    """One run per configuration (stats.configuration), in order of first appearance, for the
    figures: each numeric field (a scalar or a list, elementwise) is the median over the seeds
    that measured it (None where none did); the BAND_FIELDS also get FIELD_min and FIELD_max;
    "n_seeds" says how many runs went in; PER_SAMPLE fields are the first seed's. A
    configuration run with one seed is returned unchanged but for n_seeds = 1."""
    groups: dict[str, list[dict]] = {}
    for run in runs:
        key = repr(sorted(configuration(run).items(), key=lambda item: item[0]))
        groups.setdefault(key, []).append(run)
    out = []
    for members in groups.values():
        first = members[0]
        merged = {**first, "n_seeds": len(members)}
        if len(members) > 1:
            config = configuration(first)
            for name, value in first.items():
                if name in config or name in PER_SAMPLE or name in PER_SEED or isinstance(value, (str, bool)):
                    continue
                arr = _numbers([m.get(name) for m in members])
                if arr is None or arr.ndim < 1:
                    continue
                import warnings
                with warnings.catch_warnings():   # an all-NaN column (no seed measured it) gives NaN: None
                    warnings.simplefilter("ignore", RuntimeWarning)
                    merged[name] = _to_python(np.nanmedian(arr, axis=0))
                    if name in BAND_FIELDS:
                        merged[name + "_min"] = _to_python(np.nanmin(arr, axis=0))
                        merged[name + "_max"] = _to_python(np.nanmax(arr, axis=0))
            merged["seed_index"] = [m.get("seed_index") for m in members]
        out.append(merged)
    return out


def _to_python(arr: np.ndarray) -> Any:
    if arr.ndim == 0:
        return None if np.isnan(arr) else float(arr)
    return [_to_python(a) for a in arr]

"""Provenance: what produced a result file, so that a number read later can be traced.

Every result file of the lab (an experiment's JSON, a sweep's sweep.json) carries
`provenance(options, seeds, wall_time)`: the package version, the git commit (and whether the
tree had changes) when run from a checkout, the kernel backend, numpy's version and BLAS,
Python, the machine (OS, CPU model, core count, host name), the options and seeds, the wall
time and when it ran (UTC).
"""
from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["provenance", "git_commit", "blas_info", "cpu_model"]


def git_commit(path: str | os.PathLike | None = None) -> dict | None:
    """{"commit": sha, "dirty": bool} of the checkout the package runs from, None outside one
    (an installed wheel) or without git."""
    root = Path(path) if path else Path(__file__).resolve().parent.parent.parent
    if not (root / ".git").exists():
        return None
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": sha, "dirty": bool(status.strip())}


def blas_info() -> list[dict]:
    """The BLAS libraries numpy (and scipy) loaded, with versions and thread counts (threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return [{k: info.get(k) for k in ("internal_api", "version", "num_threads", "threading_layer", "architecture")}
            for info in threadpool_info() if info.get("user_api") == "blas"]


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def provenance(options: dict | None = None, seeds: Any = None, wall_time: float | None = None) -> dict:
    from .. import __version__, kernels
    return {
        "package": "tinygrad_vg", "version": __version__, "git": git_commit(),
        "kernel_backend": kernels.BACKEND,
        "python": sys.version.split()[0], "numpy": np.__version__, "blas": blas_info(),
        "machine": {"platform": platform.platform(), "cpu": cpu_model(), "cores": os.cpu_count(),
                    "host": platform.node()},
        "options": options, "seeds": seeds, "wall_time_s": wall_time,
        "finished_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }

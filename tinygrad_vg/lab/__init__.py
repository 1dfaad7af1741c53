"""The vanishing-gradient lab: probes that record per-layer activations and gradients,
the seeds' experiments as seeded functions returning data (every configuration over several
seeds, with summaries and provenance), their pictures, and sweeps over grids of options on
every core or a Dask cluster (lab.sweep)."""
from .experiments import (EXPERIMENTS, OPTIONS, ResultStore, estimate_cost, experiment_options, measure_deep_net,
                          run_experiment, seed_indices, seed_streams, validate_options)
from .monitor import GradFlowMonitor
from .probes import Probe, fit_log10_slope, layer_summary, log10_ratio

__all__ = ["EXPERIMENTS", "OPTIONS", "ResultStore", "estimate_cost", "validate_options", "experiment_options",
           "measure_deep_net", "run_experiment", "seed_indices", "seed_streams", "Probe", "GradFlowMonitor", "fit_log10_slope",
           "layer_summary", "log10_ratio"]

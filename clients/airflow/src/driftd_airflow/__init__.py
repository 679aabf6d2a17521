"""Airflow integration for driftd: push a pipeline step's data profile and counters.

`DriftdHook` talks to driftd's HTTP API (counters, profiles); `DriftdPushOperator` runs
`driftd push`, which profiles a file locally and uploads the profile and the counters in one step,
so the counters a training pipeline reports carry the same names as those its model server reports
online.
"""

__all__ = ["DriftdError", "DriftdHook", "DriftdPushOperator", "get_provider_info"]
__version__ = "0.1.0"

_LAZY = {
    "DriftdError": "driftd_airflow.hook",
    "DriftdHook": "driftd_airflow.hook",
    "DriftdPushOperator": "driftd_airflow.operator",
}


def __getattr__(name):
    # Airflow's provider discovery imports this package while Airflow itself is still loading
    # (for get_provider_info): the hook and operator, which import Airflow, load on first use.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'driftd_airflow' has no attribute {name!r}")


def get_provider_info():
    """What Airflow's provider manager shows for this package (connection type `driftd`)."""
    return {
        "package-name": "driftd-airflow",
        "name": "driftd",
        "description": "Push data profiles and pipeline counters to driftd.",
        "versions": [__version__],
        "connection-types": [
            {"connection-type": "driftd", "hook-class-name": "driftd_airflow.hook.DriftdHook"}
        ],
    }

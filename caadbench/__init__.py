"""caadbench: a benchmark and dataset toolkit for contextual anomaly detection.

``caadbench.predict(images, model=...)`` scores your own images and ``caadbench.calibrate(normal_images, ...)``
makes a threshold from normal ones (see :mod:`caadbench.infer`); ``caadbench.results_frame(path_or_dir, by=None)``
loads results files as a pandas DataFrame (``results_rows``: the same as plain dicts; see
:mod:`caadbench.eval.flatten`). All are imported on first use, so
``import caadbench`` stays light.
"""

import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())  # the CLI (or the application) attaches handlers

_LAZY = {"predict": "caadbench.infer", "calibrate": "caadbench.infer", "results_frame": "caadbench.eval.flatten",
         "results_rows": "caadbench.eval.flatten"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'caadbench' has no attribute {name!r}")

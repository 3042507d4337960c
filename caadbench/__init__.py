"""caadbench: a benchmark and dataset toolkit for contextual anomaly detection."""

__version__ = "0.1.0"

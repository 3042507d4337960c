"""Data layer: sample schema, sources, splits, WebDataset shards and the streaming batch reader."""

from caadbench.data.batch import Batch
from caadbench.data.sample import Sample, validate_key

__all__ = ["Batch", "Sample", "validate_key"]

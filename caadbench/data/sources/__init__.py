"""Built-in sources. Importing this package registers every one of them."""

from caadbench.data.sources.base import SampleSpec, Source, get_source_class, register_source, source_names
from caadbench.data.sources import caad, folder, mvtec, visa  # noqa: F401  (file-based sources)
from caadbench.data.sources import synthetic  # noqa: F401  (the embedded generator)

__all__ = ["SampleSpec", "Source", "get_source_class", "register_source", "source_names"]

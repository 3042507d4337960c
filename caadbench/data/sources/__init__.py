"""Built-in sources. Importing this package registers every one of them."""

from caadbench.data.sources.base import SampleSpec, Source, get_source_class, register_source, source_names
from caadbench.data.sources import caad, folder, mvtec, visa  # noqa: F401  (file-based sources)
from caadbench.data.sources import composite, synthetic  # noqa: F401  (the generator and user assets)

__all__ = ["SampleSpec", "Source", "get_source_class", "register_source", "source_names"]

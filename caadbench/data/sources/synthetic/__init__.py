"""The embedded procedural generator: rulebook, subjects, contexts and the ``synthetic`` source."""

from caadbench.data.sources.synthetic.source import BUILTIN_RULEBOOK, DEFAULT_SIZE, SyntheticSource, draw_scene

__all__ = ["BUILTIN_RULEBOOK", "DEFAULT_SIZE", "SyntheticSource", "draw_scene"]

"""Baseline methods (CLIP, WinCLIP), registered through ``caadbench.models``'s public registry."""

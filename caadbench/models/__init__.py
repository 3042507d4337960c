"""Models: the interface and registry, the one open_clip backbone adapter, and CoRe-CLIP."""

from caadbench.models.backbone import BackboneIdentity, ClipBackbone, ImageTokens
from caadbench.models.base import AnomalyModel, AnomalyOutput, FitData, Learning, ModelConfig
from caadbench.models.registry import Variant, create_model, get_model_spec, list_models, register_model

__all__ = [
    "AnomalyModel",
    "AnomalyOutput",
    "BackboneIdentity",
    "ClipBackbone",
    "FitData",
    "ImageTokens",
    "Learning",
    "ModelConfig",
    "Variant",
    "create_model",
    "get_model_spec",
    "list_models",
    "register_model",
]

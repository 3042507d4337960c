"""The public surface for method implementations: everything ``baselines/`` (and a third-party method package)
may import from caadbench, and nothing else.

A method subclasses :class:`AnomalyModel` with a :class:`ModelConfig`, reads images through :class:`ClipBackbone`,
learns from :class:`FitData` (a single-stage trained method through :class:`SingleStageTrainer`), returns
:class:`AnomalyOutput` for a :class:`Batch` and registers its variants with :func:`register_model`. The rest of caadbench (data layout, evaluation, CLI) may change without notice to methods;
``tests/test_api.py`` checks that ``baselines/`` imports only this module (and its own package).
"""

from caadbench.data.batch import Batch
from caadbench.errors import ModelError
from caadbench.models.backbone import BackboneIdentity, ClipBackbone, ImageTokens
from caadbench.models.base import AnomalyModel, AnomalyOutput, FitData, Learning, ModelConfig, TrainedModelConfig
from caadbench.models.prompts import class_prototypes, get_prompt_set
from caadbench.models.text_cache import frozen_prototypes
from caadbench.models.registry import Variant, register_model
from caadbench.models.training import SingleStageTrainer
from caadbench.utils.progress import progress

__all__ = [
    "AnomalyModel",
    "AnomalyOutput",
    "BackboneIdentity",
    "Batch",
    "ClipBackbone",
    "FitData",
    "ImageTokens",
    "Learning",
    "ModelConfig",
    "TrainedModelConfig",
    "ModelError",
    "SingleStageTrainer",
    "Variant",
    "class_prototypes",
    "frozen_prototypes",
    "get_prompt_set",
    "progress",
    "register_model",
]

"""APRIL-GAN (Chen et al., VAND 2023 challenge, arXiv 2305.17382) and its ablations, registered as ``aprilgan`` and
``aprilgan.<variant>`` (``docs/aprilgan.md``)."""

from caadbench.baselines.aprilgan.model import AprilGan, AprilGanConfig
from caadbench.baselines.trained import PAPER_BACKBONE, PAPER_IMAGE_SIZE, PAPER_PRETRAINED
from caadbench.models.api import Learning, Variant, register_model

TRAINED = Learning.TRAINED

VARIANTS: dict[str, Variant] = {
    "default": Variant(TRAINED, {}, "APRIL-GAN: linear maps of 4 blocks' patch tokens into the text space, focal + "
                                    "dice (Chen et al. 2023)"),
    "last_layer": Variant(TRAINED, {"feature_layers": [-1]}, "ablation: the last block's patch tokens only"),
    "no_focal": Variant(TRAINED, {"w_focal": 0.0}, "ablation: Dice loss only"),
    "no_dice": Variant(TRAINED, {"w_dice": 0.0}, "ablation: focal loss only"),
    "map_score": Variant(TRAINED, {"image_score": "map"},
                         "image score = max of the trained map instead of frozen CLIP (our addition)"),
}

register_model("aprilgan", VARIANTS)(AprilGan)

__all__ = ["PAPER_BACKBONE", "PAPER_IMAGE_SIZE", "PAPER_PRETRAINED", "AprilGan", "AprilGanConfig", "VARIANTS"]

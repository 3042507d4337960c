"""CoRe-CLIP (arXiv 2601.22868) and its ablations, registered as ``coreclip`` and ``coreclip.<variant>``.

Every variant is a set of :class:`CoreClipConfig` overrides, so an ablation table is a list of runs
(``docs/coreclip.md`` maps them to the paper's tables).
"""

from caadbench.models.base import Learning
from caadbench.models.coreclip.config import BRANCHES, CoreClipConfig
from caadbench.models.coreclip.model import CoreClip
from caadbench.models.registry import Variant, register_model

TRAINED = Learning.TRAINED

VARIANTS: dict[str, Variant] = {
    "default": Variant(TRAINED, {}, "CoRe-CLIP: tri-branch CSR (K=6), refined text (L=3), CRM fusion"),
    "global_only": Variant(TRAINED, {"branches": "global"}, "ablation: global branch only"),
    "subject_only": Variant(TRAINED, {"branches": "subject"}, "ablation: subject branch only"),
    "context_only": Variant(TRAINED, {"branches": "context"}, "ablation: context branch only"),
    "no_csr": Variant(TRAINED, {"csr_blocks": 0}, "ablation: no CSR adapters (frozen image features + CRM)"),
    "mean_fusion": Variant(TRAINED, {"fusion": "mean"}, "ablation: average the branches instead of CRM"),
    "concat_fusion": Variant(TRAINED, {"fusion": "concat"}, "ablation: concatenate + linear map instead of CRM"),
    "no_orthogonality": Variant(TRAINED, {"w_orthogonality": 0.0}, "ablation: no text orthogonality loss"),
    "no_consistency": Variant(TRAINED, {"w_consistency": 0.0}, "ablation: no text consistency loss"),
    "no_grounding": Variant(TRAINED, {"w_grounding": 0.0}, "ablation: no text grounding loss"),
    "no_entropy": Variant(TRAINED, {"w_entropy": 0.0}, "ablation: no CRM entropy regulariser"),
    "no_cross_branch": Variant(TRAINED, {"w_cross_branch": 0.0}, "ablation: no cross-branch consistency"),
    "no_pixel_loss": Variant(TRAINED, {"w_pixel": 0.0}, "ablation: no patch-level BCE (our addition)"),
    "no_masks": Variant(TRAINED, {"masks": "none"}, "ablation: no subject masks (every view is the full image)"),
    "masks_bbox": Variant(TRAINED, {"masks": "bbox"},
                          "mask quality: training masks replaced by their bounding boxes (test ground truth exact)"),
    "masks_dilate8": Variant(TRAINED, {"masks": "dilate:8"},
                             "mask quality: training masks dilated by 8 px at 256 px (test ground truth exact)"),
    "masks_erode8": Variant(TRAINED, {"masks": "erode:8"},
                            "mask quality: training masks eroded by 8 px at 256 px (test ground truth exact)"),
    "masks_drop25": Variant(TRAINED, {"masks": "drop:0.25"},
                            "mask quality: each cell of a training mask's 4x4 box grid dropped with p = 0.25 "
                            "(test ground truth exact)"),
    "no_text_refine": Variant(TRAINED, {"text_refine": False}, "ablation: frozen prompt-ensemble text, no stage 1"),
}

register_model("coreclip", VARIANTS)(CoreClip)

__all__ = ["BRANCHES", "CoreClip", "CoreClipConfig", "VARIANTS"]

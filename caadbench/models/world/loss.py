"""The contrastive image–text loss of world pretraining."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def caption_targets(tokens: torch.Tensor) -> torch.Tensor:
    """``(B, B)`` soft targets: row ``i`` spreads its mass evenly over the captions identical to caption ``i``.

    A world batch often holds the same caption twice ("a photo of the lake."); calling such a pair a negative
    would push apart two images that are described alike. Identical token rows are positives of each other.

    Args:
        tokens: ``(B, L)`` token ids.
    """
    same = (tokens[:, None, :] == tokens[None, :, :]).all(-1).float()
    return same / same.sum(1, keepdim=True)


def contrastive_loss(image: torch.Tensor, text: torch.Tensor, scale: torch.Tensor,
                     targets: torch.Tensor) -> torch.Tensor:
    """Symmetric cross-entropy of CLIP with soft targets.

    Args:
        image: ``(B, D)`` L2-normalised image embeddings.
        text: ``(B, D)`` L2-normalised caption embeddings.
        scale: the temperature ``1/τ`` (scalar).
        targets: ``(B, B)`` row-stochastic targets (:func:`caption_targets`; symmetric for identical captions).

    Returns:
        ``½ (CE(image→text) + CE(text→image))``, a scalar.
    """
    logits = scale * image.float() @ text.float().T
    i2t = -(targets * F.log_softmax(logits, dim=1)).sum(1).mean()
    t2i = -(targets.T * F.log_softmax(logits.T, dim=1)).sum(1).mean()
    return 0.5 * (i2t + t2i)

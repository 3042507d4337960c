"""Context-Selective Residual (CSR) branches: per-branch residual adapters on the first K frozen image blocks.

The frozen blocks are shared; only the adapters differ between branches. All branches run as ONE encoder
forward over a stacked ``(n·B)`` batch: a forward hook on each adapted block splits its output into the ``n``
branch slices and applies branch ``b``'s adapter to slice ``b`` (one batched matmul for all branches).

Views (training only): the subject view keeps the subject's pixels and fills the rest with the backbone's mean
colour, which is exactly zero after the backbone's mean/std normalisation; the context view fills the subject
instead; the global view is the full image. At inference every branch gets the full image and no mask is read.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from caadbench.errors import ModelError
from caadbench.models.backbone import ClipBackbone
from caadbench.models.coreclip.init import seeded_normal_


@dataclass
class BranchFeatures:
    """What the branches produce for a batch.

    Attributes:
        embeddings: ``(B, n, D)`` L2-normalised image embeddings z_b, one per branch.
        patches: ``(B, n, N, D)`` L2-normalised projected patch tokens of the final block, ``N = gh·gw``.
    """

    embeddings: torch.Tensor
    patches: torch.Tensor


class BranchAdapters(nn.Module):
    """Bottleneck residual adapters of ``n`` branches for one block, stored stacked.

    ``adapter_b(y) = y + s · (W_up,b · gelu(W_down,b · y + b_down,b) + b_up,b)`` with ``W_up`` and ``b_up`` zero at
    initialisation, so an untrained adapter is exactly the identity; ``s`` is the fixed adapter scale.

    Args:
        branches: number of branches ``n``.
        width: token width ``C`` of the block.
        bottleneck: hidden width ``r``.
        scale: ``s``, the residual's scale (a training choice: how far the adapted tokens may move per unit of
            weight; ``docs/coreclip.md``).
    """

    def __init__(self, branches: int, width: int, bottleneck: int, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = float(scale)
        self.down_weight = nn.Parameter(torch.empty(branches, width, bottleneck))
        self.down_bias = nn.Parameter(torch.zeros(branches, 1, bottleneck))
        self.up_weight = nn.Parameter(torch.zeros(branches, bottleneck, width))
        self.up_bias = nn.Parameter(torch.zeros(branches, 1, width))
        self.reset_parameters()

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Down-projection ~ N(0, 1/C); everything else zero (the identity)."""
        width = self.down_weight.shape[1]
        with torch.no_grad():
            seeded_normal_(self.down_weight, 1.0 / math.sqrt(width), generator)
            self.down_bias.zero_()
            self.up_weight.zero_()
            self.up_bias.zero_()

    def forward(self, y: torch.Tensor, index: Sequence[int] | None = None) -> torch.Tensor:
        """Apply adapter ``index[k]`` to slice ``y[k]``.

        Args:
            y: ``(m, M, C)`` tokens of ``m`` slices.
            index: the branch of each slice (default ``range(n)``, then ``m == n``).

        Returns:
            ``(m, M, C)``.
        """
        params = (self.down_weight, self.down_bias, self.up_weight, self.up_bias)
        if index is not None:
            idx = torch.as_tensor(list(index), device=y.device)
            params = tuple(p.index_select(0, idx) for p in params)
        down_w, down_b, up_w, up_b = (p.to(y.dtype) for p in params)
        hidden = F.gelu(torch.baddbmm(down_b, y, down_w))
        return y + self.scale * torch.baddbmm(up_b, hidden, up_w)


class CSR(nn.Module):
    """The branches' adapters on the first ``blocks`` image blocks (``blocks = 0``: no adapters, frozen CLIP).

    Args:
        width: token width of the image transformer.
        branches: number of branches.
        blocks: K.
        bottleneck: adapter hidden width.
        scale: the adapters' residual scale.
    """

    def __init__(self, width: int, branches: int, blocks: int, bottleneck: int, scale: float = 1.0) -> None:
        super().__init__()
        self.branches = branches
        self.adapters = nn.ModuleList(BranchAdapters(branches, width, bottleneck, scale) for _ in range(blocks))

    @property
    def blocks(self) -> int:
        return len(self.adapters)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        for adapter in self.adapters:
            adapter.reset_parameters(generator)

    def forward(self, backbone: ClipBackbone, views: torch.Tensor,
                index: Sequence[int] | None = None) -> BranchFeatures:
        """Encode ``m`` views of a batch in one forward, view ``k`` through branch ``index[k]``'s adapters.

        Args:
            backbone: the frozen backbone (batch-first open_clip ViT).
            views: ``(m, B, 3, S, S)`` images in [0, 1].
            index: branch of each view (default ``range(n)``, then ``m == n``).

        Returns:
            :class:`BranchFeatures` with ``m`` in the branch dimension.
        """
        if not backbone.model.visual.transformer.batch_first:
            raise ModelError(backbone.identity.arch, "CSR needs a batch-first open_clip transformer")
        m, B = views.shape[:2]
        if index is None and m != self.branches:
            raise ValueError(f"{m} views for {self.branches} branches need an explicit branch index")
        if self.blocks > 0 and len(backbone.image_blocks) < self.blocks:
            raise ModelError(backbone.identity.arch, f"CSR on {self.blocks} blocks, the image tower has "
                                                     f"{len(backbone.image_blocks)}")

        def hook(adapter: BranchAdapters):
            def apply(y: torch.Tensor) -> torch.Tensor:
                L, C = y.shape[1:]
                return adapter(y.reshape(m, B * L, C), index).reshape(m * B, L, C)
            return apply

        hooks = {i: hook(adapter) for i, adapter in enumerate(self.adapters)}
        with backbone.block_hooks("image", hooks):
            tokens = backbone.image_tokens(views.flatten(0, 1), layers=[-1], project=True)
        patches = next(iter(tokens.patches.values()))
        emb = tokens.embedding.reshape(m, B, -1).transpose(0, 1)
        patches = patches.reshape(m, B, patches.shape[1], patches.shape[2]).transpose(0, 1)
        return BranchFeatures(F.normalize(emb.float(), dim=-1), F.normalize(patches.float(), dim=-1))


def branch_views(images: torch.Tensor, subject_masks: torch.Tensor | None, fill: torch.Tensor,
                 branches: Sequence[str]) -> torch.Tensor:
    """The training input of each branch.

    Args:
        images: ``(B, 3, S, S)`` in [0, 1].
        subject_masks: ``(B, S, S)`` bool, or ``None`` for no masking (every view is the full image).
        fill: ``(1, 3, 1, 1)`` colour of masked-out pixels (the backbone's mean: zero after normalisation).
        branches: branch names (``subject``, ``context``, ``global``).

    Returns:
        ``(n, B, 3, S, S)``.
    """
    if subject_masks is None:
        return images.unsqueeze(0).expand(len(branches), *images.shape)
    keep = subject_masks.unsqueeze(1).to(images.device)
    fill = fill.to(images.dtype)
    views = {
        "subject": torch.where(keep, images, fill),
        "context": torch.where(keep, fill, images),
        "global": images,
    }
    return torch.stack([views[b] for b in branches])

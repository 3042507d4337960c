"""Fusion of the branches: the Context-Refined Module (CRM) and the static ablations (mean, concat).

CRM: ``q = W_q t1`` (the image's subject's anomalous prototype), ``k_b = W_k z_b``,
``α = softmax(qᵀk / √d)`` over the branches, ``z = Σ_b α_b z_b``; the same α fuse the branches' patch tokens.
Every fusion returns α ``(B, n)``: the attention for CRM, ``1/n`` for the mean, and for concatenation each
branch's share of the fused vector's parts (``‖W_b z_b‖ / Σ_c ‖W_c z_c‖``), so reports can show them side by
side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from caadbench.models.coreclip.init import seeded_normal_


@dataclass
class Fused:
    """A fused batch.

    Attributes:
        embedding: ``(B, D)`` fused image embedding z (not normalised).
        patches: ``(B, N, D)`` fused patch tokens, or ``None`` when none were given.
        alpha: ``(B, n)`` branch weights, rows sum to 1.
    """

    embedding: torch.Tensor
    patches: torch.Tensor | None
    alpha: torch.Tensor


def _weighted(alpha: torch.Tensor, emb: torch.Tensor, patches: torch.Tensor | None) -> Fused:
    z = torch.einsum("bn,bnd->bd", alpha, emb)
    p = None if patches is None else torch.einsum("bn,bnpd->bpd", alpha, patches)
    return Fused(z, p, alpha)


class MeanFusion(nn.Module):
    """Static averaging (also the fusion of a single branch): α = 1/n."""

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        pass

    def forward(self, query: torch.Tensor, emb: torch.Tensor, patches: torch.Tensor | None = None) -> Fused:
        """``query`` ``(B, D)`` unused; ``emb`` ``(B, n, D)``; ``patches`` ``(B, n, N, D)``."""
        B, n = emb.shape[:2]
        return _weighted(emb.new_full((B, n), 1.0 / n), emb, patches)


class CRM(nn.Module):
    """t1-conditioned single-head attention over the branch embeddings.

    Args:
        dim: joint-space width D.
        attn_dim: query/key width d.
    """

    def __init__(self, dim: int, attn_dim: int) -> None:
        super().__init__()
        self.query = nn.Linear(dim, attn_dim, bias=False)
        self.key = nn.Linear(dim, attn_dim, bias=False)
        self.reset_parameters()

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """W_q, W_k ~ N(0, 1): the inputs are unit vectors, so q and k get unit-variance entries and
        ``qᵀk/√d`` is O(1), the regime scaled dot-product attention assumes (α is uniform only where the
        branch embeddings coincide, e.g. all adapters at zero on one image)."""
        for lin in (self.query, self.key):
            seeded_normal_(lin.weight, 1.0, generator)

    def attention(self, query: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """α ``(B, n)`` from ``query`` ``(B, D)`` (t1 of each image) and ``emb`` ``(B, n, D)``."""
        q = self.query(query.to(emb.dtype))
        k = self.key(emb)
        logits = torch.einsum("bd,bnd->bn", q, k) / math.sqrt(q.shape[-1])
        return logits.float().softmax(dim=-1)

    def forward(self, query: torch.Tensor, emb: torch.Tensor, patches: torch.Tensor | None = None) -> Fused:
        return _weighted(self.attention(query, emb).to(emb.dtype), emb, patches)


class ConcatFusion(nn.Module):
    """Concatenation of the branch embeddings, mapped back to D by a linear layer (initialised to the mean).

    Args:
        dim: D.
        branches: n.
    """

    def __init__(self, dim: int, branches: int) -> None:
        super().__init__()
        self.branches = branches
        self.proj = nn.Linear(branches * dim, dim, bias=False)
        self.reset_parameters()

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """``W = [I, …, I] / n``: starts as the mean fusion."""
        dim = self.proj.out_features
        with torch.no_grad():
            self.proj.weight.copy_(torch.eye(dim).repeat(1, self.branches) / self.branches)

    def forward(self, query: torch.Tensor, emb: torch.Tensor, patches: torch.Tensor | None = None) -> Fused:
        B, n, D = emb.shape
        weight = self.proj.weight.view(D, n, D).to(emb.dtype)
        parts = torch.einsum("enk,bnk->bne", weight, emb)  # W_b z_b per branch
        share = parts.norm(dim=-1)
        alpha = share / share.sum(dim=-1, keepdim=True).clamp_min(1e-12)
        p = None if patches is None else torch.einsum("enk,bnpk->bpe", weight, patches)
        return Fused(parts.sum(dim=1), p, alpha.float())


def make_fusion(kind: str, dim: int, branches: int, attn_dim: int = 0) -> nn.Module:
    """The fusion module of a config (``crm``, ``mean``, ``concat``); a single branch needs none (mean)."""
    if branches == 1 or kind == "mean":
        return MeanFusion()
    if kind == "crm":
        return CRM(dim, attn_dim or dim)
    if kind == "concat":
        return ConcatFusion(dim, branches)
    raise ValueError(f"unknown fusion {kind!r}")

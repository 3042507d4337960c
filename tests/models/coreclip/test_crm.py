"""Fusion: CRM attention against a reference, α on the simplex, static fusions."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from caadbench.models.coreclip.crm import CRM, ConcatFusion, MeanFusion, make_fusion


@pytest.fixture()
def inputs():
    g = torch.Generator().manual_seed(0)
    t1 = F.normalize(torch.randn(5, 16, generator=g), dim=-1)
    emb = F.normalize(torch.randn(5, 3, 16, generator=g), dim=-1)
    patches = F.normalize(torch.randn(5, 3, 7, 16, generator=g), dim=-1)
    return t1, emb, patches


def test_crm_matches_the_formula(inputs):
    t1, emb, patches = inputs
    crm = CRM(dim=16, attn_dim=8)
    out = crm(t1, emb, patches)
    Wq, Wk = crm.query.weight, crm.key.weight
    for i in range(5):
        q = Wq @ t1[i]
        logits = torch.stack([q @ (Wk @ emb[i, b]) for b in range(3)]) / math.sqrt(8)
        alpha = torch.softmax(logits, dim=0)
        torch.testing.assert_close(out.alpha[i], alpha, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(out.embedding[i], (alpha[:, None] * emb[i]).sum(0), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(out.patches[i], (alpha[:, None, None] * patches[i]).sum(0), rtol=1e-5, atol=1e-6)
    assert out.alpha.shape == (5, 3)
    torch.testing.assert_close(out.alpha.sum(-1), torch.ones(5))
    assert (out.alpha > 0).all()
    # unit-variance q/k entries: the initial weights are neither uniform nor one-hot on random inputs
    assert out.alpha.std() > 0.02 and out.alpha.max() < 0.999


def test_crm_is_uniform_when_branches_coincide(inputs):
    t1, emb, _ = inputs
    same = emb[:, :1].expand(-1, 3, -1)
    torch.testing.assert_close(CRM(16, 16)(t1, same).alpha, torch.full((5, 3), 1 / 3))


def test_static_fusions(inputs):
    t1, emb, patches = inputs
    mean = MeanFusion()(t1, emb, patches)
    torch.testing.assert_close(mean.embedding, emb.mean(1))
    torch.testing.assert_close(mean.patches, patches.mean(1))
    torch.testing.assert_close(mean.alpha, torch.full((5, 3), 1 / 3))
    concat = ConcatFusion(16, 3)
    out = concat(t1, emb, patches)  # initialised to the mean
    torch.testing.assert_close(out.embedding, mean.embedding)
    torch.testing.assert_close(out.patches, mean.patches)
    ref = concat.proj(emb.flatten(1))
    with torch.no_grad():
        concat.proj.weight.add_(0.1 * torch.randn_like(concat.proj.weight))
    out = concat(t1, emb, patches)
    torch.testing.assert_close(out.embedding, concat.proj(emb.flatten(1)))
    torch.testing.assert_close(out.patches, concat.proj(patches.permute(0, 2, 1, 3).flatten(2)))
    assert not torch.allclose(out.embedding, ref)
    torch.testing.assert_close(out.alpha.sum(-1), torch.ones(5))


def test_make_fusion():
    assert isinstance(make_fusion("crm", 16, 1), MeanFusion)
    assert isinstance(make_fusion("crm", 16, 3), CRM)
    assert make_fusion("crm", 16, 3, attn_dim=4).query.out_features == 4
    assert isinstance(make_fusion("concat", 16, 2), ConcatFusion)
    with pytest.raises(ValueError):
        make_fusion("max", 16, 3)

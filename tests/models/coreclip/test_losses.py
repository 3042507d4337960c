"""Losses: values at known points, and each one decreases when its inputs are optimised."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from caadbench.models.coreclip import losses as L


def descend(loss_fn, params, steps: int = 60, lr: float = 0.05) -> tuple[float, float]:
    """Loss before and after ``steps`` of Adam on ``params``."""
    opt = torch.optim.Adam(params, lr=lr)
    first = float(loss_fn().detach())
    for _ in range(steps):
        opt.zero_grad()
        loss_fn().backward()
        opt.step()
    return first, float(loss_fn().detach())


def unit(*shape, seed=0):
    return F.normalize(torch.randn(*shape, generator=torch.Generator().manual_seed(seed)), dim=-1)


def test_orthogonality():
    t0 = unit(4, 8)
    assert math.isclose(float(L.orthogonality_loss(t0, t0)), 1.0, rel_tol=1e-6)
    assert float(L.orthogonality_loss(torch.eye(8)[:4], torch.eye(8)[4:])) == 0.0
    a, b = (torch.nn.Parameter(unit(4, 8, seed=s) + 0.9 * t0) for s in (1, 2))
    first, last = descend(lambda: L.orthogonality_loss(F.normalize(a, dim=-1), F.normalize(b, dim=-1)), [a, b])
    assert last < 0.05 * first


def test_consistency():
    anchor = unit(4, 8)
    assert float(L.consistency_loss(anchor, anchor, anchor)) < 1e-6
    t = torch.nn.Parameter(unit(4, 2, 8, seed=3))
    first, last = descend(lambda: L.consistency_loss(F.normalize(t[:, 0], dim=-1), F.normalize(t[:, 1], dim=-1),
                                                     anchor), [t])
    assert last < 0.05 * first


def test_grounding():
    visual = unit(3, 8, seed=4)
    present = torch.tensor([True, True, False])
    t0 = torch.nn.Parameter(unit(3, 8, seed=5))
    first, last = descend(lambda: L.grounding_loss(F.normalize(t0, dim=-1), visual, present, 0.07), [t0])
    assert last < 0.2 * first
    # only present classes are aligned; one class alone has no contrastive term
    swapped = visual[[1, 0, 2]]
    assert float(L.grounding_loss(visual, visual, present)) < float(L.grounding_loss(swapped, visual, present))
    assert float(L.grounding_loss(visual[:1], visual[:1], torch.tensor([True]))) < 1e-6
    assert float(L.grounding_loss(visual, visual, torch.zeros(3, dtype=torch.bool))) == 0.0


def test_entropy_band():
    uniform = torch.full((2, 3), 1 / 3)
    onehot = torch.tensor([[1.0, 0.0, 0.0]] * 2)
    torch.testing.assert_close(L.normalized_entropy(uniform), torch.ones(2))
    torch.testing.assert_close(L.normalized_entropy(onehot), torch.zeros(2))
    assert math.isclose(float(L.entropy_band_loss(uniform, 0.3, 0.9)), 0.1, rel_tol=1e-5)
    assert math.isclose(float(L.entropy_band_loss(onehot, 0.3, 0.9)), 0.3, rel_tol=1e-5)
    inside = torch.tensor([[0.6, 0.3, 0.1]])
    assert float(L.entropy_band_loss(inside, 0.3, 0.9)) == 0.0
    for start in (torch.zeros(4, 3), torch.tensor([[8.0, 0.0, 0.0]] * 4)):  # from uniform and from one-hot
        logits = torch.nn.Parameter(start + 0.01 * torch.randn(4, 3, generator=torch.Generator().manual_seed(0)))
        first, last = descend(lambda: L.entropy_band_loss(logits.softmax(-1), 0.3, 0.9), [logits], lr=0.1)
        assert first > 0.05 and last < 0.01


def test_cross_branch_pulls_the_full_image_embedding_to_the_view_target():
    view = unit(4, 2, 8, seed=6).requires_grad_()
    full = torch.nn.Parameter(unit(4, 2, 8, seed=7))
    first, last = descend(lambda: L.cross_branch_loss(full, view), [full])
    assert last < 0.05 * first
    L.cross_branch_loss(full, view).backward()
    assert view.grad is None  # the view side is the target, not trained by this term


def test_image_and_pixel_bce():
    labels = torch.tensor([0, 1, 1, 0])
    logits = torch.nn.Parameter(torch.zeros(4))
    first, last = descend(lambda: L.image_bce(logits, labels), [logits])
    assert math.isclose(first, math.log(2), rel_tol=1e-6) and last < 0.1
    gt = torch.zeros(2, 16, 16, dtype=torch.bool)
    gt[0, :8, :8] = True
    targets = L.patch_targets(gt, (2, 2))
    torch.testing.assert_close(targets, torch.tensor([[1.0, 0, 0, 0], [0, 0, 0, 0]]))
    gt[1, :4, :4] = True
    assert math.isclose(float(L.patch_targets(gt, (2, 2))[1, 0]), 0.25)
    patch_logits = torch.nn.Parameter(torch.zeros(2, 4))
    first, last = descend(lambda: L.pixel_bce(patch_logits, gt, (2, 2)), [patch_logits])
    assert last < first - 0.3

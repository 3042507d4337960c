"""CSR branches: identity at initialisation, one stacked forward == separate forwards, masked views."""

from __future__ import annotations

import pytest
import torch

from caadbench.models.coreclip.csr import CSR, BranchAdapters, branch_views

BRANCHES = ("subject", "context", "global")


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.rand(2, 3, 128, 128, generator=torch.Generator().manual_seed(0))


def perturbed_csr(blocks: int = 6, seed: int = 0) -> CSR:
    """A CSR whose branches differ (random up-projections instead of the zero initialisation)."""
    csr = CSR(width=192, branches=3, blocks=blocks, bottleneck=16)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for a in csr.adapters:
            a.up_weight.copy_(0.05 * torch.randn(a.up_weight.shape, generator=g))
            a.up_bias.copy_(0.05 * torch.randn(a.up_bias.shape, generator=g))
    return csr


@torch.no_grad()
def test_zero_initialised_adapters_are_exactly_the_frozen_backbone(tiny_backbone, images):
    csr = CSR(width=192, branches=1, blocks=6, bottleneck=16)
    feats = csr(tiny_backbone, images.unsqueeze(0))
    ref = tiny_backbone.image_tokens(images, layers=[-1])
    assert feats.embeddings.shape == (2, 1, tiny_backbone.embed_dim)
    assert feats.patches.shape == (2, 1, 64, tiny_backbone.embed_dim)
    assert torch.equal(feats.embeddings[:, 0], torch.nn.functional.normalize(ref.embedding, dim=-1))
    assert torch.equal(feats.patches[:, 0], torch.nn.functional.normalize(ref.patches[7], dim=-1))


@torch.no_grad()
def test_one_stacked_forward_equals_three_separate_forwards(tiny_backbone, images):
    csr = perturbed_csr()
    masks = torch.zeros(2, 128, 128, dtype=torch.bool)
    masks[:, 30:90, 20:70] = True
    views = branch_views(images, masks, tiny_backbone.mean, BRANCHES)
    together = csr(tiny_backbone, views)
    assert together.embeddings.shape == (2, 3, tiny_backbone.embed_dim)
    for b in range(3):
        alone = csr(tiny_backbone, views[b:b + 1], index=[b])
        torch.testing.assert_close(together.embeddings[:, b], alone.embeddings[:, 0], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(together.patches[:, b], alone.patches[:, 0], rtol=1e-5, atol=1e-5)
    # the branches really differ, and differ from the frozen backbone
    assert not torch.allclose(together.embeddings[:, 0], together.embeddings[:, 1], atol=1e-3)
    same_input = csr(tiny_backbone, images.unsqueeze(0).expand(3, *images.shape))
    assert not torch.allclose(same_input.embeddings[:, 0], same_input.embeddings[:, 2], atol=1e-4)


def test_adapter_matches_an_independent_reference():
    adapter = BranchAdapters(branches=3, width=8, bottleneck=4)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in adapter.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    y = torch.randn(3, 5, 8, generator=g)
    out = adapter(y)
    for b in range(3):
        hidden = torch.nn.functional.gelu(y[b] @ adapter.down_weight[b] + adapter.down_bias[b, 0])
        ref = y[b] + hidden @ adapter.up_weight[b] + adapter.up_bias[b, 0]
        torch.testing.assert_close(out[b], ref)
    torch.testing.assert_close(adapter(y[[2, 0]], index=[2, 0]), torch.stack([out[2], out[0]]))
    torch.testing.assert_close(adapter(y[2:3], index=[2])[0], out[2])


def test_each_branch_gets_gradients_only_from_its_own_slice(tiny_backbone, images):
    csr = perturbed_csr(blocks=2)
    feats = csr(tiny_backbone, images.unsqueeze(0).expand(2, *images.shape), index=[0, 2])
    feats.embeddings.sum().backward()
    grad = csr.adapters[0].down_weight.grad
    assert grad[0].abs().sum() > 0 and grad[2].abs().sum() > 0
    assert torch.count_nonzero(grad[1]) == 0


def test_views_mask_pixels_with_the_mean_colour_which_normalises_to_zero(tiny_backbone, images):
    masks = torch.zeros(2, 128, 128, dtype=torch.bool)
    masks[0, :64] = True
    views = branch_views(images, masks, tiny_backbone.mean, BRANCHES)
    assert views.shape == (3, 2, 3, 128, 128)
    subject, context, full = (tiny_backbone.normalize(v) for v in views)
    assert torch.equal(views[2], images)
    assert torch.allclose(subject[0, :, 64:], torch.zeros(()), atol=1e-6)  # context removed
    assert torch.allclose(context[0, :, :64], torch.zeros(()), atol=1e-6)  # subject removed
    assert torch.equal(views[0][0, :, :64], images[0, :, :64]) and torch.equal(views[1][0, :, 64:], images[0, :, 64:])
    assert torch.allclose(subject[1], torch.zeros(()), atol=1e-6)  # an empty mask leaves no subject
    unmasked = branch_views(images, None, tiny_backbone.mean, BRANCHES)
    assert all(torch.equal(v, images) for v in unmasked)


def test_too_many_blocks_is_refused(tiny_backbone, images):
    from caadbench.errors import ModelError

    csr = CSR(width=192, branches=1, blocks=9, bottleneck=4)
    with pytest.raises(ModelError, match="image tower has 8"):
        csr(tiny_backbone, images.unsqueeze(0))

"""Text refinement: starts as the frozen encoder, gates carry gradients, prototypes change once gates open."""

from __future__ import annotations

import torch

from caadbench.models.coreclip.text import GatedAdapter, TextRefiner
from caadbench.models.prompts import class_prototypes, get_prompt_set

SUBJECTS = ["cow", "car", "traffic light"]


def test_closed_gates_reproduce_the_frozen_prototypes_exactly(tiny_backbone):
    prompts = get_prompt_set("context")
    refiner = TextRefiner(width=128, blocks=3, bottleneck=8)
    with torch.no_grad():
        refined = refiner.prototypes(tiny_backbone, prompts, SUBJECTS)
        frozen = class_prototypes(tiny_backbone.encode_text, prompts, SUBJECTS)
    assert refined.shape == (3, 2, tiny_backbone.embed_dim)
    assert torch.equal(refined, frozen)
    torch.testing.assert_close(refined.norm(dim=-1), torch.ones(3, 2))


def test_gates_receive_gradients_and_then_change_the_prototypes(tiny_backbone):
    prompts = get_prompt_set("two")
    refiner = TextRefiner(width=128, blocks=3, bottleneck=8)
    protos = refiner.prototypes(tiny_backbone, prompts, SUBJECTS)
    (protos[:, 0] * protos[:, 1]).sum().backward()
    gates = [a.gate.grad for a in refiner.adapters]
    assert all(g is not None and g.abs() > 0 for g in gates)
    # with tanh(0) = 0 the adapter weights get no gradient at first, by design
    assert all(a.up.weight.grad.abs().sum() == 0 for a in refiner.adapters)
    with torch.no_grad():
        refiner.adapters[0].gate.fill_(0.5)
        moved = refiner.prototypes(tiny_backbone, prompts, SUBJECTS)
    assert not torch.allclose(moved, protos.detach(), atol=1e-4)


def test_gated_adapter_formula():
    adapter = GatedAdapter(width=6, bottleneck=3)
    y = torch.randn(2, 4, 6)
    assert torch.equal(adapter(y), y)
    with torch.no_grad():
        adapter.gate.fill_(0.3)
    ref = y + torch.tanh(torch.tensor(0.3)) * adapter.up(torch.nn.functional.gelu(adapter.down(y)))
    torch.testing.assert_close(adapter(y), ref)


def test_zero_blocks_is_the_frozen_encoder(tiny_backbone):
    prompts = get_prompt_set("two")
    refiner = TextRefiner(width=128, blocks=0, bottleneck=8)
    assert not list(refiner.parameters())
    with torch.no_grad():
        assert torch.equal(refiner.prototypes(tiny_backbone, prompts, ["cow"]),
                           class_prototypes(tiny_backbone.encode_text, prompts, ["cow"]))

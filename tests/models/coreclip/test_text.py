"""Text refinement: starts as the frozen encoder, and gradient reaches the adapter weights and gates."""

from __future__ import annotations

import torch

from caadbench.models.coreclip.text import GatedAdapter, TextRefiner
from caadbench.models.prompts import class_prototypes, get_prompt_set

SUBJECTS = ["cow", "car", "traffic light"]


def test_an_untrained_refiner_reproduces_the_frozen_prototypes_exactly(tiny_backbone):
    prompts = get_prompt_set("context")
    refiner = TextRefiner(width=128, blocks=3, bottleneck=8)
    with torch.no_grad():
        refined = refiner.prototypes(tiny_backbone, prompts, SUBJECTS)
        frozen = class_prototypes(tiny_backbone.encode_text, prompts, SUBJECTS)
    assert refined.shape == (3, 2, tiny_backbone.embed_dim)
    assert torch.equal(refined, frozen)
    torch.testing.assert_close(refined.norm(dim=-1), torch.ones(3, 2))


def test_gradient_reaches_the_adapter_weights_from_the_first_steps(tiny_backbone):
    prompts = get_prompt_set("two")
    refiner = TextRefiner(width=128, blocks=3, bottleneck=8)
    opt = torch.optim.SGD(refiner.parameters(), lr=0.5)
    grads = []
    for _ in range(2):
        opt.zero_grad()
        protos = refiner.prototypes(tiny_backbone, prompts, SUBJECTS)
        (protos[:, 0] * protos[:, 1]).sum().backward()
        grads.append({name: p.grad.abs().sum().item() for name, p in refiner.named_parameters()})
        opt.step()
    first, second = grads
    assert all(first[f"adapters.{i}.up.weight"] > 0 for i in range(3))  # the gate is open: the weights learn at once
    assert all(second[name] > 0 for name in second if not name.endswith("down.bias"))  # everything by step 2
    with torch.no_grad():
        moved = refiner.prototypes(tiny_backbone, prompts, SUBJECTS)
    assert not torch.allclose(moved, protos.detach(), atol=1e-4)


def test_gated_adapter_formula():
    adapter = GatedAdapter(width=6, bottleneck=3)
    y = torch.randn(2, 4, 6)
    assert torch.equal(adapter(y), y)
    with torch.no_grad():
        adapter.gate.fill_(0.3)
        adapter.up.weight.normal_()
    ref = y + torch.tanh(torch.tensor(0.3)) * adapter.up(torch.nn.functional.gelu(adapter.down(y)))
    torch.testing.assert_close(adapter(y), ref)


def test_zero_blocks_is_the_frozen_encoder(tiny_backbone):
    prompts = get_prompt_set("two")
    refiner = TextRefiner(width=128, blocks=0, bottleneck=8)
    assert not list(refiner.parameters())
    with torch.no_grad():
        assert torch.equal(refiner.prototypes(tiny_backbone, prompts, ["cow"]),
                           class_prototypes(tiny_backbone.encode_text, prompts, ["cow"]))

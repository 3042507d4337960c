"""CoRe-CLIP's diagnostic extras: shapes, α on the simplex, and scores untouched by collecting them."""

from __future__ import annotations

import pytest
import torch

from caadbench.models import create_model
from caadbench.models.base import DIAGNOSTIC_EXTRAS
from caadbench.models.coreclip.config import BRANCHES
from tests.models.coreclip.test_model import QUICK, quick_fit
from tests.models.coreclip.toy import toy_batch


@pytest.fixture(scope="module")
def batch():
    return toy_batch(4, 91)


@pytest.fixture(scope="module")
def fitted(tiny_backbone):
    return quick_fit(create_model("coreclip", backbone=tiny_backbone, **QUICK))


def test_extras_have_their_stated_shapes_and_alpha_sums_to_one(fitted, tiny_backbone, batch):
    out = fitted.predict(batch, diagnostics=True)
    D = tiny_backbone.embed_dim
    assert set(out.extras) == set(fitted.extras_spec) == set(DIAGNOSTIC_EXTRAS)
    assert fitted.extras_columns == {"alpha": BRANCHES, "branch_scores": BRANCHES}
    assert out.extras["alpha"].shape == out.extras["branch_scores"].shape == (4, 3)
    assert out.extras["embedding"].shape == out.extras["frozen_embedding"].shape == (4, D)
    torch.testing.assert_close(out.extras["alpha"].sum(-1), torch.ones(4))
    assert ((out.extras["alpha"] >= 0) & (out.extras["alpha"] <= 1)).all()
    for name in ("embedding", "frozen_embedding"):
        torch.testing.assert_close(out.extras[name].norm(dim=-1), torch.ones(4))
    assert "frozen_embedding" not in fitted.predict(batch).extras  # the frozen forward only when asked


def test_scores_and_maps_are_bit_identical_with_and_without_diagnostics(fitted, batch):
    plain, diagnosed = fitted.predict(batch), fitted.predict(batch, diagnostics=True)
    assert torch.equal(plain.scores, diagnosed.scores) and torch.equal(plain.maps, diagnosed.maps)
    for name in ("alpha", "branch_scores", "embedding"):
        assert torch.equal(plain.extras[name], diagnosed.extras[name])


def test_the_score_is_the_embedding_against_the_prototypes(fitted, batch):
    out = fitted.predict(batch)
    with torch.no_grad():
        protos = fitted.prototypes_for(batch.subjects)
        margin = (out.extras["embedding"] * (protos[:, 1] - protos[:, 0])).sum(-1)
        ref = torch.sigmoid(margin * fitted.scale)
    torch.testing.assert_close(out.scores, ref, rtol=1e-5, atol=1e-6)


def test_without_csr_the_adapted_embedding_is_the_frozen_one(tiny_backbone, batch):
    model = quick_fit(create_model("coreclip.no_csr", backbone=tiny_backbone, **QUICK))
    out = model.predict(batch, diagnostics=True)
    torch.testing.assert_close(out.extras["embedding"], out.extras["frozen_embedding"], rtol=1e-5, atol=1e-5)

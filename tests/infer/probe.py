"""A fitted model that gives no maps, for the prediction tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from caadbench.data.batch import Batch
from caadbench.models import FitData, create_model


def probe_checkpoint(path: Path) -> Path:
    """A fitted ``probe`` (global linear probe: no maps) on random labelled images, saved."""
    images = torch.from_numpy(np.random.default_rng(200).random((8, 3, 128, 128), dtype=np.float32))
    batch = Batch.from_images(images, ["cow"] * 8, keys=[f"t{i}" for i in range(8)],
                              labels=torch.tensor([0, 1] * 4))
    model = create_model("probe", backbone="caad-tiny", progress=False)
    model.fit(FitData(subjects=["cow"], train=lambda epoch: iter([batch])))
    return model.save(path)

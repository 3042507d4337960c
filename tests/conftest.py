"""Shared fixtures. Nothing here touches the network: the hub is forced offline before anything imports it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Tests import the *installed* caadbench (pytest runs with --import-mode=importlib, so the repository root is
# not put first on sys.path); the root is appended only so that the shared helpers under tests/ import.
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

TINY = "caad-tiny"


@pytest.fixture(scope="session")
def tiny_backbone():
    """A random-init ``caad-tiny`` backbone (seed 0), shared read-only across tests."""
    from caadbench.models.backbone import ClipBackbone

    return ClipBackbone(TINY, pretrained=None, init_seed=0)


@pytest.fixture()
def rng() -> torch.Generator:
    return torch.Generator().manual_seed(1234)


@pytest.fixture()
def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (connections to it are refused at once)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(autouse=True)
def _fresh_caches():
    """Every test starts and ends with empty sample and image-feature caches (process-wide, they would grow)."""
    from caadbench.data.sample_cache import SAMPLES
    from caadbench.models.feature_cache import IMAGE_FEATURES

    for cache in (SAMPLES, IMAGE_FEATURES):
        cache.clear()
    yield
    for cache in (SAMPLES, IMAGE_FEATURES):
        cache.clear()

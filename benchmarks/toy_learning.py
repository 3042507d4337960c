"""Learning figures of the trained baselines on the toy industrial set, as quoted in docs/aprilgan.md and
docs/anomalyclip.md (random-init ``caad-tiny``; the same data and schedule as the tests' learning checks).

For each model: image and pixel AUROC on 16 held-out images of the training surfaces and on 16 images of a
surface never trained on, before and after 6 steps (2 epochs x 3 batches of 8).

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/toy_learning.py
"""

from __future__ import annotations

import argparse

from caadbench.models import ClipBackbone, FitData, create_model
from tests.baselines.toy_industrial import aurocs, toy_industrial_batch, toy_industrial_loader


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+",
                        default=["aprilgan", "aprilgan.map_score", "anomalyclip", "anomalyclip.no_dpam"])
    args = parser.parse_args()
    backbone = ClipBackbone("caad-tiny")
    seen, unseen = toy_industrial_batch(16, 999), toy_industrial_batch(16, 998, surfaces=("board",))
    for name in args.models:
        model = create_model(name, backbone=backbone, epochs=2, progress=False)
        model.is_fitted = True
        before = aurocs(model.predict(seen), seen), aurocs(model.predict(unseen), unseen)
        model.fit(FitData(subjects=["plate", "tile"], train=toy_industrial_loader(3, 8), seed=0))
        (s0, u0), (s1, u1) = before, (aurocs(model.predict(seen), seen), aurocs(model.predict(unseen), unseen))
        print(f"{name}: seen surfaces I/P-AUROC {s0[0]:.3f}/{s0[1]:.3f} -> {s1[0]:.3f}/{s1[1]:.3f}; "
              f"unseen surface {u0[0]:.3f}/{u0[1]:.3f} -> {u1[0]:.3f}/{u1[1]:.3f}")


if __name__ == "__main__":
    main()

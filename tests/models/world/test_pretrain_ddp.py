"""Two CPU processes (gloo), each encoding half of every global batch, pretrain the same weights as one process."""

from __future__ import annotations

import os

import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file

from caadbench.models.world.train import Pretrainer
from tests.models.ddp_helpers import free_port, max_difference
from tests.models.world.test_pretrain import tiny

STEPS = 3


def worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank),
                       "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank)})
    torch.set_num_threads(1)
    from caadbench.utils import distributed as D

    D.init_from_env("cpu", timeout_s=120)
    try:
        Pretrainer(tiny(steps=STEPS), f"{out}/two.safetensors", progress=False).run()
    finally:
        D.shutdown()



def test_two_processes_pretrain_what_one_does(tmp_path):
    """Tolerance: fp16 storage rounds both to the same grid; reduction order differs. A run on half of each
    global batch (what two processes without the gathered loss would amount to) differs far more."""
    mp.spawn(worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    Pretrainer(tiny(steps=STEPS), tmp_path / "one.safetensors", progress=False).run()
    Pretrainer(tiny(steps=STEPS, batch_size=8), tmp_path / "half.safetensors", progress=False).run()
    two, one, half = (load_file(str(tmp_path / f"{n}.safetensors")) for n in ("two", "one", "half"))
    assert max_difference(two, one) < 2e-3
    assert max_difference(half, one) > 10 * max(max_difference(two, one), 1e-4)

"""Packed trials on one GPU: the memory cap makes an oversized trial fail alone while its neighbour finishes.

CUDA only (``pytest -m cuda``). Two real processes, as two packed trials are: each caps its
allocator with ``orchestrator.trial.cap_gpu_memory`` at a quarter of the card. The neighbour
trains a small run; the other asks for more than its quarter while the neighbour trains.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]

ROOT = Path(__file__).resolve().parents[2]

NEIGHBOUR = """
import sys, time
from pathlib import Path
import torch
from orchestrator.trial import cap_gpu_memory, gpu_memory_share
from selfsup.config import EvalConfig, TrainConfig
from selfsup.training import Pretraining

assert cap_gpu_memory(gpu_memory_share(0.25))
images, ready = sys.argv[1], Path(sys.argv[2])
cfg = TrainConfig(method="simclr", epochs=10, batch_size=16, image_size=32, backbone_width=8, stem="cifar", workers=0, device="cuda")
run = Pretraining(cfg, EvalConfig(every=100, linear_epochs=0), images, [])
ready.touch()
history = run.fit()
share = 0.25 * torch.cuda.get_device_properties(0).total_memory
print(f"finished {len(history)} epochs, peak {torch.cuda.max_memory_allocated() / share:.3f} of the share")
"""

OVERSIZED = """
import sys, time
from pathlib import Path
import torch
from orchestrator.trial import cap_gpu_memory, gpu_memory_share

assert cap_gpu_memory(gpu_memory_share(0.25))
ready = Path(sys.argv[1])
while not ready.exists():
    time.sleep(0.05)
total = torch.cuda.get_device_properties(0).total_memory
try:
    blob = torch.empty(int(0.4 * total), dtype=torch.uint8, device="cuda")  # more than its quarter
except torch.OutOfMemoryError as err:
    print(f"out of memory as expected: {str(err).splitlines()[0]}")
    sys.exit(3)
print("allocated beyond the cap")
"""


def test_an_oversized_packed_trial_fails_alone_while_its_neighbour_finishes(synthetic, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    ready = tmp_path / "neighbour_ready"
    neighbour = subprocess.Popen([sys.executable, "-c", textwrap.dedent(NEIGHBOUR), str(synthetic.images), str(ready)],
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    oversized = subprocess.Popen([sys.executable, "-c", textwrap.dedent(OVERSIZED), str(ready)],
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out_big, err_big = oversized.communicate(timeout=300)
    still_training = neighbour.poll() is None
    out_n, err_n = neighbour.communicate(timeout=300)
    assert oversized.returncode == 3, (out_big, err_big)
    assert "out of memory as expected" in out_big
    assert neighbour.returncode == 0, err_n
    assert "finished 10 epochs" in out_n
    assert still_training, "the neighbour had finished before the oversized trial failed: the test proved nothing"
    peak = float(out_n.split("peak ")[1].split()[0])
    assert peak < 1.0

"""Trial packing: a fractional ``resources.gpu`` becomes each trial's cap on GPU memory."""

import pytest
import torch

from orchestrator.config import load_sweep
from orchestrator.plan import make_plan
from orchestrator.sweep import _trial_spec
from orchestrator.trial import cap_gpu_memory, gpu_memory_share
from tests.orchestrator.test_sweep import write_sweep


@pytest.mark.parametrize(("gpu", "share"), [(0, None), (0.25, 0.25), (0.5, 0.5), (1, None), (2, None)])
def test_trial_memory_share_comes_from_the_sweep_file(tmp_path, gpu, share):
    sweep = write_sweep(tmp_path)
    sweep.write_text(sweep.read_text().replace("resources: {cpu: 1,", f"resources: {{cpu: 1, gpu: {gpu},"))
    plan = make_plan(load_sweep(sweep))
    lists = {name: ("images.json", "sha") for name in plan.datasets}
    spec = _trial_spec(plan, plan.trials[0], "sqlite:///x.db", "run", lists)
    assert spec["gpu_memory_share"] == share == gpu_memory_share(gpu)


def test_cap_is_set_with_cuda_and_a_no_op_without(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "set_per_process_memory_fraction", lambda share: calls.append(share))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a CPU or a fake GPU of a simulated cluster
    assert cap_gpu_memory(0.25) is False and calls == []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert cap_gpu_memory(None) is False and calls == []  # a whole GPU: no cap
    assert cap_gpu_memory(0.25) is True and calls == [0.25]

"""Memory of packed ``input: gpu`` trials, with one image cache per node shared through Ray's object
store (``resources.shared_image_cache: true``, the default) and with one cache per trial (false),
side by side in one run, through the real sweep (``orchestrator.sweep.run_sweep``).

For each setting: a fresh local Ray with one logical CPU per trial, one sweep of N identical SimCLR
trials (seeds 0..N-1, ``train: {input: gpu}``, 1 CPU each, so all N run at once) on a synthetic
scene dataset generated once. While it runs, every ``--interval`` s, the proportional set size
(PSS, from ``/proc/PID/smaps_rollup``: a page shared by k processes counts 1/k in each, so sums
count shared memory once) is read for

- ``trials``: the trial processes (Tune's function trainables, ``ray::ImplicitFunc``), summed;
- ``node``: every process of the run (this driver, which builds the shared caches, and all Ray
  processes it started: raylet with the object store's shared memory, GCS, workers), summed.

Each column is the largest sum seen; ``alive`` is the number of trials running at the ``trials``
peak (the run fails unless all N ran at once at some point). ``cache MB`` is one trial's cache
(3 bytes per cached pixel). MB: 2^20 bytes. The last lines give off / on ratios and the memory saved next to
(N - 1) x the cache, what one shared copy instead of N should save.

Sizes: scenes of ``--scene-size`` px cached at their full size (``cache_scale`` x 32 px views =
scene size), so the cache is ``--scenes`` x 3 x size^2 bytes (800 x 192 px: 88 MB); the views,
backbone and epochs are tiny, so the numbers are about memory, not speed.

    python bench/shared_cache.py                 # 4 trials, two sweeps
    taskset -c 1 python bench/shared_cache.py    # on one core (the trials then share it)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TRIAL_TITLE = b"ray::ImplicitFunc"  # the process title Ray gives a Tune function trainable's actor

SWEEP = """\
name: shared-cache-{mode}
datasets:
  scenes:
    root: {root}/data
    synthetic: {{scenes: {scenes}, scene_size: {size}, object_size: [40, 80], objects_per_scene: [2, 3], eval_size: 32,
                num_classes: 4, eval_train_per_class: 2, eval_val_per_class: 1, clutter: 10}}
grid:
  method: [simclr]
train: {{epochs: {epochs}, batch_size: 32, image_size: 32, backbone_width: 8, stem: cifar, workers: 0,
        input: gpu, device: cpu, cache_scale: {scale}}}
eval: {{every: 1000, linear_epochs: 0}}
seeds: [{seeds}]
resources: {{cpu: 1, max_failures: 0, shared_image_cache: {shared}}}
tracking: {{uri: "sqlite:///{root}/mlflow-{mode}.db", experiment: shared-cache-{mode}}}
storage: {root}/runs
"""


def pss_mb(pid: int) -> float:
    """A process's PSS in MB (0 when it has gone)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0.0


def descendants(root: int) -> list[int]:
    """``root`` and every process below it (from /proc's PPid fields)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def is_trial(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().startswith(TRIAL_TITLE)
    except (FileNotFoundError, ProcessLookupError):
        return False


class Sampler(threading.Thread):
    """Largest summed PSS of the trials and of the whole run, sampled every ``interval`` s."""

    def __init__(self, interval: float):
        super().__init__(daemon=True)
        self.interval, self.stop = interval, threading.Event()
        self.trials = self.node = 0.0
        self.alive = self.most_alive = 0

    def run(self) -> None:
        while not self.stop.wait(self.interval):
            pids = descendants(os.getpid())
            sizes = {pid: pss_mb(pid) for pid in pids}
            trials = [pid for pid in pids if is_trial(pid)]
            total = sum(sizes[pid] for pid in trials)
            self.most_alive = max(self.most_alive, len(trials))
            if total > self.trials:
                self.trials, self.alive = total, len(trials)
            self.node = max(self.node, sum(sizes.values()))


def write_sweeps(root: Path, args: argparse.Namespace) -> None:
    """``off.yaml`` and ``on.yaml``, and their dataset, generated now (not inside the first timed sweep)."""
    from orchestrator.config import load_sweep
    from orchestrator.plan import make_plan

    for mode, shared in (("off", False), ("on", True)):
        (root / f"{mode}.yaml").write_text(SWEEP.format(
            mode=mode, root=root, scenes=args.scenes, size=args.scene_size, epochs=args.epochs, scale=args.scene_size / 32,
            seeds=", ".join(str(i) for i in range(args.trials)), shared=str(shared).lower(),
        ))
    make_plan(load_sweep(root / "off.yaml"))


def measure(mode: str, shared: bool, root: Path, args: argparse.Namespace) -> dict:
    import ray

    from orchestrator.sweep import run_sweep

    sweep = root / f"{mode}.yaml"
    ray.init(num_cpus=args.trials, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})  # the workers import this checkout
    sampler = Sampler(args.interval)
    lines: list[str] = []
    try:
        sampler.start()
        failed = run_sweep(str(sweep), log=lines.append)
    finally:
        sampler.stop.set()
        sampler.join()
        ray.shutdown()
    if failed:
        raise SystemExit(f"{mode}: {failed} trial(s) failed:\n" + "\n".join(lines[-20:]))
    if sampler.most_alive < args.trials:
        raise SystemExit(f"{mode}: at most {sampler.most_alive} of {args.trials} trials ran at once; the sums would not be of packed trials")
    return {"trials": sampler.trials, "node": sampler.node, "alive": sampler.alive}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--scenes", type=int, default=800)
    parser.add_argument("--scene-size", type=int, default=192)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between memory samples")
    args = parser.parse_args()
    cache_mb = args.scenes * 3 * args.scene_size**2 / 2**20
    rows = {}
    with tempfile.TemporaryDirectory() as folder:
        write_sweeps(Path(folder), args)
        for mode, shared in (("off", False), ("on", True)):
            start = time.perf_counter()
            rows[mode] = measure(mode, shared, Path(folder), args)
            rows[mode]["seconds"] = time.perf_counter() - start
    print(f"{args.trials} packed input: gpu trials (1 CPU each), {args.scenes} scenes cached at {args.scene_size} px: "
          f"{cache_mb:.1f} MB per cache; peak summed PSS (MB)")
    print("| shared_image_cache | trials | node (driver + Ray + trials) | trials alive at peak | sweep s |")
    print("|---|---|---|---|---|")
    for mode in ("off", "on"):
        r = rows[mode]
        print(f"| {mode} | {r['trials']:.0f} | {r['node']:.0f} | {r['alive']} | {r['seconds']:.0f} |")
    off, on = rows["off"], rows["on"]
    print(f"off / on: trials {off['trials'] / on['trials']:.2f}x, node {off['node'] / on['node']:.2f}x")
    print(f"saved: trials {off['trials'] - on['trials']:.0f} MB, node {off['node'] - on['node']:.0f} MB; "
          f"(N - 1) x cache = {(args.trials - 1) * cache_mb:.0f} MB")


if __name__ == "__main__":
    main()

"""Trial packing, side by side in one run: aggregate training images/s of 1, 2, 4 trials on one GPU.

For each N, N identical SimCLR trials (ResNet18 on the synthetic scenes, as in
``bench/train_step.py``) run at the same time under Ray Tune with ``gpu: 1/N`` each, exactly as a
sweep packs them: each trial caps its CUDA memory at 1/N (``orchestrator.trial.cap_gpu_memory``)
and gets 1/N of the CPU budget for its data-loader workers. The N trials wait for one another
after building their models (a file barrier), so they start training together. A trial's rate is its mean images/s
over the epochs after the first (workers, cuDNN and allocators warm up in the first); the
aggregate is the sum over the N trials. ``overlap`` is the share of the timed windows that all N
trials spent running together: the sum means something only near 1.0. ``peak MiB`` is the largest
CUDA memory one trial's tensors took (what decides how many fit on a card). The header also gives
the activations autograd saves for one batch (both views), counted on the CPU under bf16 autocast:
the bulk of a trial's memory, known without a GPU.

``--runner processes`` runs the N trials as plain concurrent processes instead (no Ray: the GPU
machine of ``bench/gpu_check.sh`` has none), each capping itself exactly as a packed trial does
and with the same CPU share; ``--input gpu`` trains them with ``input: gpu``. On a CPU device
``peak MiB`` is each process's peak resident memory instead.

Defaults follow the device: on CUDA the paper's settings (ResNet18, 128 px views, batch 256;
SAMCLR paper Sec. 4.1) on 2048 scenes, 3 epochs; on a CPU a size that finishes in a few minutes on
2 cores (batch 16, 32 px, width 8, 64 scenes, 2 epochs; the numbers then only check the machinery).

    python bench/packing.py                                  # sized for the device it finds, through Ray Tune
    python bench/packing.py --runner processes --input gpu   # as bench/gpu_check.sh runs it
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from samdata.synthetic import SyntheticConfig, generate  # noqa: E402
from selfsup.training import resolve_device  # noqa: E402


def train_packed(config: dict) -> dict:
    """One of N trials sharing the GPU: cap memory as a packed trial does, wait for the others,
    train, and return its rate, timed window and peak memory."""
    from orchestrator.trial import cap_gpu_memory, gpu_memory_share
    from selfsup.config import EvalConfig, TrainConfig
    from selfsup.training import Pretraining

    args = config["args"]
    cap_gpu_memory(gpu_memory_share(config["gpu"]))
    torch.set_num_threads(config["threads"])
    cfg = TrainConfig(
        method="simclr", epochs=args["epochs"], batch_size=args["batch"], image_size=args["size"], backbone_width=args["width"],
        workers=config["workers"], device=args["device"], seed=config["seed"], input=args["input"],
    )
    from samdata.image_files import list_images

    # input: gpu sees every scene --repeat times per epoch, so that a fast epoch lasts long enough to time
    paths = list_images(config["images"]) * (args["repeat"] if args["input"] == "gpu" else 1)
    run = Pretraining(cfg, EvalConfig(every=10**6, linear_epochs=0), config["images"], [], paths=paths)
    barrier = Path(config["barrier"])
    (barrier / str(config["seed"])).touch()
    deadline = time.time() + 600
    while len(list(barrier.iterdir())) < config["trials"]:
        if time.time() > deadline:
            raise TimeoutError(f"the other packed trials did not start within 10 minutes ({barrier})")
        time.sleep(0.05)
    ends = [time.time()]
    run.fit(lambda metrics, _: ends.append(time.time()))
    timed = run.history[1:] or run.history
    start = ends[1] if len(ends) > 2 else ends[0]
    if run.device.type == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:  # Linux reports ru_maxrss in KiB
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    rate = sum(m["images_per_s"] for m in timed) / len(timed)
    return {"rate": rate, "start": start, "end": ends[-1], "peak_mib": peak}


def packed_trial(config: dict) -> None:
    """The Ray Tune trainable around ``train_packed``."""
    from ray import tune

    tune.report(train_packed(config))


def saved_activations_gib(args: argparse.Namespace, probe: int = 8) -> float:
    """Bytes autograd keeps for the backward pass of one batch (2 views), from ``probe`` images per
    view on the CPU in bf16 autocast, scaled to the batch size."""
    from selfsup.backbone import resnet18
    from selfsup.config import TrainConfig
    from selfsup.methods import method_spec

    cfg = TrainConfig(method="simclr", backbone_width=args.width, method_params={"views_in_one_batch": True})
    backbone, dim = resnet18(args.width, cfg.stem)
    model = method_spec("simclr").build(backbone, dim, cfg.settings(), cfg.epochs)
    saved: dict[tuple, int] = {}

    def keep(t: torch.Tensor) -> torch.Tensor:
        saved[(t.data_ptr(), t.dtype, tuple(t.shape))] = t.numel() * t.element_size()
        return t

    views = [torch.randn(probe, 3, args.size, args.size) for _ in range(2)]
    with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t), torch.autocast("cpu", dtype=torch.bfloat16):
        model(views)
    return sum(saved.values()) / probe * args.batch / 2**30


def trial_space(n: int, images: Path, args: argparse.Namespace, cuda: bool, storage: str) -> dict:
    """What every one of the N trials gets (all but its seed): its GPU share, CPU share and the barrier."""
    cpus = args.cpus / n
    barrier = Path(storage) / f"barrier{n}"
    barrier.mkdir(parents=True)
    return {
        "trials": n,
        "barrier": str(barrier),
        "args": vars(args) | {"json": None},
        "images": str(images),
        "gpu": 1 / n if cuda else 0,
        "workers": args.workers if args.workers is not None else max(0, int(cpus) - 1),
        "threads": 1 if cuda else max(1, int(cpus)),
    }


def run_packed(n: int, images: Path, args: argparse.Namespace, cuda: bool, storage: str) -> list[dict]:
    """N trials through Ray Tune with ``gpu: 1/N`` each, as a sweep packs them."""
    from ray import tune

    trainable = tune.with_resources(packed_trial, {"cpu": args.cpus / n, "gpu": 1 / n if cuda else 0})
    space = {**trial_space(n, images, args, cuda, storage), "seed": tune.grid_search(list(range(n)))}
    tuner = tune.Tuner(trainable, param_space=space, run_config=tune.RunConfig(name=f"pack{n}", storage_path=storage, verbose=0))
    results = tuner.fit()
    if results.errors:
        raise RuntimeError(f"{n} packed trials: {results.errors[0]}")
    return [r.metrics for r in results]


def run_processes(n: int, images: Path, args: argparse.Namespace, cuda: bool, storage: str) -> list[dict]:
    """N trials as plain concurrent processes (no Ray), each given what a packed trial gets."""
    space = trial_space(n, images, args, cuda, storage)
    procs = []
    for seed in range(n):
        config = Path(storage) / f"pack{n}_trial{seed}.json"
        config.write_text(json.dumps({**space, "seed": seed}))
        procs.append((config, subprocess.Popen([sys.executable, __file__, "--child", str(config)])))
    failed = [(config, proc.wait()) for config, proc in procs]
    failed = [(config, rc) for config, rc in failed if rc != 0]
    if failed:
        raise RuntimeError(f"{n} packed processes: {len(failed)} failed (first: {failed[0][0].name}, exit code {failed[0][1]})")
    return [json.loads(config.with_suffix(".out.json").read_text()) for config, _ in procs]


def overlap(metrics: list[dict]) -> float:
    """Time all trials ran together / time from the first timed start to the last end."""
    together = min(m["end"] for m in metrics) - max(m["start"] for m in metrics)
    span = max(m["end"] for m in metrics) - min(m["start"] for m in metrics)
    return max(0.0, together) / span if span > 0 else 1.0


CUDA_DEFAULTS = {"batch": 256, "size": 128, "width": 64, "scenes": 2048, "epochs": 3, "repeat": 8}
CPU_DEFAULTS = {"batch": 16, "size": 32, "width": 8, "scenes": 64, "epochs": 2, "repeat": 1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--trials", default="1,2,4", help="trial counts to compare, comma-separated")
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--size", type=int, default=None)
    parser.add_argument("--width", type=int, default=None, help="ResNet18 width (64 is the real one)")
    parser.add_argument("--scenes", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--input", choices=["cpu", "gpu"], default="cpu", help="the trials' training input")
    parser.add_argument("--repeat", type=int, default=None, help="with --input gpu: every scene this many times per epoch")
    parser.add_argument("--runner", choices=["ray", "processes"], default="ray")
    parser.add_argument("--cpus", type=int, default=os.cpu_count(), help="CPU budget shared by the trials of one run")
    parser.add_argument("--workers", type=int, default=None, help="data-loader workers per trial (default: its CPU share - 1)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows to this file")
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)  # one trial of --runner processes
    args = parser.parse_args()
    if args.child is not None:
        result = train_packed(json.loads(args.child.read_text()))
        args.child.with_suffix(".out.json").write_text(json.dumps(result))
        return
    counts = [int(n) for n in args.trials.split(",")]
    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    args.device = device.type
    for key, value in (CUDA_DEFAULTS if cuda else CPU_DEFAULTS).items():
        if getattr(args, key) is None:
            setattr(args, key, value)

    with tempfile.TemporaryDirectory() as tmp:
        paths = generate(Path(tmp) / "data", SyntheticConfig(scenes=args.scenes, scene_size=256, object_size=(64, 112), eval_train_per_class=1, eval_val_per_class=1))
        if args.runner == "processes":
            results = {n: run_processes(n, paths.images, args, cuda, f"{tmp}/runs") for n in counts}
        else:
            import ray

            pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
            # every trial of the largest N runs at once: CPUs may be oversubscribed, the GPU is one
            ray.init(num_cpus=max(args.cpus, max(counts)), num_gpus=1 if cuda else 0, include_dashboard=False, log_to_driver=False,
                     runtime_env={"env_vars": {"PYTHONPATH": pythonpath}})
            try:
                results = {n: run_packed(n, paths.images, args, cuda, f"{tmp}/ray_results") for n in counts}
            finally:
                ray.shutdown()
    name = torch.cuda.get_device_name() if cuda else "cpu"
    runner = "Ray Tune" if args.runner == "ray" else "plain processes"
    print(f"Packing on {name} ({runner}): ResNet18 width {args.width}, {args.size} px views, batch {args.batch}, {args.scenes} scenes, "
          f"input {args.input}, {args.epochs} epochs (first untimed), CPU budget {args.cpus}")
    activations = saved_activations_gib(args)
    print(f"activations saved for backward per batch (2 views, bf16, counted on the CPU): {activations:.2f} GiB")
    memory = "peak MiB" if cuda else "peak RSS MiB"
    print(f"{'trials':>6} {'gpu/trial':>9} {'per trial (images/s)':>24} {'aggregate':>10} {'vs 1 trial':>10} {'overlap':>8} {memory:>12}")
    base = sum(m["rate"] for m in results[counts[0]])
    rows = []
    for n, metrics in results.items():
        rates = sorted(m["rate"] for m in metrics)
        total = sum(rates)
        peak = max(m["peak_mib"] for m in metrics)
        rows.append({"trials": n, "gpu_per_trial": 1 / n if cuda else 0, "per_trial": rates, "aggregate": total,
                     "vs_one": total / base, "overlap": overlap(metrics), "peak_mib": peak})
        print(f"{n:>6} {(1 / n if cuda else 0):>9.2f} {' '.join(f'{r:.0f}' for r in rates):>24} {total:>10.1f} "
              f"{total / base:>9.2f}x {overlap(metrics):>8.2f} {peak:>12.0f}")
    if args.json is not None:
        setup = {"device": name, "runner": runner, "batch": args.batch, "size": args.size, "width": args.width, "input": args.input,
                 "memory": memory, "activations_gib": activations}
        args.json.write_text(json.dumps({"setup": setup, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()

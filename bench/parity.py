"""Accuracy parity: our training (``selfsup.training.Pretraining``) against independent reference
loops written from lightly 1.6's benchmark (``bench/parity_reference.py``), per method, over seeds.

Both loops train ``selfsup.backbone.resnet18(width, stem)`` on the same image folder and both
backbones go through the same evaluation code (``selfsup.evaluation``: KNN and the linear probe on
the same eval set). Our side is the method's ``lightly`` preset (``our_config``), so the recipes
match value for value; ``KNOWN_DIFFERENCES`` lists what still differs. ``--ours KEY=VALUE`` changes
one method setting on our side only, to test a candidate cause of a gap.

Output: per method, ours and reference mean ± sample std over seeds and the paired difference
(ours - reference, paired by seed) with a t-based 95 % interval; FLAG where |diff| > 2 points and
the interval excludes 0; NOT LEARNING where an arm does not beat the untrained backbone (such a
row cannot show parity). The table also goes to ``--out`` (Markdown).

    python bench/parity.py --fashion-root data/fashion-mnist --scenes 2048 --epochs 10 --backbone-width 16 \
        --eval-train-per-class 100 --eval-val-per-class 200        # simclr, moco, byol; 3 seeds; ~45 min on 2 cores
    python bench/parity.py --methods dino,swav ...                 # the multi-crop methods
    python bench/parity.py --quick                                 # 1 seed, 1 epoch, tiny data: a smoke test
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shlex
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from selfsup.config import EvalConfig, TrainConfig  # noqa: E402
from selfsup.data.evalsets import build_eval_set  # noqa: E402
from samdata.synthetic import SyntheticConfig, generate  # noqa: E402
from selfsup.statistics import mean_std, paired_difference  # noqa: E402

FLAG_POINTS = 2.0

KNOWN_DIFFERENCES = {
    "all": "ours: per-step cosine lr, our ViewSampler crops and Photometric (PIL bilinear resize); reference: "
    "per-epoch cosine (Lightning's CosineAnnealingLR), lightly's transforms (torchvision RandomResizedCrop)",
    "dino": "ours: the teacher head starts from the student's weights (DINO's code); reference: an "
    "independently initialised teacher head (lightly's benchmark)",
}
"""What differs between the sides with our ``lightly`` preset; everything else is the same recipe."""


@dataclass(frozen=True)
class Settings:
    """Everything both sides share. Defaults chosen by a pilot on 2 shared CPU cores (simclr, 2 seeds):
    ~2 min per run at one thread under load; seed-to-seed std 0.6-1.2 points on 2000 val images.
    (10 classes, width 16, 2 x 2048 scenes: 4 min per run and accuracy near chance, 12 %.)"""

    image_size: int = 32
    scene_size: int = 64
    object_size: tuple[int, int] = (24, 40)
    scenes: int = 1024
    num_classes: int = 4
    eval_train_per_class: int = 250
    eval_val_per_class: int = 500
    epochs: int = 10
    batch_size: int = 128
    backbone_width: int = 8
    stem: str = "cifar"
    knn_k: int = 50
    linear_epochs: int = 50
    ours: tuple[tuple[str, object], ...] = ()
    """Method settings changed on our side only (``--ours KEY=VALUE``), to test one candidate cause
    of a gap at a time; empty: our ``lightly`` preset as it is."""

    def fashion_mnist(self, root: Path, items_root: Path) -> tuple[Path, Path]:
        """Plain Fashion-MNIST photos as folders, for a regime where every method learns on 2 CPU cores
        (the drawn-shape and tinted scenes did not: no trained arm beat the untrained backbone):
        ``scenes`` pretraining images from the train split, an eval set of ``eval_train_per_class``
        other train images and ``eval_val_per_class`` test images per class. Deterministic (seed 0)."""
        import numpy as np
        from torchvision.datasets import FashionMNIST

        images, evaluation = root / "images", root / "eval"
        if (root / "done").is_file():
            return images, evaluation
        try:
            train, test = FashionMNIST(str(items_root), train=True), FashionMNIST(str(items_root), train=False)
        except RuntimeError as err:
            raise SystemExit(f"--fashion-root {items_root}: {err} (python -m samdata prepare fashion-mnist ...)") from None
        rng = np.random.default_rng(0)
        order = rng.permutation(len(train))
        images.mkdir(parents=True, exist_ok=True)
        for i in order[: self.scenes]:
            train[int(i)][0].convert("RGB").save(images / f"{int(i):05d}.png")
        picks = {"train": (train, order[self.scenes :], self.eval_train_per_class), "val": (test, rng.permutation(len(test)), self.eval_val_per_class)}
        for split, (dataset, candidates, per_class) in picks.items():
            counts = [0] * len(train.classes)
            for i in candidates:
                image, label = dataset[int(i)]
                if counts[label] < per_class:
                    folder = evaluation / split / train.classes[label].replace("/", "-")
                    folder.mkdir(parents=True, exist_ok=True)
                    image.convert("RGB").save(folder / f"{int(i):05d}.png")
                    counts[label] += 1
        (root / "done").write_text("")
        return images, evaluation

    def synthetic(self) -> SyntheticConfig:
        return SyntheticConfig(
            num_classes=self.num_classes, scenes=self.scenes, scene_size=self.scene_size,
            object_size=self.object_size, objects_per_scene=(2, 3), eval_size=self.image_size,
            eval_train_per_class=self.eval_train_per_class, eval_val_per_class=self.eval_val_per_class, clutter=20,
        )

    def evaluation(self) -> EvalConfig:
        return EvalConfig(every=10**6, knn_k=self.knn_k, linear_epochs=self.linear_epochs, batch_size=256, linear_batch_size=128)


QUICK = dict(scenes=256, eval_train_per_class=10, eval_val_per_class=10, epochs=1, batch_size=64, backbone_width=8, linear_epochs=2)


def our_config(method: str, settings: Settings, seed: int) -> TrainConfig:
    """Our side of the comparison: the method's ``lightly`` preset (lightly's benchmark values), blur
    off as on the reference side, the shared data and size settings, plus ``settings.ours``. Views
    made on the CPU, no workers."""
    return TrainConfig(
        method=method, preset="lightly", method_params={"blur_prob": 0.0, **dict(settings.ours)},
        epochs=settings.epochs, batch_size=settings.batch_size, image_size=settings.image_size,
        backbone_width=settings.backbone_width, stem=settings.stem, workers=0, seed=seed, device="cpu", input="cpu",
    )


def evaluate(backbone: torch.nn.Module, eval_root: Path, settings: Settings, seed: int) -> dict[str, float]:
    """The one evaluation both sides go through: KNN and linear-probe top-1 (in %) on the eval set."""
    from selfsup.evaluation import extract, knn_top1, linear_probe

    eval_set = build_eval_set("folder", eval_root, name="shapes")
    cfg = settings.evaluation()
    device = torch.device("cpu")
    features = extract(backbone, eval_set, cfg, settings.image_size, device, 0)
    return {
        "knn": 100 * knn_top1(features, eval_set.num_classes, cfg.knn_k, cfg.knn_t),
        "linear": 100 * linear_probe(backbone, features, eval_set, cfg, settings.image_size, device, 0, seed).last,
    }


def run_job(job: tuple[str, str, int, Settings, str, str]) -> dict:
    """One pretraining + evaluation, in a worker process with one thread."""
    method, side, seed, settings, image_dir, eval_dir = job
    torch.set_num_threads(1)
    start = time.perf_counter()
    if side == "untrained":  # the floor pretraining must beat: random weights, same evaluation
        from selfsup.backbone import resnet18

        torch.manual_seed(seed)
        backbone, _ = resnet18(settings.backbone_width, settings.stem)
    elif side == "ours":
        from selfsup.training import Pretraining

        run = Pretraining(our_config(method, settings, seed), settings.evaluation(), image_dir, eval_sets=())
        run.fit()
        backbone = run.model.backbone
    else:
        from parity_reference import RefSettings, train_reference

        ref = RefSettings(settings.image_size, settings.batch_size, settings.epochs, settings.backbone_width, settings.stem)
        backbone = train_reference(method, ref, seed, image_dir)
    train_s = time.perf_counter() - start
    metrics = evaluate(backbone, Path(eval_dir), settings, seed)
    result = {"method": method, "side": side, "seed": seed, **metrics, "train_s": train_s, "total_s": time.perf_counter() - start}
    print(f"  {method:6s} {side:9s} seed {seed}: knn {metrics['knn']:.2f}  linear {metrics['linear']:.2f}  "
          f"({train_s:.0f} s train, {result['total_s']:.0f} s total)", flush=True)
    return result


def _setting(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` with VALUE read as YAML (true, 0.1, [0.2, 1.0] ...)."""
    import yaml

    key, sep, value = text.partition("=")
    if not sep:
        raise SystemExit(f"--ours {text!r}: expected KEY=VALUE")
    return key.strip(), yaml.safe_load(value)


def _pm(values: list[float]) -> str:
    mean, std = mean_std(values)
    return f"{mean:.2f}" if std is None else f"{mean:.2f} ± {std:.2f}"


def _delta(ours: list[float], ref: list[float]) -> tuple[str, bool]:
    d = paired_difference(ours, ref)
    flagged = d.excludes_zero and abs(d.mean) > FLAG_POINTS
    text = f"{d.mean:+.2f}" if d.low is None else f"{d.mean:+.2f} [{d.low:+.2f}, {d.high:+.2f}]"
    return text + (" **FLAG**" if flagged else ""), flagged


def _learning(results: list[dict], floor: dict) -> list[str]:
    """A warning for every (method, side) whose mean KNN is not above the untrained backbone's: a parity
    of arms that learned nothing says nothing about the implementations."""
    lines = []
    for method, side in sorted({(r["method"], r["side"]) for r in results}):
        knn = [r["knn"] for r in results if (r["method"], r["side"]) == (method, side)]
        if sum(knn) / len(knn) <= floor["knn"]:
            lines.append(f"**NOT LEARNING**: {method} {side} KNN {sum(knn) / len(knn):.2f} <= untrained {floor['knn']:.2f}: "
                         "this row cannot show parity; train longer or on easier data.")
    return lines + ([""] if lines else [])


def table(results: list[dict], methods: list[str], seeds: list[int]) -> tuple[str, list[str]]:
    """The Markdown table and the flagged (method, metric) names."""
    lines = [
        "| method | ours KNN | reference KNN | Δ KNN [95 % CI] | ours linear | reference linear | Δ linear [95 % CI] |",
        "|---|---|---|---|---|---|---|",
    ]
    flags = []
    for method in methods:
        cells = [method]
        for metric in ("knn", "linear"):
            by = {side: [next(r[metric] for r in results if (r["method"], r["side"], r["seed"]) == (method, side, s)) for s in seeds]
                  for side in ("ours", "reference")}
            delta, flagged = _delta(by["ours"], by["reference"])
            cells += [_pm(by["ours"]), _pm(by["reference"]), delta]
            if flagged:
                flags.append(f"{method} {metric}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines), flags


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default="simclr,moco,byol", help="comma-separated: simclr, moco, byol, dino, swav")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1, each run by both loops")
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel (one thread each)")
    parser.add_argument("--quick", action="store_true", help="1 seed, 1 epoch, tiny data: an end-to-end smoke test")
    parser.add_argument("--data", default=None, help="where the data are generated (default: a temporary folder)")
    parser.add_argument("--fashion-root", default=None, help="pretrain and evaluate on plain Fashion-MNIST photos from this "
                        "folder (`python -m samdata prepare fashion-mnist --root DIR ...`) instead of the drawn-shape scenes")
    parser.add_argument("--ours", action="append", default=[], metavar="KEY=VALUE",
                        help="a method setting changed on our side only, e.g. views_in_one_batch=true (repeatable)")
    parser.add_argument("--out", default=None, help="also write the table (Markdown) here")
    for name, field in Settings.__dataclass_fields__.items():
        if field.type in ("int", int):
            parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=None)
    args = parser.parse_args(argv)

    settings = Settings(**QUICK) if args.quick else Settings()
    overrides = {k: getattr(args, k) for k in Settings.__dataclass_fields__ if k != "ours" and getattr(args, k, None) is not None}
    settings = replace(settings, **overrides, ours=tuple(_setting(text) for text in args.ours))
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    seeds = list(range(1 if args.quick else args.seeds))
    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0] if argv is None else "bench/parity.py", *(sys.argv[1:] if argv is None else argv)])

    with tempfile.TemporaryDirectory(prefix="parity-") as tmp:
        data_root = Path(args.data) if args.data else Path(tmp) / "scenes"
        start = time.perf_counter()
        if args.fashion_root:
            images, evaluation = settings.fashion_mnist(data_root, Path(args.fashion_root))
        else:
            paths = generate(data_root, settings.synthetic())
            images, evaluation = paths.images, paths.eval
        print(f"data: {data_root} ({time.perf_counter() - start:.0f} s)", flush=True)
        jobs = [(m, side, s, settings, str(images), str(evaluation)) for m in methods for s in seeds for side in ("ours", "reference")]
        jobs.insert(0, ("-", "untrained", 0, settings, str(images), str(evaluation)))
        os.environ["OMP_NUM_THREADS"] = "1"
        start = time.perf_counter()
        if args.jobs > 1:
            with mp.get_context("spawn").Pool(args.jobs, maxtasksperchild=1) as pool:
                results = list(pool.imap_unordered(run_job, jobs))
        else:
            results = [run_job(j) for j in jobs]
        wall = time.perf_counter() - start

    floor = next(r for r in results if r["side"] == "untrained")
    results = [r for r in results if r["side"] != "untrained"]
    body, flags = table(results, methods, seeds)
    settings_line = ", ".join(f"{k}={v}" for k, v in asdict(settings).items())
    ours_line = ", ".join(f"{k}={v}" for k, v in asdict(our_config(methods[0], settings, 0).resolved()).items() if k not in ("method", "seed"))
    text = "\n".join([
        f"# Accuracy parity: ours vs lightly-benchmark reference loops ({len(seeds)} seed{'s' * (len(seeds) > 1)}: {seeds})",
        "",
        f"Command: `{command}`",
        "",
        f"Data: {'plain Fashion-MNIST photos (' + args.fashion_root + ')' if args.fashion_root else 'drawn-shape scenes (samdata.synthetic)'}; settings: {settings_line}",
        "",
        f"Our TrainConfig (the first method's, `lightly` preset resolved): {ours_line}",
        "",
        "Top-1 in %, mean ± sample std over seeds; Δ = ours − reference, paired by seed, t-based 95 % CI. "
        f"**FLAG**: |Δ| > {FLAG_POINTS:g} points and the CI excludes 0.",
        "",
        body,
        "",
        "Known differences (see `KNOWN_DIFFERENCES`):",
        "",
        *[f"- {k}: {KNOWN_DIFFERENCES[k]}" for k in ["all", *methods] if k in KNOWN_DIFFERENCES],
        "",
        f"Untrained backbone (seed 0, same evaluation): KNN {floor['knn']:.2f}, linear {floor['linear']:.2f}.",
        "",
        *_learning(results, floor),
        "",
        f"Wall time: {wall / 60:.1f} min for {len(jobs)} runs with {args.jobs} jobs "
        f"(mean per run: {sum(r['total_s'] for r in results) / len(results):.0f} s).",
        "",
        ("Flagged: " + ", ".join(flags)) if flags else f"No gap flagged (|Δ| > {FLAG_POINTS:g} with a CI excluding 0).",
    ])
    print()
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Seeds 0-5 of SimCLR, Felzenszwalb and ground-truth regions at c 1.3 on fashion_scenes: the 30-trial
run's seeds 0-2 (commit 45d5605) and this run's seeds 3-5 (commit ddf9625, the same settings; seeds
0-2 of SimCLR reproduce exactly on the later code, see ../fashion_scenes_rounds_2026-11-30), paired by
seed, with t-based 95 % intervals.  python docs/results/fashion_scenes_seeds345_2026-11-30/six_seeds.py"""

from pathlib import Path

import numpy as np
from scipy import stats

HERE = Path(__file__).parent
RUNS = (HERE.parent / "fashion_scenes_2026-11-30_lr0.1" / "summary.md", HERE / "summary.md")
ARMS = {"simclr": ("simclr", "-", "-"), "felzenszwalb": ("samclr", "felzenszwalb", "1.3"), "ground_truth": ("samclr", "ground_truth", "1.3")}


def rows(path: Path) -> list[dict[str, str]]:
    lines = [line for line in path.read_text().splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    return [dict(zip(header, (c.strip() for c in line.strip("|").split("|")))) for line in lines[2:]]


def interval(d: np.ndarray) -> str:
    half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
    return f"{d.mean():+.1f} [{d.mean() - half:+.1f}, {d.mean() + half:+.1f}], n = {len(d)}"


every = [r for path in RUNS for r in rows(path)]
for metric in ("knn_top1/fashion", "linear_top1/fashion"):
    score = {arm: {} for arm in ARMS}
    for r in every:
        for arm, (method, masker, c) in ARMS.items():
            if (r["method"], r["masker"], r["c"]) == (method, masker, c):
                score[arm][int(r["seed"])] = 100 * float(r[metric])
    seeds = sorted(set.intersection(*(set(s) for s in score.values())))
    a = {arm: np.array([score[arm][s] for s in seeds]) for arm in ARMS}
    print(f"{metric}, seeds {seeds}: " + ", ".join(f"{arm} {v.mean():.1f} ± {v.std(ddof=1):.1f}" for arm, v in a.items()))
    print(f"  felzenszwalb - simclr:  {interval(a['felzenszwalb'] - a['simclr'])}")
    print(f"  ground_truth - simclr:  {interval(a['ground_truth'] - a['simclr'])}")
    print(f"  felzenszwalb - ground_truth: {interval(a['felzenszwalb'] - a['ground_truth'])}")
    print(f"  felzenszwalb's gain over simclr minus half the ground truth's: {interval(a['felzenszwalb'] - (a['ground_truth'] + a['simclr']) / 2)}")

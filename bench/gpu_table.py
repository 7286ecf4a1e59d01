"""The one table ``bench/gpu_check.sh`` ends with, from the results folder its steps wrote.

Reads ``preflight.log`` (device, versions), ``train.json`` (``bench/train_step.py --json``),
``packing.json`` (``bench/packing.py --json``), ``masks.log`` (``bench/masks.py``'s own output,
quoted as it is: that script's format is its own) and ``tests.log`` (pytest's summary line), and
each step's ``NAME.rc`` (exit code, seconds). A step that failed shows its exit code and the end of its log.

    python bench/gpu_table.py RESULTS_DIR [--seconds N]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

STEPS = ("train", "packing", "masks", "tests")


def status(results: Path, name: str) -> tuple[int | None, int | None]:
    """(exit code, seconds) of a step; (None, None) when it did not run."""
    path = results / f"{name}.rc"
    if not path.exists():
        return None, None
    rc, seconds = path.read_text().split()
    return int(rc), int(seconds)


def log_tail(results: Path, name: str, lines: int = 6) -> list[str]:
    path = results / f"{name}.log"
    text = path.read_text(errors="replace").splitlines() if path.exists() else []
    return [f"    {line}" for line in text[-lines:]]


def failure(results: Path, name: str) -> list[str]:
    """Lines saying a step failed (or did not finish in its limit), with its log's end; [] if it passed."""
    rc, seconds = status(results, name)
    if rc == 0:
        return []
    if rc is None:
        return [f"**{name}: did not run**"]
    why = "ran out of its time limit" if rc in (124, 137) else f"failed with exit code {rc}"
    return [f"**{name}: {why} after {seconds} s** (log: {results / (name + '.log')}):", "", *log_tail(results, name), ""]


def training(results: Path) -> list[str]:
    path = results / "train.json"
    if not path.exists():
        return failure(results, "train")
    data = json.loads(path.read_text())
    s = data["setup"]
    out = [f"### Training ({s['device']}; ResNet18, {s['size']} px views, batch {s['batch']}, {s['precision']}, "
           f"{s['workers']} workers, {s['scenes']} scenes, x{s.get('repeat', 1)} per epoch with input: gpu)", "",
           "| run | images/s | cache build s |", "|---|---:|---:|"]
    for row in data["training"]:
        build = f"{row['cache_build_s']:.1f}" if "cache_build_s" in row else ""
        out.append(f"| {row['row']} | {row['images_per_s']:.1f} | {build} |")
    if data["ratios"]:
        out += ["", "| ratio | |", "|---|---:|"]
        out += [f"| {key} | {value:.3f}x |" for key, value in data["ratios"].items()]
    if data["input_alone"]:
        out += ["", "| input pipeline alone (one core) | images/s |", "|---|---:|"]
        out += [f"| {key} | {value:.1f} |" for key, value in data["input_alone"].items()]
    return out + [""] + failure(results, "train")


def packing(results: Path) -> list[str]:
    path = results / "packing.json"
    if not path.exists():
        return failure(results, "packing")
    data = json.loads(path.read_text())
    s = data["setup"]
    out = [f"### Packing ({s['runner']}, input {s['input']}, batch {s['batch']}, {s['size']} px, width {s['width']}; "
           f"activations per batch {s['activations_gib']:.2f} GiB)", "",
           f"| trials | gpu/trial | per trial images/s | aggregate | vs 1 trial | overlap | {s['memory']} |",
           "|---:|---:|---|---:|---:|---:|---:|"]
    for r in data["rows"]:
        per = " ".join(f"{x:.0f}" for x in r["per_trial"])
        out.append(f"| {r['trials']} | {r['gpu_per_trial']:.2f} | {per} | {r['aggregate']:.1f} | {r['vs_one']:.2f}x | "
                   f"{r['overlap']:.2f} | {r['peak_mib']:.0f} |")
    return out + [""] + failure(results, "packing")


def masks(results: Path) -> list[str]:
    rc, _ = status(results, "masks")
    if rc != 0:
        return ["### HQ-SAM: ours vs the reference loop", ""] + failure(results, "masks")
    text = (results / "masks.log").read_text(errors="replace").splitlines()
    kept = [line for line in text if line.strip() and not line.lstrip().startswith(("warnings.", "return ")) and "Warning" not in line]
    return ["### HQ-SAM: ours vs the reference loop (bench/masks.py's own lines)", "", "```", *kept, "```", ""]


def tests(results: Path) -> list[str]:
    rc, _ = status(results, "tests")
    path = results / "tests.log"
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()] if path.exists() else []
    summary = lines[-1].strip("= ") if lines else "no output"
    out = ["### CUDA tests (pytest -m cuda)", "", f"{summary}", ""]
    return out + (failure(results, "tests") if rc not in (0, None) else [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--seconds", type=int, default=None, help="wall time of the whole check")
    args = parser.parse_args()
    preflight = (args.results / "preflight.log").read_text().splitlines() if (args.results / "preflight.log").exists() else ["?"]
    out = [f"## gpu_check: {preflight[0]}" + (f", {args.seconds} s in all" if args.seconds is not None else ""), ""]
    out += [f"- {line}" for line in preflight[1:]]
    steps = ", ".join(f"{name} {'ok' if status(args.results, name)[0] == 0 else 'FAILED'} ({status(args.results, name)[1]} s)"
                      for name in STEPS)
    out += [f"- steps: {steps}", ""]
    out += training(args.results) + packing(args.results) + masks(args.results) + tests(args.results)
    print("\n".join(out))


if __name__ == "__main__":
    main()

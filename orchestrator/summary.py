"""Stage 4: the results table of a sweep, read back from MLflow (trial x eval set, KNN and linear),
and the pretraining images the sweep had to skip."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path

from samdata.storage import Location, location
from orchestrator.readable_images import MASKER_ERROR
from orchestrator.tracking import TRIAL_TAG, child_runs

SETTINGS = ("method", "encoder", "sampling", "masker", "c", "temperature", "epochs", "seed")
SKIPPED = "skipped_images"
"""Parent-run metric and tag: how many pretraining images could not be read (the tag names a few)."""
Skipped = Mapping[str, Mapping[str, str]]
"""Dataset -> {relative path: reason} of its images no trial trains on (unreadable, or a masker failed on them)."""


def summary_rows(uri: str, experiment_id: str, parent_id: str) -> list[dict[str, str]]:
    """One row per child run: its settings, status, final KNN and linear top-1 per eval set."""
    rows = []
    for run in child_runs(uri, experiment_id, parent_id):
        row = {"trial": run.data.tags.get(TRIAL_TAG, run.info.run_name), "status": run.info.status}
        row.update({k: run.data.params.get(k, "") for k in SETTINGS})
        for name, value in sorted(run.data.metrics.items()):
            if name.startswith(("knn_top1/", "linear_top1/", "linear_best_top1/")) or name == "train/loss":
                row[name] = f"{value:.4f}"
        rows.append(row)
    return sorted(rows, key=lambda r: r["trial"])


def _columns(rows: Sequence[dict[str, str]]) -> list[str]:
    columns = ["trial", *SETTINGS, "status"]
    metrics = sorted({k for r in rows for k in r if "/" in k}, key=lambda k: (not k.startswith("knn"), k))
    return columns + metrics


def markdown(rows: Sequence[dict[str, str]]) -> str:
    columns = _columns(rows)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(r.get(c, "") for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def to_csv(rows: Sequence[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=_columns(rows), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def skipped_examples(skipped: Skipped, limit: int = 5) -> list[str]:
    """The first ``limit`` skipped images as ``dataset/path (reason)``."""
    found = [f"{name}/{path} ({reason})" for name, bad in skipped.items() for path, reason in bad.items()]
    return found[:limit]


def skipped_markdown(skipped: Skipped, limit: int = 5) -> str:
    """A line per dataset with unreadable images: how many, and the first few; '' when none."""
    total = sum(len(bad) for bad in skipped.values())
    if not total:
        return ""
    masker = sum(r.startswith(MASKER_ERROR) for bad in skipped.values() for r in bad.values())
    unreadable = f"{total} unreadable pretraining images were left out" if not masker else (
        f"{total} pretraining images were left out of every trial of their dataset: {total - masker} unreadable, "
        f"{masker} a masker failed on"
    )
    lines = [f"{SKIPPED}: {unreadable}"]
    for name, bad in skipped.items():
        if bad:
            more = f", and {len(bad) - limit} more" if len(bad) > limit else ""
            lines.append(f"- {name}: {len(bad)}: " + ", ".join(f"{p} ({r})" for p, r in list(bad.items())[:limit]) + more)
    return "\n".join(lines) + "\n"


def write_summary(rows: Sequence[dict[str, str]], folder: str | Path | Location, skipped: Skipped | None = None) -> dict[str, bytes]:
    """Write summary.md (with the unreadable images, if any) and summary.csv into ``folder`` (a local
    folder or a URI); returns the files (name -> content), e.g. to log them to MLflow."""
    extra = skipped_markdown(skipped or {})
    files = {"summary.md": (markdown(rows) + ("\n" + extra if extra else "")).encode(), "summary.csv": to_csv(rows).encode()}
    for name, data in files.items():
        (location(folder) / name).write_bytes(data)
    return files

"""Stage 4: the results table of a sweep, read back from MLflow (a row per trial: the settings that
tell the trials apart, final KNN and linear top-1 per eval set), and the pretraining images the
sweep had to skip.

Its columns are the trial, its method, and the settings that tell the trials apart
(``orchestrator.plan.distinguishing_settings`` over the trials' MLflow params): every setting that
varies among one method's trials (a grid axis, the seeds, the frozen encoders: a new axis is a
column with no change here), and ``sampling``, ``masker``, ``c``, ``temperature`` when they vary
at all; not the settings a method's preset alone makes differ (DINO's head sizes beside SimCLR's).
Written by ``orchestrator.table_format``, as the report is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from samdata.storage import Location, location
from orchestrator.plan import distinguishing_settings
from orchestrator.readable_images import MASKER_ERROR
from orchestrator.table_format import csv_text, markdown as markdown_table
from orchestrator.tracking import TRIAL_TAG, child_runs

FIRST = ("trial", "method")
"""The columns every summary has, before the settings that vary (a row names its method even when
every trial shares it)."""
SKIPPED = "skipped_images"
"""Parent-run metric and tag: how many pretraining images could not be read (the tag names a few)."""
Skipped = Mapping[str, Mapping[str, str]]
"""Dataset -> {relative path: reason} of its images no trial trains on (unreadable, or a masker failed on them)."""


def _is_metric(column: str) -> bool:
    return "/" in column  # knn_top1/<set>, linear_top1/<set>, train/loss; no setting's name has one


def summary_rows(uri: str, experiment_id: str, parent_id: str) -> list[dict[str, str]]:
    """One row per child run: its trial key, method and the settings that tell the runs apart
    (``distinguishing_settings``), status, final KNN and linear top-1 per eval set, last training loss."""
    runs = child_runs(uri, experiment_id, parent_id)
    settings = [k for k in distinguishing_settings([run.data.params for run in runs]) if k not in FIRST]
    rows = []
    for run in runs:
        row = {"trial": run.data.tags.get(TRIAL_TAG, run.info.run_name), "method": run.data.params.get("method", "")}
        row.update({k: run.data.params.get(k, "") for k in settings})
        row["status"] = run.info.status
        for name, value in sorted(run.data.metrics.items()):
            if name.startswith(("knn_top1/", "linear_top1/", "linear_best_top1/")) or name == "train/loss":
                row[name] = f"{value:.4f}"
        rows.append(row)
    return sorted(rows, key=lambda r: r["trial"])


def _columns(rows: Sequence[dict[str, str]]) -> list[str]:
    """The trial, its method, the settings the rows hold (in ``summary_rows``' order), the status,
    then the metrics: KNN first, then by name."""
    settings = list(dict.fromkeys(k for r in rows for k in r if not _is_metric(k) and k not in (*FIRST, "status")))
    first = [k for k in FIRST if any(k in r for r in rows)]
    metrics = sorted({k for r in rows for k in r if _is_metric(k)}, key=lambda k: (not k.startswith("knn"), k))
    return [*first, *settings, "status", *metrics]


def markdown(rows: Sequence[dict[str, str]]) -> str:
    columns = _columns(rows)
    return markdown_table(columns, [[r.get(c, "") for c in columns] for r in rows])


def to_csv(rows: Sequence[dict[str, str]]) -> str:
    columns = _columns(rows)
    return csv_text(columns, [[r.get(c, "") for c in columns] for r in rows])


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

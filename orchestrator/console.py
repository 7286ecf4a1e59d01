"""What ``python -m orchestrator.sweep`` shows a person: one line per stage, a compact trial table,
the results; everything Ray, Ray Data and Tune print goes to ``sweep.log`` in the run folder.

A ``Console`` is the sweep's ``log``. Inside ``Console.captured()`` (the CLI without ``-v``) the
process's stdout and stderr, file descriptors 1 and 2 included, write to a log file: Ray's
start-up lines, Ray Data's operator logs, Tune's status tables, the trials' own output relayed by
Ray (``log_to_driver``), warnings. Only what the console is given reaches the terminal:

- the plan in one line (``show_plan``; the whole plan goes to the log file);
- per region store a progress bar with its ETA (in place on a terminal, every ``EVERY_S`` seconds
  otherwise), then its summary line (``store_progress``; the store's detail lines go to the file);
- the trials: ``orchestrator.trial_table.TrialTable``, a Tune callback, prints a table of the axes that vary, the epoch and
  the latest KNN top-1 of each trial (at most every ``EVERY_S`` seconds, and when a trial ends);
  a trial's error is printed in full;
- the sweep's own lines (purity, results table, report, MLflow links) as they come.

The log file starts in a temporary folder (the run folder does not exist before the region stage)
and moves into the run folder as soon as the sweep names it (``use_run_folder``); on a URI run
folder it is copied there at the end. ``-v`` (``verbose``) prints everything, as before.

The sweep's code reaches the console through the module's functions (``detail``, ``store_progress``,
``use_run_folder``), which fall back to plain ``log`` calls when no console is active (a test, a
notebook): the sweep's code needs no console to run. Nothing here imports Ray (``--help`` and
``--dry-run`` stay fast).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

LOG_FILE = "sweep.log"
EVERY_S = 30.0
"""Seconds between two progress lines or trial tables when nothing else happened (Tune's own
``CLIReporter`` prints every 30 s outside notebooks: ``max_report_frequency=30``)."""

_ACTIVE: Console | None = None


class Console:
    """The sweep's ``log``: ``console(text)`` shows text to the person; ``console.detail(text)``
    writes it to the log file only (shown too with ``verbose``)."""

    def __init__(self, verbose: bool = False, stream: TextIO | None = None):
        self.verbose = verbose
        self.stream = stream if stream is not None else sys.stdout
        self.log_path: Path | None = None
        self.run_folder = None
        self._log: TextIO | None = None
        self._open_line = False  # a progress bar drawn in place, to be overwritten
        self._own_bytes = 0  # what the console itself wrote to the log file

    # -- showing -----------------------------------------------------------------------------
    @property
    def tty(self) -> bool:
        return bool(getattr(self.stream, "isatty", lambda: False)())

    def __call__(self, text: str) -> None:
        self._end_line()
        self.stream.write(f"{text}\n")
        self.stream.flush()
        self._to_log(text)

    def detail(self, text: str) -> None:
        if self.verbose or self._log is None:
            self(text)
        else:
            self._to_log(text)

    def in_place(self, text: str) -> None:
        """A line a terminal redraws (a progress bar); elsewhere an ordinary line."""
        if not self.tty:
            self(text)
            return
        self.stream.write(f"\r\033[K{text}")
        self.stream.flush()
        self._open_line = True

    def _end_line(self) -> None:
        if self._open_line:
            self.stream.write("\r\033[K")
            self._open_line = False

    def _to_log(self, text: str) -> None:
        if self._log is not None:
            line = f"[s3same] {text}\n"
            self._log.write(line)
            self._log.flush()
            self._own_bytes += len(line.encode("utf-8", errors="replace"))

    # -- the log file ------------------------------------------------------------------------
    @contextlib.contextmanager
    def captured(self) -> Iterator[Console]:
        """Make this the active console; without ``verbose``, send stdout and stderr (Python's and
        the file descriptors, so Ray's C++ and child-process output too) to the log file."""
        global _ACTIVE
        previous, _ACTIVE = _ACTIVE, self
        if self.verbose:
            try:
                yield self
            finally:
                _ACTIVE = previous
            return
        handle, name = tempfile.mkstemp(prefix="s3same-sweep-", suffix=".log")
        os.close(handle)
        self.log_path = Path(name)
        sys.stdout.flush()
        sys.stderr.flush()
        own_stream = self.stream is sys.stdout and _fileno(sys.stdout) == 1
        if own_stream:
            self.stream = os.fdopen(os.dup(1), "w", buffering=1)  # the terminal, kept for the console
        saved_fds = (os.dup(1), os.dup(2))
        saved_streams = (sys.stdout, sys.stderr)
        self._point_at(self.log_path, mode="w")
        try:
            yield self
        finally:
            _ACTIVE = previous
            self._end_line()
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved_fds[0], 1)
            os.dup2(saved_fds[1], 2)
            for fd in saved_fds:
                os.close(fd)
            sys.stdout, sys.stderr = saved_streams
            if self._log is not None:
                self._log.close()
                self._log = None
            where = self._keep_log()
            if where:
                self.stream.write(f"Ray, Ray Data and Tune logs: {where}\n")
                self.stream.flush()
            if own_stream:
                self.stream.close()
                self.stream = sys.stdout

    def _point_at(self, path: Path, mode: str) -> None:
        """Send fds 1 and 2, ``sys.stdout``/``sys.stderr`` and the console's copy to ``path``."""
        if self._log is not None:
            self._log.flush()
        log = open(path, mode, buffering=1, encoding="utf-8", errors="replace")  # noqa: SIM115 - closed in captured()
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        sys.stdout = sys.stderr = log
        old, self._log = self._log, log
        if old is not None:
            old.close()

    def use_run_folder(self, run_dir: Any) -> None:
        """The run folder is known: a local one takes the log file now (what was written so far
        comes along, after what an earlier run of it, resumed now, wrote there), a URI one at the end."""
        self.run_folder = run_dir
        local = getattr(run_dir, "local_path", None)
        if self._log is None or self.log_path is None:
            return
        self(f"run folder: {run_dir} (Ray's, Ray Data's and Tune's output: {LOG_FILE} there)")
        if local is None:
            return
        target = Path(local) / LOG_FILE
        sys.stdout.flush()
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "ab") as kept:  # a resumed run's log goes on after the first run's
            kept.write(self.log_path.read_bytes())
        self._point_at(target, mode="a")
        self.log_path.unlink(missing_ok=True)
        self.log_path = target

    def _keep_log(self) -> str | None:
        """Where the log file ends up: a URI run folder gets a copy; None without a log file, or
        when a sweep that ended before its run folder wrote nothing there but the console's lines
        (a dry run; a bad sweep file, whose one-line error says it all): the file is removed."""
        if self.log_path is None:
            return None
        if self.run_folder is None and self.log_path.stat().st_size <= self._own_bytes:
            self.log_path.unlink(missing_ok=True)
            return None
        if self.run_folder is not None and getattr(self.run_folder, "local_path", None) is None:
            try:
                target = self.run_folder / LOG_FILE
                earlier = target.read_bytes() if target.is_file() else b""  # a resumed run's first part
                target.write_bytes(earlier + self.log_path.read_bytes())
                return str(target)
            except OSError:
                pass
        return str(self.log_path)


def _fileno(stream: TextIO) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        return None


def _quiet_ray_data() -> None:
    """No progress bars from Ray Data: the console draws the region stage's own."""
    from ray.data import DataContext

    context = DataContext.get_current()
    context.enable_progress_bars = False
    context.enable_operator_progress_bars = False


# -- what the sweep's code calls: through the active console, else plain ``log`` ---------------
def active() -> Console | None:
    return _ACTIVE


def detail(log: Callable[[str], None], text: str) -> None:
    """A line worth keeping but not worth a person's attention: the log file, or ``log``."""
    if _ACTIVE is not None and log is _ACTIVE:
        _ACTIVE.detail(text)
    else:
        log(text)


def show_plan(plan: Any, log: Callable[[str], None]) -> None:
    """The plan: in full to ``log`` without a console; with one, its first line and any warning
    or missing data on the console, the rest in the log file."""
    from orchestrator.plan import describe

    text = describe(plan)
    if _ACTIVE is None or log is not _ACTIVE or _ACTIVE.verbose:
        log(text)
        return
    lines = text.splitlines()
    _ACTIVE.detail(text)
    for line in [lines[0]] + [line.strip() for line in lines[1:] if line.startswith(("  missing:", "  warning:"))]:
        _ACTIVE(line)


def tune_verbosity() -> int:
    """Tune's ``verbose``: 0 under a quiet console (the trial table replaces its status table, whose
    output would go to the log file anyway), else 1, its default for scripts."""
    return 0 if _ACTIVE is not None and not _ACTIVE.verbose else 1


def use_run_folder(run_dir: Any) -> None:
    if _ACTIVE is not None:
        _ACTIVE.use_run_folder(run_dir)


def table(header: list[str], rows: list[list[str]]) -> str:
    """Plain columns, left-aligned, two spaces apart."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *rows])


def _seconds(s: float) -> str:
    s = int(round(s))
    return f"{s // 60} min {s % 60:02d} s" if s >= 60 else f"{s} s"


class StoreProgress:
    """A region store's progress: ``update(done)`` draws ``[#####.....] done/total images, ETA``.
    The rate is measured from the first batch that came back, so the actors' start-up (seconds
    to minutes: HQ-SAM loads its weights) does not inflate the ETA; the first line has none.
    Without a console, a line to ``log`` every tenth of the images (what the sweep printed before)."""

    def __init__(self, label: str, done: int, total: int, log: Callable[[str], None], clock: Callable[[], float] = time.monotonic):
        self.label, self.total, self.log, self.clock = label, total, log, clock
        self.first: tuple[float, int] | None = None
        self.last_shown: float | None = None
        self.reported = done

    def line(self, done: int) -> str:
        share = done / self.total if self.total else 1.0
        bar = "#" * int(20 * share) + "." * (20 - int(20 * share))
        eta = ""
        if self.first is not None and done < self.total:
            elapsed, rate_done = self.clock() - self.first[0], done - self.first[1]
            if elapsed > 0 and rate_done > 0:
                eta = f", {_seconds((self.total - done) * elapsed / rate_done)} left"
        return f"regions {self.label} [{bar}] {done}/{self.total} images{eta}"

    def update(self, done: int) -> None:
        now = self.clock()
        console = _ACTIVE if _ACTIVE is not None and self.log is _ACTIVE else None
        if console is None:
            if done - self.reported >= self.total / 10:
                self.log(f"regions {self.label}: {done}/{self.total} images")
                self.reported = done
        elif console.tty or self.last_shown is None or now - self.last_shown >= EVERY_S:
            console.in_place(self.line(done))
            self.last_shown = now
        if self.first is None:
            self.first = (now, done)


def store_progress(label: str, done: int, total: int, log: Callable[[str], None]) -> StoreProgress:
    """The progress of one region store (before its Ray Data pipeline starts: a quiet console
    turns Ray Data's own progress bars off here)."""
    if _ACTIVE is not None and not _ACTIVE.verbose and _ACTIVE._log is not None:
        _quiet_ray_data()
    return StoreProgress(label, done, total, log)


def say(text: str) -> None:
    """A line for the person: the active console, else stdout."""
    (_ACTIVE or print)(text)

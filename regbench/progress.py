"""A sweep's progress on one line: `jobs 5/17 done · 1 failed · 2 running (dropout 12/50, l2 30/50) ·
0:42 elapsed · ETA 1:10`.

Jobs run in the launcher process (basic), in joblib's worker processes or in submitit's subprocesses
(or on other machines): the one thing all launchers share is the sweep dir. So a watcher thread in the
launcher process reads it: each job's metrics.json says running / completed / failed / ..., and a
running job's `.regbench-progress` file (written by the job at most twice a second, removed when it
ends) says its epoch. The total comes from the sweeper's own expansion of the overrides.

`progress=auto` draws the line only when stderr is a terminal; `true` also when it is not (one line
each time a job starts or ends, for logs and tests); `false` never.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sys
import threading
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, TextIO

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from regbench.jobs import grid_status
from regbench.results import write_atomic

PROGRESS_FILE = ".regbench-progress"   # in a running job's dir: "<epoch> <epochs>" ("<epoch> ?" if unknown)
FAILED = ("failed", "diverged", "interrupted")
POLL_S = 0.5
WRITE_EVERY_S = 0.5
SHOW_RUNNING = 4                       # running jobs named on the line; the rest are counted


@dataclass
class Snapshot:
    """What the sweep dir holds now. statuses: status -> number of jobs; running: (technique, epoch,
    epochs) per running job, epoch None before its first evaluation, epochs None when unknown."""
    statuses: dict[str, int] = field(default_factory=dict)
    running: list[tuple[str, int | None, int | None]] = field(default_factory=list)

    @property
    def ended(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != "running")

    @property
    def failed(self) -> int:
        return sum(self.statuses.get(status, 0) for status in FAILED)


def read_epoch(job_dir: Path) -> tuple[int | None, int | None]:
    try:
        epoch, epochs = (job_dir / PROGRESS_FILE).read_text().split()
        return int(epoch), (int(epochs) if epochs.isdigit() else None)
    except (OSError, ValueError):
        return None, None


def scan(sweep_dir: Path) -> Snapshot:
    """Read every job's status (and a running job's epoch) under `sweep_dir`. A grid job counts once:
    its values' results (subdirs of its dir) give one status, its tuned result none."""
    snapshot = Snapshot()
    grids: dict[tuple[Path, str], list[tuple[str, Path, dict]]] = {}
    for path in sorted(Path(sweep_dir).glob("**/metrics.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):   # being replaced right now: os.replace makes that rare
            continue
        if not isinstance(record, dict) or not isinstance(record.get("status"), str) or "tuned" in record:
            continue
        grid = record.get("grid")
        if isinstance(grid, dict):
            grids.setdefault((path.parent.parent, str(grid.get("config_hash"))), []).append(
                (record["status"], path.parent, record))
        else:
            count(snapshot, record["status"], path.parent, record)
    for (job_dir, _), values in grids.items():   # a grid job writes its epoch file into its own dir
        status = grid_status([value_status for value_status, _, _ in values])
        count(snapshot, status, job_dir, next(record for value_status, _, record in values if value_status == status))
    return snapshot


def count(snapshot: Snapshot, status: str, directory: Path, record: dict) -> None:
    snapshot.statuses[status] = snapshot.statuses.get(status, 0) + 1
    if status == "running":
        snapshot.running.append((str(record.get("technique")), *read_epoch(directory)))


def clock(seconds: float) -> str:
    """0:42, 12:05, 1:02:03."""
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def eta(elapsed: float, done_here: float, left: float) -> float | None:
    """Seconds left at the rate this process's sweep has worked so far: elapsed / done_here · left, where
    both count jobs' worth of work, a running job its share of epochs done (12/50 -> 0.24), so that the
    estimate falls while a job runs instead of growing with the clock. None before any work is measured
    (no rate yet) or when the total is unknown (left < 0)."""
    if done_here <= 0 or left < 0:
        return None
    return elapsed / done_here * left


def running_share(snapshot: Snapshot) -> float:
    """Jobs' worth of work the running jobs have done: the sum of their epoch / epochs (0 where unknown)."""
    return sum(min(epoch / epochs, 1.0) for _, epoch, epochs in snapshot.running if epoch and epochs)


def status_line(snapshot: Snapshot, total: int | None, elapsed: float, ended_before: int = 0,
                final: bool = False) -> str:
    """The one line. `ended_before`: jobs that had already ended when the sweep started (a resumed
    sweep): they count as done but not towards the rate. `final`: the launcher has returned, so every
    job of the sweep has ended (twins that ran as one job leave one dir for two jobs)."""
    ended = snapshot.ended
    if total is not None:
        ended = total if final else min(ended, total)
    parts = [f"jobs {ended}/{total} done" if total is not None else f"jobs {ended} done"]
    if snapshot.failed:
        parts.append(f"{snapshot.failed} failed")
    if snapshot.running and not final:
        shown = [f"{technique} {'-' if epoch is None else epoch}/{epochs or '?'}"
                 for technique, epoch, epochs in snapshot.running[:SHOW_RUNNING]]
        more = len(snapshot.running) - SHOW_RUNNING
        parts.append(f"{len(snapshot.running)} running ({', '.join(shown)}{f', +{more}' if more > 0 else ''})")
    parts.append(f"{clock(elapsed)} elapsed")
    if not final and total is not None:
        running = min(running_share(snapshot), max(total - ended, 0))
        left = eta(elapsed, ended - ended_before + running, total - ended - running)
        parts.append(f"ETA {clock(left)}" if left is not None else "ETA ?")
    return " · ".join(parts)


def sweep_total(config: DictConfig) -> int | None:
    """How many jobs Hydra's basic sweeper makes of this multirun config: the product of the sweep
    lengths of hydra.sweeper.params and the command-line overrides (a later override of a key replaces
    an earlier one, as in the sweeper). None for another sweeper or what cannot be parsed here."""
    try:
        hydra_cfg = config.hydra
        if not str(hydra_cfg.sweeper.get("_target_", "")).endswith("BasicSweeper"):
            return None
        from hydra.core.override_parser.overrides_parser import OverridesParser

        params = hydra_cfg.sweeper.get("params") or {}
        arguments = [f"{key}={value}" for key, value in params.items()]
        arguments += list(OmegaConf.to_container(hydra_cfg.overrides.task, resolve=False))
        sizes: OrderedDict[str, int] = OrderedDict()
        for override in OverridesParser.create().parse_overrides(arguments):
            if override.is_sweep_override():
                if not override.is_discrete_sweep():
                    return None
                sizes[override.get_key_element()] = len(list(override.sweep_string_iterator()))
            else:
                sizes[override.get_key_element()] = 1
        total = 1
        for size in sizes.values():
            total *= size
        return total
    except Exception:   # a glob() over a config group needs Hydra's config loader: count nothing then
        return None


def wanted(mode: Any, stream: TextIO) -> bool:
    """progress=true: always; auto: when `stream` is a terminal; anything else: never."""
    if mode is True:
        return True
    if mode != "auto":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class SweepWatcher:
    """A daemon thread that redraws the status line from the sweep dir every POLL_S seconds."""

    def __init__(self, sweep_dir: Path, total: int | None, stream: TextIO, live: bool):
        self.sweep_dir, self.total, self.stream, self.live = Path(sweep_dir), total, stream, live
        self.start_time = time.monotonic()
        self.ended_before = scan(self.sweep_dir).ended if self.sweep_dir.exists() else 0
        self._stop = threading.Event()
        self._last: tuple | None = None
        self._thread = threading.Thread(target=self._run, name="regbench-sweep-progress", daemon=True)
        self._lock = threading.Lock()
        self._drawn = False          # a live line is on the screen, without its newline
        self._quiet_until = 0.0      # no redraw until then: a log line is being printed
        self._make_record: Callable | None = None
        self._show_warning: Callable | None = None

    def start(self) -> "SweepWatcher":
        if self.live:
            # A log record (Hydra's '#1 : regularizer=l2', a job's error) or a warning printed while the
            # line is drawn would be glued onto its end: each one clears the line first; it is drawn again,
            # below the message, at the next poll. The record factory is the one hook that survives
            # Hydra reconfiguring the log handlers for every job.
            self._make_record = logging.getLogRecordFactory()
            logging.setLogRecordFactory(self._record)
            self._show_warning = warnings.showwarning
            warnings.showwarning = self._warning
        self._thread.start()
        return self

    def _record(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        self.clear()
        return self._make_record(*args, **kwargs)

    def _warning(self, *args: Any, **kwargs: Any) -> None:
        self.clear()
        self._show_warning(*args, **kwargs)

    def clear(self) -> None:
        """Wipe the live line (the cursor goes back to its start) so that the next output has the row."""
        with self._lock:
            self._quiet_until = time.monotonic() + POLL_S / 2
            if self._drawn:
                with contextlib.suppress(Exception):
                    self.stream.write("\r\x1b[K")
                    self.stream.flush()
                self._drawn = False

    def _unhook(self) -> None:
        if self._make_record is not None and logging.getLogRecordFactory() == self._record:
            logging.setLogRecordFactory(self._make_record)
        if self._show_warning is not None and warnings.showwarning == self._warning:
            warnings.showwarning = self._show_warning

    def _draw(self, final: bool) -> None:
        snapshot = scan(self.sweep_dir) if self.sweep_dir.exists() else Snapshot()
        line = status_line(snapshot, self.total, time.monotonic() - self.start_time, self.ended_before, final)
        if self.live:
            width = shutil.get_terminal_size((100, 20)).columns - 1   # a wrapped line cannot be redrawn
            text = line if len(line) <= width else line[:max(width - 1, 0)] + "…"
            with self._lock:
                if not final and time.monotonic() < self._quiet_until:
                    return
                self.stream.write(f"\r\x1b[K{text}" + ("\n" if final else ""))
                self.stream.flush()
                self._drawn = not final
            return
        # not a terminal (progress=true): a line each time a job starts or ends, and the last one
        key = (snapshot.ended, snapshot.failed, len(snapshot.running))
        if key == self._last and not final:
            return
        self._last = key
        self.stream.write(line + "\n")
        self.stream.flush()

    def _run(self) -> None:
        while not self._stop.wait(POLL_S):
            try:
                self._draw(final=False)
            except Exception:   # a progress line is never worth stopping a sweep for
                pass

    def stop(self, final: bool = True) -> None:
        """Stop the thread, then draw the last line (`final`: the sweep ended; else it was interrupted,
        and the line just ends)."""
        self._stop.set()
        self._thread.join(timeout=5)
        self._unhook()
        try:
            if final:
                self._draw(final=True)
            elif self.live and self._drawn:
                self.stream.write("\n")
                self.stream.flush()
        except Exception:
            pass


_watcher: SweepWatcher | None = None


def start_watcher(sweep_dir: Path, total: int | None, mode: Any, stream: TextIO | None = None) -> None:
    global _watcher
    stop_watcher(final=False)
    stream = stream or sys.stderr
    if wanted(mode, stream):
        _watcher = SweepWatcher(sweep_dir, total, stream, live=stream.isatty()).start()


def stop_watcher(final: bool = True) -> None:
    """Idempotent: called at the end of a multirun, and by `regbench` on Ctrl-C or any error."""
    global _watcher
    watcher, _watcher = _watcher, None
    if watcher is not None:
        watcher.stop(final)


class ProgressCallback(Callback):
    """Starts the watcher when a multirun starts; stops it when the multirun ends. Hydra calls the
    end hooks in reverse order, so listed after the leaderboard's callback (conf/hydra/regbench.yaml)
    this one's last line comes before the leaderboard. Never raises."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            start_watcher(Path(config.hydra.sweep.dir), sweep_total(config), config.get("progress"))
        except Exception as error:
            print(f"regbench: no progress line ({type(error).__name__}: {error})", file=sys.stderr)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        stop_watcher(final=True)


@contextlib.contextmanager
def epoch_file(job_dir: Path, epochs: int | None) -> Iterator[Callable[[int, dict], None]]:
    """For a job of a sweep: an `on_epoch` that writes "<epoch> <epochs>" to the job dir's progress file
    at most every WRITE_EVERY_S seconds (it reads no tensor: no host sync), removed when the job ends."""
    path = Path(job_dir) / PROGRESS_FILE
    last = -float("inf")

    def on_epoch(epoch: int, metrics: dict) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last < WRITE_EVERY_S and epoch != epochs:
            return
        last = now
        with contextlib.suppress(OSError):   # a full disk must not fail the job over a progress file
            write_atomic(path, f"{epoch} {epochs if epochs is not None else '?'}")

    with contextlib.suppress(OSError):   # from the start, so the line shows 0/<epochs> while data loads
        write_atomic(path, f"0 {epochs if epochs is not None else '?'}")
    try:
        yield on_epoch
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)

"""A job's place on disk: which dir its result goes to, whether it is already done, and who is running it.

A job dir holds at most one result (metrics.json), and that result names its identity (config hash and
seeds). Running a job again where its completed result lies does nothing unless `force=true`; a job
whose dir holds another identity's result writes beside it instead of over it; a job whose twin is
running right now (two jobs of one sweep that compute the same thing) is not started twice. The claim
that says "running" is a file created with O_EXCL, so two processes cannot both take a dir.
`job_threads` shares the cores among the jobs a parallel launcher runs at once.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping

from regbench.results import write_json

log = logging.getLogger("regbench")

CLAIM = ".regbench-claim"
FINISHED = ("completed", "diverged")     # a rerun of the same config gives the same numbers
LAUNCHER_PID = "REGBENCH_LAUNCHER_PID"   # set by the console script; read by jobs in worker processes
LAUNCHER_HOST = "REGBENCH_LAUNCHER_HOST"


def grid_status(statuses: list[str]) -> str:
    """A grid job's status from its values' results: running while one is, else the worst of them."""
    for status in ("running", "failed", "interrupted", "diverged", "completed"):
        if status in statuses:
            return status
    return statuses[0]


def read_record(path: Path) -> dict | None:
    """metrics.json as a dict, or None when it is missing, unreadable or not a regbench record."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("config_hash"), str) else None


def same_job(record: dict, config_hash: str, seeds: list[int]) -> bool:
    return record.get("config_hash") == config_hash and record.get("seeds") == list(seeds)


def result_dir(job_dir: Path, config_hash: str, seeds: list[int], name: str) -> Path:
    """`job_dir`, unless it holds a result of another job: then `<job_dir>+<name>` beside it.

    `name` is the job's identity name (regbench.identity.job_dir_name). With the default sweep subdir
    the job dir is already that name, so this only matters for a hydra.run.dir or a custom
    hydra.sweep.subdir that another job used before.
    """
    metrics = job_dir / "metrics.json"
    if not metrics.exists():
        return job_dir
    record = read_record(metrics)
    if record is not None and same_job(record, config_hash, seeds):
        return job_dir
    beside = job_dir.parent / f"{job_dir.name}+{name}"
    log.warning("%s holds the result of another job; this job writes beside it, into %s", job_dir, beside)
    return beside


def alive(host: str | None, pid: int | None) -> bool:
    """Whether process `pid` on `host` still runs; a process on another machine counts as gone (a
    rerun on a cluster must be able to take over a dir whose job was killed)."""
    if host != socket.gethostname() or not isinstance(pid, int) or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def claim(directory: Path) -> Iterator[dict | None]:
    """Hold `directory` for this process while the block runs; yields None when taken, else the live
    holder ({'host', 'pid'}) of a claim made by another running process (then nothing is held).

    A claim left by a process that died (kill -9) is taken over.
    """
    created = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / CLAIM
    mine = {"host": socket.gethostname(), "pid": os.getpid()}
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                holder = json.loads(path.read_text())
            except (OSError, ValueError):
                holder = {}
            if alive(holder.get("host"), holder.get("pid")):
                yield holder
                return
            path.unlink(missing_ok=True)  # stale: its process is gone
            continue
        with os.fdopen(fd, "w") as handle:
            json.dump(mine, handle)
        try:
            yield None
        finally:
            path.unlink(missing_ok=True)
            if created and not any(directory.iterdir()):  # a job that wrote nothing leaves no dir
                directory.rmdir()
        return
    raise RuntimeError(f"could not claim {directory}: another process keeps taking it")


def mark_dead_jobs_interrupted(root: Path) -> int:
    """After an interrupted sweep: records still 'running' whose process has gone become 'interrupted'
    (a worker that the launcher killed could not say so itself). Returns how many were marked."""
    marked = 0
    for path in root.glob("**/metrics.json"):
        record = read_record(path)
        if record is None or record.get("status") != "running" or alive(record.get("host"), record.get("pid")):
            continue
        record.update(status="interrupted", error="interrupted: its process ended before the job finished")
        write_json(path, record)
        marked += 1
    return marked


class Interrupted(KeyboardInterrupt):
    """SIGTERM (a scheduler's cancel, the launcher gone) handled like Ctrl-C: the job records it."""


def raise_interrupted(signum: int, frame) -> None:
    raise Interrupted(signal.Signals(signum).name)


@contextmanager
def interruptible() -> Iterator[None]:
    """SIGTERM raises `Interrupted` in this block, as SIGINT does (main thread only, where Python
    delivers signals).

    In a parallel launcher's worker, SIGINT is ignored once the job has ended: Ctrl-C reaches the whole
    process group, and a joblib worker idle between jobs printed a KeyboardInterrupt traceback. The
    launcher process handles Ctrl-C for the sweep."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, raise_interrupted)
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int if in_launcher_process() else signal.SIG_IGN)


_watchdog: threading.Thread | None = None


def ancestors() -> list[int]:
    """Process ids from this process's parent up to init (just the parent where /proc is missing)."""
    chain, pid = [], os.getppid()
    while pid > 1 and len(chain) < 64:
        chain.append(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat.rsplit(")", 1)[1].split()[1])  # 'pid (name) state ppid ...'
    return chain


def watch_launcher() -> None:
    """In a worker process of a parallel launcher (joblib's workers are its children, submitit_local's
    jobs its grandchildren): end this process when the launcher is gone (kill -9), so no worker trains
    on for minutes after its sweep died.

    Only where the launcher is an ancestor on this machine: a SLURM job must outlive a launcher that
    was stopped on purpose (resume reruns only what did not finish).
    """
    global _watchdog
    launcher = os.environ.get(LAUNCHER_PID)
    if (_watchdog is not None or launcher is None or not launcher.isdigit()
            or os.environ.get(LAUNCHER_HOST) != socket.gethostname()):
        return
    pid = int(launcher)
    if pid == os.getpid() or pid not in ancestors():
        return

    def watch() -> None:
        while pid in ancestors():
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)   # the running job records `interrupted`
        time.sleep(10)
        os._exit(1)                            # if nothing ended the process by then

    _watchdog = threading.Thread(target=watch, name="regbench-launcher-watchdog", daemon=True)
    _watchdog.start()


def in_launcher_process() -> bool:
    """True in the process that runs the sweep (or the single run), False in its workers."""
    return os.environ.get(LAUNCHER_PID) in (None, str(os.getpid()))


def cores() -> int:
    """The CPUs this process may run on (its affinity: taskset, a SLURM allocation), else the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity on this platform (macOS)
        return os.cpu_count() or 1


def job_threads(launcher: Mapping | None, multirun: bool, cpus: int | None = None) -> int | None:
    """torch threads for a job whose config says `threads: null`, such that jobs run at once × threads
    ≤ cores. `launcher` is the job's hydra.launcher node, `cpus` the cores (default: `cores()`).

    None (torch's default: every core) for a single run, a job not started by Hydra (no launcher) and
    the basic launcher, which runs one job at a time. joblib runs n_jobs at once (-1: one per core,
    -n: cores + 1 - n), each gets cores // n_jobs; submitit (local or SLURM) gives each job
    cpus_per_task (unset: 1, submitit's own default); any other launcher: 1, since how many jobs it
    runs at once is not known here.
    """
    if not multirun or launcher is None:
        return None
    cpus = cores() if cpus is None else cpus
    kind = str(launcher.get("_target_", "")).rpartition(".")[2]
    if kind == "BasicLauncher":
        return None
    if kind == "JoblibLauncher":
        n_jobs = launcher.get("n_jobs")
        if not isinstance(n_jobs, int) or n_jobs == 0:
            n_jobs = 1  # joblib's None; 0 is an error joblib reports itself
        parallel = n_jobs if n_jobs > 0 else max(1, cpus + 1 + n_jobs)
        return max(1, cpus // parallel)
    if kind in ("LocalLauncher", "SlurmLauncher"):
        per_task = launcher.get("cpus_per_task")
        return max(1, min(per_task, cpus)) if isinstance(per_task, int) else 1
    return 1

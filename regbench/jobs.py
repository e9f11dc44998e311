"""A job's place on disk: which dir its result goes to, whether it is already done, and who is running it.

A job dir holds at most one result (metrics.json), and that result names its identity (config hash and
seeds). Running a job again where its completed result lies does nothing unless `force=true`; a job
whose dir holds another identity's result writes beside it instead of over it; a job whose twin is
running right now (two jobs of one sweep that compute the same thing) is not started twice.
`job_threads` shares the cores among the jobs a parallel launcher runs at once; `auto_threads` picks how
many of its share a job whose config says `threads: null` uses, from the work of one training step.

The claim that says "running" is the file .regbench-claim naming its holder's host and pid. It is made
whole under a name of its own and then hard-linked to that name, which is atomic and fails when a claim
is there: no process sees a claim without its holder, and two cannot both take a dir. A claim whose
holder is gone is removed only by a process that holds the claim file's flock and sees it still in
place; its holder releases it the same way. This holds among the processes of one host, on a local
filesystem and on NFS (v3 and later: link is atomic on the server, flock becomes an NFS lock); the
filesystem must support hard links and flock. It does not hold across hosts: `alive` cannot see a
process on another host and counts it as gone, so a rerun on another host takes over the dir of a job
still running elsewhere, and both write into it.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import signal
import socket
import threading
import time
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Iterator, Mapping

from regbench.results import IDENTITY_SCHEME, identity_scheme, write_json

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
    older = record is not None and identity_scheme(record) != IDENTITY_SCHEME
    log.warning("%s holds %s; this job writes beside it, into %s", job_dir,
                "a result stored under an older identity (kept as it is)" if older else "the result of another job",
                beside)
    return beside


def older_results(root: Path) -> int:
    """How many finished results under `root` were stored under an older identity scheme: a rerun never
    reuses them (their configs train again), and the leaderboard shows them in rows of their own."""
    older = 0
    for path in root.glob("**/metrics.json"):
        record = read_record(path)
        older += record is not None and record.get("status") in FINISHED and identity_scheme(record) != IDENTITY_SCHEME
    return older


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

    A claim left by a process that is gone (kill -9; on another host: see the module docstring) is
    taken over. A dir this call made is removed again if it is empty when the block ends.
    """
    created = not directory.exists()
    path = directory / CLAIM
    for _ in range(100):
        directory.mkdir(parents=True, exist_ok=True)
        try:
            fd = publish(path)
        except FileNotFoundError:  # its last holder removed the dir as we came: make it again
            created = True
            continue
        if fd is not None:
            break
        holder = remove_if_stale(path)
        if holder is not None:
            yield holder
            return
    else:
        raise RuntimeError(f"could not claim {directory}: other processes keep taking it")
    try:
        yield None
    finally:
        release(path, fd)
        if created:
            with suppress(OSError):  # not empty: the job wrote into it, or another process claimed it
                directory.rmdir()


def publish(path: Path) -> int | None:
    """Put this process's claim at `path`: returns an fd of the claim file, or None when a claim is there.

    The holder is written under a name of its own first, then linked to `path`: a link is atomic and
    fails when `path` exists, so no process sees a claim without its holder or two claims at once.
    """
    temp = path.with_name(f"{path.name}.{socket.gethostname()}.{os.getpid()}.{os.urandom(4).hex()}")
    fd = os.open(temp, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
    try:
        os.write(fd, json.dumps({"host": socket.gethostname(), "pid": os.getpid()}).encode())
        os.link(temp, path)
        return fd
    except FileExistsError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    finally:
        temp.unlink()


def remove_if_stale(path: Path) -> dict | None:
    """The live holder of the claim at `path`; None when there is none now (its holder was gone: then
    the claim is removed, and the caller races for the dir again)."""
    try:
        fd = os.open(path, os.O_RDWR)  # for writing: NFS locks only a file open for writing
    except FileNotFoundError:
        return None
    try:
        with locked(fd):
            if not still_at(path, fd):  # released or taken over while we waited for the lock
                return None
            try:
                holder = json.loads(os.pread(fd, 1 << 16, 0))
            except ValueError:
                holder = {}
            if isinstance(holder, dict) and alive(holder.get("host"), holder.get("pid")):
                return holder
            path.unlink()
            return None
    finally:
        os.close(fd)


def release(path: Path, fd: int) -> None:
    """Remove this process's claim, if it is still the one at `path` (a process that took this one for
    dead, on another host, may have taken it over)."""
    try:
        with locked(fd):
            if still_at(path, fd):
                path.unlink()
    finally:
        os.close(fd)


def still_at(path: Path, fd: int) -> bool:
    """Whether the file open as `fd` is the one at `path` (a removed file keeps its inode while open)."""
    try:
        there = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (there.st_dev, there.st_ino) == (mine.st_dev, mine.st_ino)


@contextmanager
def locked(fd: int) -> Iterator[None]:
    """An exclusive lock on the open file `fd` while the block runs: a claim file is removed only by
    the process that holds its lock and sees it still in place."""
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


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


# Training FLOPs per step (experiment.step_flops: Linear and convolution layers of the whole population,
# forward and backward) that each torch thread needs before it pays: where 2 threads break even with 1
# on an idle machine (2 cores, torch 2.13 CPU, in-process training time, 2 threads over 1: MNIST-1D MLP
# replicates=3, 27 MFLOP a step, 0.99x; cnn1d 57 MFLOP 0.82x; MLP replicates=16 144 MFLOP 0.62x; digits
# ResNet replicates=3 1.4 GFLOP 0.64x). Beside a busy process each was 3-23x slower on 2 threads than on
# 1: `free_cores` keeps a job off the cores taken when it starts. See `python -m regbench.bench --busy 1`.
STEP_FLOPS_PER_THREAD = 25e6


def job_threads(launcher: Mapping | None, multirun: bool, cpus: int | None = None) -> int | None:
    """The cores a job whose config says `threads: null` may use, such that jobs run at once × threads
    ≤ cores (how many of them it takes: `auto_threads`). `launcher` is the job's hydra.launcher node,
    `cpus` the cores (default: `cores()`).

    None (every core) for a single run, a job not started by Hydra (no launcher) and the basic launcher,
    which runs one job at a time. joblib runs n_jobs at once (-1: one per core, -n: cores + 1 - n), each
    gets cores // n_jobs; submitit (local or SLURM) gives each job cpus_per_task (unset: 1, submitit's
    own default); any other launcher: 1, since how many jobs it runs at once is not known here.
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


def auto_threads(step_flops: float, share: int | None, cpus: int | None = None) -> int:
    """torch threads for `threads: null`: one per STEP_FLOPS_PER_THREAD of a training step's work
    (`step_flops`, the whole population's), at least 1, at most `share` (job_threads; None: `cpus`,
    default `cores()`) and OMP_NUM_THREADS where the environment sets it, and, when that is more than 1,
    at most the cores other processes leave idle right now (`free_cores`). Small jobs, the MNIST-1D MLP
    among them, train on one thread without looking.
    """
    cap = share if share is not None else (cores() if cpus is None else cpus)
    asked = os.environ.get("OMP_NUM_THREADS", "")
    if asked.isdigit() and int(asked) > 0:  # the user's limit for every OpenMP program, torch's default too
        cap = min(cap, int(asked))
    threads = max(1, min(cap, int(step_flops // STEP_FLOPS_PER_THREAD)))
    if threads > 1:
        free = free_cores()
        threads = threads if free is None else max(1, min(threads, free))
    return threads


def free_cores(seconds: float = 0.1) -> int | None:
    """How many of this process's cores (its affinity) were idle over the next `seconds`, from Linux's
    /proc/stat; None where it cannot be told. A thread given a core that another process keeps busy makes
    every op wait for it."""
    mine = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    try:
        before = Path("/proc/stat").read_text()
        time.sleep(seconds)
        after = Path("/proc/stat").read_text()
    except OSError:
        return None
    return idle_cores(before, after, mine)


def idle_cores(before: str, after: str, cpus: set[int] | None = None) -> int | None:
    """Cores idle between two readings of /proc/stat: the idle share (idle + iowait time over all time)
    of each of `cpus` (None: every core listed), summed and rounded; None when no core is listed."""
    def times(stat: str) -> dict[str, tuple[int, int]]:
        found = {}
        for line in stat.splitlines():
            name, *fields = line.split()
            if name.startswith("cpu") and name[3:].isdigit() and (cpus is None or int(name[3:]) in cpus):
                ticks = [int(value) for value in fields[:8]]  # user nice system idle iowait irq softirq steal
                found[name] = (ticks[3] + ticks[4], sum(ticks))
        return found

    start, end = times(before), times(after)
    if not end:
        return None
    idle = 0.0
    for name, (idle_end, total_end) in end.items():
        idle_start, total_start = start.get(name, (idle_end, total_end))
        idle += (idle_end - idle_start) / (total_end - total_start) if total_end > total_start else 1.0
    return round(idle)

"""Sweep progress (regbench/progress.py): the status line from job dirs on disk, the total from the
sweeper's overrides, the per-job epoch file, the watcher thread, and real sweeps under joblib and
submitit_local (forced with progress=true, since the tests' stderr is a pipe) and quiet by default."""
from __future__ import annotations

import io
import json
import logging
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
import warnings

import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.types import RunMode

from regbench import progress
from regbench.config import CONF_DIR
from regbench.progress import PROGRESS_FILE, Snapshot, epoch_file, eta, scan, status_line, sweep_total
from tests.conftest import REPO, as_a_terminal_starts_it, run_cli
from tests.test_jobs import start_sweep, statuses, wait_for


def job(sweep, name, status, technique, epoch=None):
    directory = sweep / name
    directory.mkdir(parents=True)
    (directory / "metrics.json").write_text(json.dumps({"status": status, "technique": technique}))
    if epoch is not None:
        (directory / PROGRESS_FILE).write_text(epoch)
    return directory


@pytest.fixture
def sweep(tmp_path):
    """2 completed, 1 failed, 1 not applicable, 2 running (one mid-way, one that has not written its
    epoch yet), and a file that is not a record."""
    root = tmp_path / "sweep"
    job(root, "a", "completed", "none")
    job(root, "b", "completed", "l2")
    job(root, "c", "failed", "l1")
    job(root, "d", "not_applicable", "label_smoothing")
    job(root, "e", "running", "dropout", epoch="12 50")
    job(root, "f", "running", "mixup")
    (root / ".submitit").mkdir()
    (root / ".submitit" / "metrics.json").write_text("not json")
    return root


def test_scan_counts_statuses_and_reads_running_epochs(sweep):
    snapshot = scan(sweep)
    assert snapshot.statuses == {"completed": 2, "failed": 1, "not_applicable": 1, "running": 2}
    assert snapshot.running == [("dropout", 12, 50), ("mixup", None, None)]
    assert (snapshot.ended, snapshot.failed) == (4, 1)


def test_status_line_counts_done_failed_running_and_eta(sweep):
    line = status_line(scan(sweep), total=10, elapsed=60.0)
    # ETA: 60 s for 4 ended jobs and 12/50 of one -> 60 / 4.24 s a job, 10 - 4.24 left -> 81.5 s
    assert line == "jobs 4/10 done · 1 failed · 2 running (dropout 12/50, mixup -/?) · 1:00 elapsed · ETA 1:22"


def test_eta_counts_only_work_done_in_this_sweep():
    assert eta(60.0, done_here=4, left=6) == 90.0
    assert eta(60.0, done_here=1, left=6) == 360.0   # a resumed sweep: 3 were done before it began
    assert eta(60.0, done_here=0, left=6) is None    # no rate yet
    assert eta(60.0, done_here=2, left=-1) is None   # no total
    line = status_line(Snapshot({"completed": 3, "running": 1}, [("l2", None, 50)]), total=5, elapsed=10.0,
                       ended_before=3)
    assert line == "jobs 3/5 done · 1 running (l2 -/50) · 0:10 elapsed · ETA ?"
    # 3 done before; 10 s for a fifth of this one: 50 s a job, 1.8 jobs left
    line = status_line(Snapshot({"completed": 3, "running": 1}, [("l2", 10, 50)]), total=5, elapsed=10.0,
                       ended_before=3)
    assert line.endswith("0:10 elapsed · ETA 1:30")


def test_eta_falls_while_a_job_runs():
    """The first job took 10 s; the second runs at the same pace (1 s an epoch of 10): the ETA must count
    down with the clock, not grow by a second per second until the job ends (what a rate of ended jobs
    alone gives: 10 s a job, 2 left, 10 s more elapsed -> 20 s, 22 s, 24 s ...)."""
    etas = []
    for seconds in range(0, 10, 2):
        snapshot = Snapshot({"completed": 1, "running": 1}, [("l2", seconds, 10)])
        line = status_line(snapshot, total=3, elapsed=10.0 + seconds)
        etas.append(line.rpartition("ETA ")[2])
    assert etas == ["0:20", "0:18", "0:16", "0:14", "0:12"]


def test_a_log_line_clears_the_live_line_instead_of_gluing_onto_it(sweep, monkeypatch):
    """Hydra logs '#1 : regularizer=l2' (and a job its errors) while the line is on the screen: the
    line must be wiped first, so that the log line starts at column 0 on a row of its own."""
    monkeypatch.setattr(progress, "POLL_S", 60.0)   # no redraw from the thread: this test draws
    screen = io.StringIO()
    show_warning = warnings.showwarning
    watcher = progress.SweepWatcher(sweep, total=6, stream=screen, live=True).start()
    logger = logging.getLogger("test-progress-glue")
    handler = logging.StreamHandler(screen)
    logger.addHandler(handler)
    try:
        watcher._quiet_until = 0.0
        watcher._draw(final=False)
        logger.warning("#1 : regularizer=l2")
        watcher._quiet_until = 0.0
        watcher._draw(final=False)
        warnings.warn("a warning")
    finally:
        logger.removeHandler(handler)
        watcher.stop(final=True)
    text = screen.getvalue()
    assert re.search(r"ETA [0-9:?]+\r\x1b\[K#1 : regularizer=l2\n\r\x1b\[Kjobs", text), repr(text)
    assert re.search(r"ETA [0-9:?]+\r\x1b\[K", text.split("#1 : regularizer=l2")[1]), repr(text)
    assert logging.getLogRecordFactory() is logging.LogRecord   # put back when the sweep ends
    assert warnings.showwarning is show_warning


def test_final_line_says_every_job_ended_and_unknown_totals_count_up(sweep):
    assert status_line(scan(sweep), total=10, elapsed=3725.0, final=True) == \
        "jobs 10/10 done · 1 failed · 1:02:05 elapsed"
    assert status_line(scan(sweep), total=None, elapsed=5.0) == \
        "jobs 4 done · 1 failed · 2 running (dropout 12/50, mixup -/?) · 0:05 elapsed"
    many = Snapshot({"running": 6}, [(f"t{i}", i, 9) for i in range(6)])
    assert "6 running (t0 0/9, t1 1/9, t2 2/9, t3 3/9, +2)" in status_line(many, total=6, elapsed=1.0)


def multirun_cfg(*overrides: str):
    """The config of `regbench -m overrides...` (hydra.compose composes a single run's)."""
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return GlobalHydra.instance().config_loader().load_configuration(
                "config", overrides=list(overrides), run_mode=RunMode.MULTIRUN)
    finally:
        GlobalHydra.instance().clear()


@pytest.mark.slow
def test_sweep_total_expands_the_sweepers_overrides():
    assert sweep_total(multirun_cfg("regularizer=none,l2", "trainer.epochs=1,2,3", "seed=4")) == 6
    assert sweep_total(multirun_cfg("regularizer=none,l2", "regularizer=l1")) == 1  # the later wins
    assert sweep_total(multirun_cfg("+suite=chapter9")) == 17   # hydra.sweeper.params
    assert sweep_total(multirun_cfg("+suite=chapter9", "trainer.lr=0.1,0.2")) == 34
    assert sweep_total(multirun_cfg("+suite=chapter9", 'hydra.sweeper.params.regularizer="none,l2"')) == 2


def test_epoch_file_is_throttled_ends_on_the_last_epoch_and_is_removed(tmp_path):
    with epoch_file(tmp_path, epochs=50) as on_epoch:
        assert (tmp_path / PROGRESS_FILE).read_text() == "0 50"
        on_epoch(1, {})
        assert (tmp_path / PROGRESS_FILE).read_text() == "1 50"
        on_epoch(2, {})   # within half a second of the last write: skipped
        assert (tmp_path / PROGRESS_FILE).read_text() == "1 50"
        on_epoch(50, {})  # the last epoch is always written
        assert (tmp_path / PROGRESS_FILE).read_text() == "50 50"
    assert not (tmp_path / PROGRESS_FILE).exists()


@pytest.mark.slow
def test_watcher_draws_from_disk_and_leaves_no_thread(sweep):
    stream = io.StringIO()
    progress.start_watcher(sweep, total=6, mode=True, stream=stream)
    time.sleep(progress.POLL_S * 3)
    for name in "ef":
        (sweep / name / "metrics.json").write_text(json.dumps({"status": "completed", "technique": name}))
    time.sleep(progress.POLL_S * 3)
    progress.stop_watcher()
    assert not any(t.name == "regbench-sweep-progress" for t in threading.enumerate())
    lines = stream.getvalue().splitlines()
    # not a terminal: a line when the counts change, not one every poll
    assert lines[0].startswith("jobs 4/6 done · 1 failed · 2 running (dropout 12/50, mixup -/?) ·")
    assert lines[1].startswith("jobs 6/6 done · 1 failed · 0:0") and "ETA 0:00" in lines[1]
    assert re.fullmatch(r"jobs 6/6 done · 1 failed · 0:0\d elapsed", lines[-1]) and len(lines) == 3


def test_watcher_redraws_one_line_in_a_terminal_and_is_silent_elsewhere(sweep):
    leader, follower = os.openpty()
    with os.fdopen(follower, "w") as terminal:
        progress.start_watcher(sweep, total=6, mode="auto", stream=terminal)
        time.sleep(progress.POLL_S * 2.5)
        progress.stop_watcher()
    drawn = b""
    while select.select([leader], [], [], 0.5)[0]:   # a pty hands its output over in pieces
        piece = read_pty(leader)
        if not piece:
            break
        drawn += piece
    drawn = drawn.decode()
    os.close(leader)
    assert drawn.startswith("\r\x1b[Kjobs 4/6 done") and drawn.count("\n") == 1  # the final line's
    assert re.search(r"jobs 6/6 done · 1 failed · 0:0\d elapsed\s*$", drawn), drawn
    quiet = io.StringIO()
    for mode in ("auto", False):   # auto off a terminal, and false anywhere
        progress.start_watcher(sweep, total=6, mode=mode, stream=quiet)
        progress.stop_watcher()
    assert quiet.getvalue() == ""


@pytest.mark.slow
@pytest.mark.parametrize("launcher", [["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
                                      ["hydra/launcher=submitit_local"]], ids=["joblib", "submitit_local"])
def test_real_sweep_shows_progress_when_forced(tmp_path, launcher):
    sweep = tmp_path / "sweep"
    done = run_cli("-m", "+suite=smoke", "regularizer=none,l2,label_smoothing", "dataset=toy1d",
                   "trainer.epochs=2", "progress=true", *launcher, f"hydra.sweep.dir={sweep}")
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("jobs ")]
    assert lines and re.fullmatch(r"jobs 3/3 done · \d+:\d\d elapsed", lines[-1]), done.stderr
    assert lines[0].startswith("jobs 0/3 done") or lines[0].startswith("jobs 1/3 done")
    assert " done · " not in done.stdout and (sweep / "leaderboard.csv").exists()  # the leaderboard's own
    assert not list(sweep.glob(f"**/{PROGRESS_FILE}"))  # each job removed its epoch file


@pytest.mark.slow
def test_sweep_is_quiet_when_stderr_is_not_a_terminal(tmp_path):
    done = run_cli("-m", "+suite=smoke", "regularizer=none,l2", "trainer.epochs=1", "hydra/launcher=joblib",
                   f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert done.returncode == 0, done.stderr
    assert " done · " not in done.stderr and "\r" not in done.stderr


@pytest.mark.slow
def test_ctrl_c_in_a_terminal_ends_the_progress_line_before_the_interrupted_message(tmp_path):
    """stderr a terminal (a pty): the line is redrawn in place, jobs in the workers draw no bars of their
    own, and Ctrl-C moves to a new line before the one-line message."""
    sweep, (leader, follower) = tmp_path / "sweep", os.openpty()
    process = subprocess.Popen([sys.executable, "-m", "regbench", "-m", "+suite=smoke", "regularizer=none,l2,l1",
                                "trainer.epochs=100", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                                f"hydra.sweep.dir={sweep}"], cwd=REPO, stdout=subprocess.DEVNULL,
                               stderr=follower, start_new_session=True, preexec_fn=as_a_terminal_starts_it)
    os.close(follower)
    chunks = []
    reader = threading.Thread(target=lambda: chunks.extend(iter(lambda: read_pty(leader), b"")), daemon=True)
    reader.start()
    wait_for(lambda: "completed" in statuses(sweep).values())
    os.killpg(process.pid, signal.SIGINT)
    assert process.wait(timeout=60) == 130
    reader.join(timeout=10)
    os.close(leader)
    err = b"".join(chunks).decode().replace("\r\n", "\n")
    assert "\r\x1b[Kjobs " in err and "Traceback" not in err and "━" not in err, err
    assert err.count("\nregbench: interrupted:") == 1 and err.endswith("\n"), err
    assert "\n" not in err.split("regbench: interrupted:")[0].rstrip("\n"), err  # one redrawn line before


def read_pty(fd: int) -> bytes:
    try:
        return os.read(fd, 4096)
    except OSError:   # EIO: the process closed its end
        return b""


def test_scan_counts_a_grid_job_once(tmp_path):
    """A grid job's values are results of their own in subdirs, and its tuned result one more: the line
    counts jobs, so the grid is one job, running while any value is, its epoch from its own dir."""
    root = tmp_path / "sweep"
    job(root, "none-1", "completed", "none")
    grid = root / "l2-abc"
    for name, status in (("v1", "running"), ("v2", "completed"), ("v3", "running")):
        directory = job(grid, name, status, "l2")
        record = json.loads((directory / "metrics.json").read_text())
        (directory / "metrics.json").write_text(json.dumps({**record, "grid": {"config_hash": "abc"}}))
    (grid / PROGRESS_FILE).write_text("7 50")
    job(grid, "l2-tuned", "completed", "l2")
    tuned = grid / "l2-tuned" / "metrics.json"
    tuned.write_text(json.dumps({**json.loads(tuned.read_text()), "tuned": {"grid": "abc"}}))
    snapshot = scan(root)
    assert snapshot.statuses == {"completed": 1, "running": 1} and snapshot.running == [("l2", 7, 50)]
    for name in ("v1", "v3"):
        record = json.loads((grid / name / "metrics.json").read_text())
        (grid / name / "metrics.json").write_text(json.dumps({**record, "status": "completed"}))
    assert scan(root).statuses == {"completed": 2}

"""Resume, twins, interrupts: a job's place on disk (regbench.jobs) in process and in real sweeps."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from regbench import identity, jobs
from regbench.app import execute
from tests.conftest import REPO, as_a_terminal_starts_it


def metrics(directory: Path) -> dict:
    return json.loads((directory / "metrics.json").read_text())


@pytest.mark.slow
def test_rerun_skips_a_completed_job_and_force_retrains(make_cfg, tmp_path):
    job = tmp_path / "job"
    first = execute(make_cfg("trainer.epochs=1"), job, [], multirun=True)
    written = (job / "metrics.json").read_bytes(), (job / "metrics.json").stat().st_mtime_ns
    again = execute(make_cfg("trainer.epochs=1"), job, [], multirun=True)
    assert again.get("skipped") and again["config_hash"] == first["config_hash"]
    assert ((job / "metrics.json").read_bytes(), (job / "metrics.json").stat().st_mtime_ns) == written
    forced = execute(make_cfg("trainer.epochs=1", "force=true"), job, [], multirun=True)
    assert not forced.get("skipped") and (job / "metrics.json").stat().st_mtime_ns != written[1]
    assert metrics(job)["runs"] == first["runs"]  # the same numbers: training is deterministic


@pytest.mark.slow
def test_a_skipped_job_follows_the_new_baseline_without_retraining(make_cfg, tmp_path):
    first = execute(make_cfg("trainer.epochs=1", "trainer.batch_size=50"), tmp_path, [], multirun=True)
    assert first["baseline_hash"] == first["config_hash"]
    moved = make_cfg("trainer.epochs=1", "trainer.batch_size=50", "+baseline.trainer.batch_size=100")
    again = execute(moved, tmp_path, [], multirun=True)
    assert again.get("skipped") and metrics(tmp_path)["runs"] == first["runs"]
    assert metrics(tmp_path)["baseline_hash"] == identity.baseline_hash(moved) != first["baseline_hash"]


@pytest.mark.parametrize("status", ["failed", "interrupted", "running"])
def test_unfinished_jobs_are_rerun(make_cfg, tmp_path, status):
    cfg = make_cfg("trainer.epochs=1")
    record = {"status": status, "config_hash": identity.config_hash(cfg), "seeds": [0, 1], "runs": [],
              "host": socket.gethostname(), "pid": 999999999}
    (tmp_path / "metrics.json").write_text(json.dumps(record))
    done = execute(cfg, tmp_path, [], multirun=True)
    assert not done.get("skipped") and metrics(tmp_path)["status"] == "completed"


@pytest.mark.parametrize("mistake", ["dataset.n_train=4000", "trainer.epochs=0"])
def test_a_job_that_failed_on_its_config_is_rerun_in_its_own_dir(make_cfg, tmp_path, mistake):
    """A config mistake (found at start, or at data load) fails the job; the same job rerun (after the
    data or the code changed) replaces that record instead of writing beside it."""
    cfg = make_cfg("trainer.epochs=1", mistake)
    failed = execute(cfg, tmp_path, [], multirun=True)
    assert failed["status"] == "failed" and metrics(tmp_path)["seeds"] == [0, 1]
    assert jobs.result_dir(tmp_path, failed["config_hash"], [0, 1], "x") == tmp_path


@pytest.mark.slow
def test_a_dir_holding_another_result_is_never_overwritten(make_cfg, tmp_path):
    execute(make_cfg("trainer.epochs=1"), tmp_path / "run", [], multirun=False)
    before = (tmp_path / "run" / "metrics.json").read_bytes()
    l2 = make_cfg("trainer.epochs=1", "regularizer=l2")
    record = execute(l2, tmp_path / "run", [], multirun=False)
    assert (tmp_path / "run" / "metrics.json").read_bytes() == before
    beside = tmp_path / f"run+{identity.job_dir_name(l2)}"
    assert record["job_dir"] == str(beside) and metrics(beside)["technique"] == "l2"
    # the same job with other seeds is another result too
    other_seeds = execute(make_cfg("trainer.epochs=1", "seed=5"), tmp_path / "run", [], multirun=False)
    assert (tmp_path / "run" / "metrics.json").read_bytes() == before
    assert metrics(Path(other_seeds["job_dir"]))["seeds"] == [5, 6]


def test_a_corrupt_result_is_kept_and_the_job_writes_beside_it(make_cfg, tmp_path):
    (tmp_path / "metrics.json").write_text('{"status": "compl')
    record = execute(make_cfg("trainer.epochs=1"), tmp_path, [], multirun=True)
    assert (tmp_path / "metrics.json").read_text() == '{"status": "compl'
    assert metrics(Path(record["job_dir"]))["status"] == "completed"


def test_a_claim_of_a_live_process_is_respected_and_a_dead_ones_taken_over(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / jobs.CLAIM).write_text(json.dumps({"host": socket.gethostname(), "pid": sleeper.pid}))
        with jobs.claim(tmp_path) as holder:
            assert holder == {"host": socket.gethostname(), "pid": sleeper.pid}
        assert (tmp_path / jobs.CLAIM).exists()  # not ours to remove
    finally:
        sleeper.kill()
        sleeper.wait()
    with jobs.claim(tmp_path) as holder:  # its process is gone now
        assert holder is None
        assert json.loads((tmp_path / jobs.CLAIM).read_text())["pid"] == os.getpid()
    assert not (tmp_path / jobs.CLAIM).exists()


def test_dead_running_jobs_are_marked_interrupted(tmp_path):
    for name, pid in (("dead", 999999999), ("alive", os.getppid())):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.json").write_text(json.dumps(
            {"status": "running", "config_hash": "0" * 16, "host": socket.gethostname(), "pid": pid}))
    assert jobs.mark_dead_jobs_interrupted(tmp_path) == 1
    assert metrics(tmp_path / "dead")["status"] == "interrupted"
    assert metrics(tmp_path / "alive")["status"] == "running"


# ---- real sweeps in subprocesses ------------------------------------------------------------------

def start_sweep(sweep: Path, *args: str) -> subprocess.Popen:
    """`regbench -m ...` in its own process group (so a signal reaches it as Ctrl-C would)."""
    return subprocess.Popen([sys.executable, "-m", "regbench", "-m", "+suite=smoke", *args,
                             f"hydra.sweep.dir={sweep}"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=as_a_terminal_starts_it)


def wait_for(condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(0.1)


def statuses(sweep: Path) -> dict[str, str]:
    found = {}
    for path in sweep.glob("*/metrics.json"):
        try:
            found[path.parent.name] = json.loads(path.read_text())["status"]
        except (OSError, ValueError):
            pass
    return found


SWEEP = ["regularizer=none,l2,l1", "trainer.epochs=25"]


@pytest.mark.slow
def test_kill_9_then_the_same_command_finishes_without_retraining(tmp_path):
    sweep = tmp_path / "sweep"
    process = start_sweep(sweep, *SWEEP)
    wait_for(lambda: "completed" in statuses(sweep).values())
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    finished = {name: (sweep / name / "metrics.json").read_bytes()
                for name, status in statuses(sweep).items() if status == "completed"}
    assert 1 <= len(finished) < 3
    done = subprocess.run([sys.executable, "-m", "regbench", "-m", "+suite=smoke", *SWEEP,
                           f"hydra.sweep.dir={sweep}"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert sorted(statuses(sweep).values()) == ["completed"] * 3
    for name, content in finished.items():  # nothing finished was retrained
        assert (sweep / name / "metrics.json").read_bytes() == content
        assert f"{name}: already completed, skipped" in done.stdout + done.stderr
    board = pd.read_csv(sweep / "leaderboard.csv")
    assert sorted(board.technique) == ["l1", "l2", "none"] and set(board.seeds.astype(str)) == {"2"}


@pytest.mark.slow
@pytest.mark.parametrize("launcher", [[], ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]],
                         ids=["basic", "joblib"])
def test_ctrl_c_records_interrupted_writes_the_leaderboard_and_exits_130(tmp_path, launcher):
    sweep = tmp_path / "sweep"
    process = start_sweep(sweep, "regularizer=none,l2,l1", "trainer.epochs=25", *launcher)

    def some_done_some_running() -> bool:
        found = list(statuses(sweep).values())
        return "completed" in found and "running" in found

    wait_for(some_done_some_running)
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole process group
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    records = [json.loads(path.read_text()) for path in sweep.glob("*/metrics.json")]
    done = sorted(r["technique"] for r in records if r["status"] == "completed")
    assert err.startswith(f"regbench: interrupted: {len(done)} jobs finished, leaderboard in")
    assert {r["status"] for r in records} == {"completed", "interrupted"}
    assert all(r["error"] == "interrupted (SIGINT)" for r in records if r["status"] == "interrupted")
    assert sorted(pd.read_csv(sweep / "leaderboard.csv").technique) == done


@pytest.mark.slow
@pytest.mark.parametrize("role, survives", [("worker", True), ("launcher", False)])
def test_a_worker_ignores_ctrl_c_between_jobs_and_the_launcher_does_not(role, survives):
    """Ctrl-C reaches the whole process group. A joblib worker that got it while collecting garbage
    after its job printed a KeyboardInterrupt traceback (seen in the Ctrl-C test under joblib); after a
    job, a worker now ignores SIGINT and leaves Ctrl-C to its launcher, which still stops."""
    code = ("import os, signal, time\n"
            "from regbench import jobs\n"
            "with jobs.interruptible():\n"
            "    pass\n"
            "os.kill(os.getpid(), signal.SIGINT)\n"
            "time.sleep(0.2)\n"
            "print('still here')\n")
    launcher = str(os.getppid()) if role == "worker" else None   # a worker's launcher is another process
    env = {key: value for key, value in os.environ.items() if key != jobs.LAUNCHER_PID}
    if launcher is not None:
        env[jobs.LAUNCHER_PID] = launcher
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO,
                          preexec_fn=as_a_terminal_starts_it)
    assert (done.stdout.strip() == "still here") == survives, done.stderr
    assert ("KeyboardInterrupt" in done.stderr) == (not survives)


@pytest.mark.slow
@pytest.mark.parametrize("launcher", [["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
                                      ["hydra/launcher=submitit_local"]], ids=["joblib", "submitit_local"])
def test_parallel_workers_end_with_their_launcher(tmp_path, launcher):
    """joblib's workers are the launcher's children; submitit_local's jobs its grandchildren."""
    sweep = tmp_path / "sweep"
    process = start_sweep(sweep, "regularizer=none,l2", "trainer.epochs=2000", *launcher)
    wait_for(lambda: list(statuses(sweep).values()) == ["running", "running"])
    workers = [json.loads(p.read_text())["pid"] for p in sweep.glob("*/metrics.json")]
    assert process.pid not in workers
    os.kill(process.pid, signal.SIGKILL)  # the launcher alone, as an OOM killer or `kill -9` would
    process.wait()

    def gone(pid: int) -> bool:  # exited (a zombie waiting for its reaper has exited too)
        try:
            return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] in ("Z", "X")
        except FileNotFoundError:
            return True

    wait_for(lambda: all(gone(pid) for pid in workers), timeout=20)
    assert sorted(statuses(sweep).values()) == ["interrupted", "interrupted"]


JOBLIB = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
SUBMITIT = "hydra_plugins.hydra_submitit_launcher.submitit_launcher."


@pytest.mark.parametrize("launcher,multirun,expected", [
    (None, False, None),                                           # a single run: torch's default
    ({"_target_": JOBLIB, "n_jobs": 4}, False, None),              # a launcher that a run does not use
    (None, True, None),                                            # not started by Hydra
    ({"_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"}, True, None),
    ({"_target_": JOBLIB, "n_jobs": 2}, True, 4),
    ({"_target_": JOBLIB, "n_jobs": 3}, True, 2),                  # 3 × 2 ≤ 8: rounded down
    ({"_target_": JOBLIB, "n_jobs": -1}, True, 1),                 # one job per core
    ({"_target_": JOBLIB, "n_jobs": -5}, True, 2),                 # 8 + 1 - 5 = 4 jobs
    ({"_target_": JOBLIB, "n_jobs": 16}, True, 1),                 # more jobs than cores: never 0
    ({"_target_": JOBLIB, "n_jobs": None}, True, 8),               # joblib's None: one job at a time
    ({"_target_": SUBMITIT + "LocalLauncher", "cpus_per_task": 3}, True, 3),
    ({"_target_": SUBMITIT + "SlurmLauncher", "cpus_per_task": 32}, True, 8),  # no more than there are
    ({"_target_": SUBMITIT + "LocalLauncher", "cpus_per_task": None}, True, 1),
    ({"_target_": "hydra_plugins.somebody.RayLauncher"}, True, 1),  # how many at once is unknown
])
def test_job_threads_share_the_cores_among_the_jobs_run_at_once(launcher, multirun, expected):
    assert jobs.job_threads(launcher, multirun, cpus=8) == expected


# ---- force=true keeps the finished result until the new one is complete (issue 18, point 6) ----

@pytest.mark.slow
def test_a_forced_rerun_killed_mid_job_leaves_the_finished_result(tmp_path):
    """kill -9 of a real `regbench force=true` job while it trains (its progress file shows an epoch of
    10): the earlier result is intact."""
    from regbench.progress import PROGRESS_FILE, read_epoch

    args = [sys.executable, "-m", "regbench", "-m", "+suite=smoke", "trainer.epochs=10", "trainer.batch_size=10",
            "replicates=1", "progress=true", f"hydra.sweep.dir={tmp_path}"]
    first = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    (job,) = [path.parent for path in tmp_path.glob("*/metrics.json")]
    finished = (job / "metrics.json").read_bytes()
    assert json.loads(finished)["status"] == "completed"
    forced = subprocess.Popen([*args, "force=true"], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while read_epoch(job)[0] is None:           # training has started (and the old code wrote 'running')
            assert forced.poll() is None and time.monotonic() < deadline, "the forced job never started"
            time.sleep(0.02)
        assert forced.poll() is None and read_epoch(job)[0] < 10
    finally:
        forced.kill()
        forced.wait()
    assert (job / PROGRESS_FILE).exists()           # killed mid-job: nothing cleaned up after it
    assert (job / "metrics.json").read_bytes() == finished


GRID = ["regularizer=l2", "regularizer.l2.strength=[1e-4,1e-3]", "replicates=3", "selection_seeds=1",
        "trainer.epochs=1"]


def crash(*args, **kwargs):
    """Stands in for training that breaks (a crash no valid config causes on demand)."""
    raise RuntimeError("training broke")


@pytest.mark.slow
def test_a_failed_forced_rerun_keeps_the_results_and_their_tuned_row(make_cfg, tmp_path, monkeypatch):
    import regbench.app

    first = execute(make_cfg(*GRID), tmp_path, GRID, multirun=True)
    files = [Path(point["job_dir"]) / "metrics.json" for point in first["points"]]
    files.append(Path(first["tuned"]["job_dir"]) / "metrics.json")
    before = [path.read_bytes() for path in files]
    monkeypatch.setattr(regbench.app, "run_job", crash)
    again = execute(make_cfg(*GRID, "force=true"), tmp_path, [*GRID, "force=true"], multirun=True)
    assert again["status"] == "failed"                     # the command says the rerun failed ...
    assert [path.read_bytes() for path in files[:-1]] == before[:-1]   # ... and the results are kept
    tuned = json.loads(files[-1].read_text())
    assert tuned["status"] == "completed" and tuned["runs"] == json.loads(before[-1])["runs"]


@pytest.mark.slow
def test_a_grid_rerun_that_fails_withdraws_its_tuned_result(make_cfg, tmp_path, monkeypatch):
    import regbench.app

    first = execute(make_cfg(*GRID), tmp_path, GRID, multirun=True)
    tuned_file = Path(first["tuned"]["job_dir"]) / "metrics.json"
    assert json.loads(tuned_file.read_text())["status"] == "completed"
    (Path(first["points"][1]["job_dir"]) / "metrics.json").unlink()   # one value must train again
    monkeypatch.setattr(regbench.app, "run_job", crash)
    again = execute(make_cfg(*GRID), tmp_path, GRID, multirun=True)
    assert again["status"] == "failed" and again["tuned"] is None
    withdrawn = json.loads(tuned_file.read_text())
    assert withdrawn["status"] == "failed" and withdrawn["error"].startswith("withdrawn: not every grid value")
    assert withdrawn["runs"] == []


@pytest.mark.slow
def test_a_sweep_over_results_of_an_older_identity_says_so_once_and_trains_again(tmp_path):
    """A sweep dir holding a result of the older identity scheme (its record has no `identity`, its hash
    is of the raw yaml): a rerun says so in one line, trains the config again beside it, and the
    leaderboard keeps the old result in a row of its own."""
    command = [sys.executable, "-m", "regbench", "-m", "regularizer=none", "+suite=smoke", "trainer.epochs=1",
               "progress=false", f"hydra.sweep.dir={tmp_path}"]
    first = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    (path,) = tmp_path.glob("*/metrics.json")
    old = json.loads(path.read_text())
    del old["identity"]
    old["config_hash"] = "0123456789abcdef"                     # scheme 1 hashed the resolved yaml
    path.write_text(json.dumps(old))
    again = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("stored under an older identity") == 1
    assert metrics(path.parent) == old                          # kept as it was
    board = pd.read_csv(tmp_path / "leaderboard.csv")
    assert sorted(board.setting) == ["trainer.epochs=1", "trainer.epochs=1 [older identity]"]

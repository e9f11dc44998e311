"""The process a job runs in, through the real CLI: what it imports and how many threads torch takes.

This module is also imported by the job processes (its `ModulesAtJobEnd` is a Hydra callback), so it
imports nothing heavy itself.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback

from tests.conftest import REPO, run_cli

LEADERBOARD_ONLY = ("pandas", "scipy", "matplotlib")  # what a job does not use: the leaderboard's
USERS_THREADS = {"OMP_NUM_THREADS": None}  # the tests run torch with one thread (conftest); a user's has its own
TINY = ["dataset=toy1d", "trainer.epochs=2", "replicates=2", "progress=false"]

# Runs the real console script, with `execute` (one job: train and write metrics.json) wrapped so that
# the process prints the modules it holds when the job is done, before the single run's table.
SINGLE_JOB = """
import json, sys
import regbench.app as app

job = app.execute

def job_then_modules(*args, **kwargs):
    record = job(*args, **kwargs)
    print("MODULES " + json.dumps(sorted(sys.modules)), flush=True)
    return record

app.execute = job_then_modules
sys.argv = ["regbench", *sys.argv[1:]]
app.main()
"""


def top_level(modules: list[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


@pytest.mark.slow
def test_a_single_job_imports_nothing_of_the_leaderboard(tmp_path):
    done = subprocess.run([sys.executable, "-c", SINGLE_JOB, *TINY, "threads=1", f"hydra.run.dir={tmp_path}"],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stdout.splitlines() if line.startswith("MODULES "))
    modules = top_level(json.loads(line.removeprefix("MODULES ")))
    assert "torch" in modules and "hydra" in modules  # the list is the job's
    assert sorted(modules & set(LEADERBOARD_ONLY)) == []
    assert json.loads((tmp_path / "metrics.json").read_text())["status"] == "completed"


class ModulesAtJobEnd(Callback):
    """Test-only Hydra callback: at the end of each job, in the job's own process, write the modules it
    holds into modules.json in the job dir."""

    def on_job_end(self, config, job_return, **kwargs) -> None:
        out = Path(HydraConfig.get().runtime.output_dir)
        (out / "modules.json").write_text(json.dumps({"pid": os.getpid(), "modules": sorted(sys.modules)}))


@pytest.mark.slow
# a tiny job's step is far below jobs.STEP_FLOPS_PER_THREAD: one thread under every launcher (the share
# each launcher gives a larger job: tests/test_jobs.py, tests/test_threads.py)
@pytest.mark.parametrize("launcher,threads", [
    ([], 1),                                                           # one job at a time
    (["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], 1),         # 2 jobs at once
    (["hydra/launcher=submitit_local"], 1),                            # cpus_per_task unset: 1
    (["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "threads=2"], 2),  # explicit threads win
], ids=["basic", "joblib", "submitit_local", "explicit"])
def test_parallel_jobs_share_the_cores(tmp_path, launcher, threads):
    sweep = tmp_path / "sweep"
    done = run_cli("-m", "regularizer=none,l2", *TINY, *launcher, f"hydra.sweep.dir={sweep}",
                   f"+hydra.callbacks.modules._target_={__name__}.ModulesAtJobEnd", env=USERS_THREADS)
    assert done.returncode == 0, done.stderr
    records = [json.loads(path.read_text()) for path in sorted(sweep.glob("*/metrics.json"))]
    assert [record["threads"] for record in records] == [threads, threads]
    held = [json.loads(path.read_text()) for path in sorted(sweep.glob("*/modules.json"))]
    assert len(held) == 2 and [h["pid"] for h in held] == [r["pid"] for r in records]
    for job in held:  # a worker unpickles the leaderboard callback: it must not bring pandas along
        assert sorted(top_level(job["modules"]) & set(LEADERBOARD_ONLY)) == []
    assert (sweep / "leaderboard.csv").exists()  # built at the end, in the launcher process

"""Sweeps through submitit: submitit_local for real, and the SLURM preset (conf/hydra/launcher/slurm.yaml)
up to the `sbatch` call, since no SLURM cluster is reachable from the tests."""
from __future__ import annotations

import json
import os
import sys

import pandas as pd
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf
from submitit.slurm.slurm import SlurmJob

from regbench.config import CONF_DIR
from tests.conftest import run_cli

SLURM_LAUNCHER = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"


@pytest.mark.slow
def test_submitit_local_sweep_runs_jobs_in_subprocesses_and_writes_the_leaderboard(tmp_path):
    sweep = tmp_path / "sweep"
    done = run_cli("-m", "+suite=smoke", "trainer.epochs=1", "regularizer=none,l2",
                   "hydra/launcher=submitit_local", f"hydra.sweep.dir={sweep}")
    assert done.returncode == 0, done.stderr
    # submitit ran each job in its own process and pickled its return value beside its logs
    assert len(list(sweep.glob(".submitit/*/*_result.pkl"))) == 2
    statuses = [json.loads(path.read_text())["status"] for path in sweep.glob("**/metrics.json")]
    assert statuses == ["completed", "completed"]
    assert sorted(pd.read_csv(sweep / "leaderboard.csv").technique) == ["l2", "none"]


def test_slurm_preset_composes_with_its_values_and_takes_overrides(make_cfg):
    preset = OmegaConf.load(CONF_DIR / "hydra" / "launcher" / "slurm.yaml")
    knobs = {key: preset[key] for key in preset if key != "defaults"}
    assert set(knobs) == {"partition", "timeout_min", "cpus_per_task", "gpus_per_node", "mem_gb",
                          "array_parallelism", "name"}
    launcher = make_cfg("hydra/launcher=slurm", hydra=True).hydra.launcher
    assert launcher._target_ == SLURM_LAUNCHER
    assert {key: launcher[key] for key in knobs} == knobs  # the preset's values, not the plugin's
    launcher = make_cfg("hydra/launcher=slurm", "hydra.launcher.partition=gpu",
                        "hydra.launcher.gpus_per_node=1", "hydra.launcher.account=lab", hydra=True).hydra.launcher
    assert (launcher.partition, launcher.gpus_per_node, launcher.account) == ("gpu", 1, "lab")


def test_slurm_preset_submits_an_sbatch_array_with_its_resources(make_cfg, tmp_path, monkeypatch):
    """The closest real check without a SLURM cluster: the SlurmLauncher that `regbench -m
    hydra/launcher=slurm ...` builds from the preset runs its own `launch` (submitit's SlurmExecutor
    writes the sbatch script and calls `sbatch`); stubs of `srun` and `sbatch` on PATH stand in for
    SLURM, and the test reads the script that `sbatch` received."""
    bin_dir, script = tmp_path / "bin", tmp_path / "submitted.sh"
    bin_dir.mkdir()
    stubs = {"srun": "exit 1",  # submitit only checks that srun exists
             "sbatch": f'cp "$1" "{script}"\necho "Submitted batch job 4242"'}
    for name, body in stubs.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(SlurmJob, "results", lambda job: [job.job_id])  # nothing to wait for
    cfg = make_cfg("hydra/launcher=slurm", "hydra.launcher.partition=gpu", "hydra.launcher.timeout_min=90",
                   "hydra.launcher.cpus_per_task=6", "hydra.launcher.gpus_per_node=1",
                   "hydra.launcher.mem_gb=16", "hydra.launcher.array_parallelism=2",
                   f"hydra.sweep.dir={tmp_path / 'sweep'}", hydra=True)
    launcher = instantiate(cfg.hydra.launcher)
    launcher.setup(hydra_context=None, task_function=lambda job_cfg: None, config=cfg)
    submitted = launcher.launch([["regularizer=none"], ["regularizer=l2"], ["regularizer=dropout"]],
                                initial_job_idx=0)
    assert submitted == ["4242_0", "4242_1", "4242_2"]  # one array, a task per job
    lines = script.read_text().splitlines()
    for flag in ("--partition=gpu", "--time=90", "--cpus-per-task=6", "--gpus-per-node=1", "--mem=16GB",
                 "--array=0-2%2", "--job-name=regbench"):
        assert f"#SBATCH {flag}" in lines
    # the jobs run with the launcher's own interpreter, so its environment needs no activation in `setup`
    assert any(line.startswith("srun ") and f"{sys.executable} -u -m submitit.core._submit" in line
               for line in lines)


@pytest.mark.slow
def test_the_slurm_launcher_off_a_cluster_is_one_line(tmp_path):
    """No srun here: submitit refuses to start; the user gets one line and exit code 2, no traceback."""
    done = run_cli("-m", "+suite=smoke", "hydra/launcher=slurm", f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        'regbench: error: hydra/launcher could not start the sweep: Could not detect "srun", '
        "are you indeed on a slurm cluster?"]

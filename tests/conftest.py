"""Shared fixtures: compose the real conf/ (as the app does), run the real CLI in subprocesses.

Speed (`make test` runs the tests in parallel with pytest-xdist, `make test-fast` leaves out those marked
`slow`): torch takes one thread here and in every process the tests start, since the runs are tiny and
waiting threads collapse when another process holds a core (DESIGN.md: 74 s against 6.4 s); the MNIST-1D
cache is one for all workers.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from regbench import wiring  # noqa: F401 (the resolvers and ConfigStore node conf/ needs)
from regbench.config import CONF_DIR

REPO = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    """One torch thread in the test processes and in every process they start. A hook, not module code:
    job processes import test modules (test_job_process's Hydra callback), and with them this file."""
    import torch

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


@pytest.fixture(scope="session", autouse=True)
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One MNIST-1D cache for the whole session (all xdist workers: draws are written atomically),
    shared with subprocesses through the environment."""
    if "PYTEST_XDIST_WORKER" in os.environ:   # each worker's basetemp is a folder of the session's
        path = tmp_path_factory.getbasetemp().parent / "data"
        path.mkdir(exist_ok=True)
    else:
        path = tmp_path_factory.mktemp("data")
    os.environ["REGBENCH_DATA_DIR"] = str(path)
    return path


@pytest.fixture(autouse=True)
def no_terminal_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test sees the widths a plain `pytest` process sees: pytest-xdist's workers get COLUMNS and
    LINES from the controller, which narrowed the leaderboard and progress lines tests read. A test
    that needs a width sets its own (env={"COLUMNS": "80"})."""
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.delenv("LINES", raising=False)


@pytest.fixture
def make_cfg():
    """make_cfg(*overrides) -> the composed config, starting from the smoke preset."""
    def make(*overrides: str, smoke: bool = True, hydra: bool = False) -> DictConfig:
        """hydra=True: include the `hydra` node (launcher, sweeper, mode)."""
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return compose("config", overrides=[*(["+suite=smoke"] if smoke else []), *overrides],
                           return_hydra_config=hydra)
    yield make
    GlobalHydra.instance().clear()


def environment(changes: dict | None = None) -> dict:
    """os.environ with `changes`; a variable whose value is None is left out (OMP_NUM_THREADS: None gives
    a process torch's own thread count)."""
    merged = {**os.environ, **(changes or {})}
    return {key: value for key, value in merged.items() if value is not None}


def run_cli(*args: str, cwd: Path | None = None, module: str = "regbench",
            env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `python -m <module> args...` as a user would; returns the finished process."""
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd or REPO, capture_output=True,
                          text=True, env=environment(env), timeout=600)

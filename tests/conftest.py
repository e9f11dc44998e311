"""Shared fixtures: compose the real conf/ (as the app does), run the real CLI in subprocesses."""
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


@pytest.fixture(scope="session", autouse=True)
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One MNIST-1D cache for the whole session, shared with subprocesses through the environment."""
    path = tmp_path_factory.mktemp("data")
    os.environ["REGBENCH_DATA_DIR"] = str(path)
    return path


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


def run_cli(*args: str, cwd: Path | None = None, module: str = "regbench",
            env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `python -m <module> args...` as a user would; returns the finished process."""
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd or REPO, capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=600)

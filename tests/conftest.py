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


# Each `python -m regbench` pays ~2 s of CPU to import torch and Hydra before it reads an argument, and
# the suite starts a couple of hundred of them. A forkserver that has imported them once forks a fresh
# process per command instead: a real process with its own argv, cwd, environment, stdout, stderr and
# exit code, running the same `python -m` entry point. Only the imports are shared, so a command whose
# environment changes what an import reads (env=..., e.g. OMP_NUM_THREADS) still starts from scratch.
PRELOADED = ("torch", "hydra", "matplotlib", "regbench.app", "regbench.report.cli", "tests.conftest")
# joblib's worker pool outlives a forked command's exit (loky's idle timeout is 300 s): start afresh
FRESH_PROCESS_ARGS = ("joblib", "suite=chapter9", "suite=tuned")
_forkserver = None


def _forked_cli(module: str, args: list[str], cwd: str, env: dict, out: str, err: str) -> None:
    """In the forked process: what `python -m module args` does, with stdout and stderr in files."""
    import atexit
    import runpy

    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    for fd, path in ((1, out), (2, err)):
        file = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(file, fd)
        os.close(file)
    sys.stdout = open(1, "w", encoding="utf-8", errors="backslashreplace", closefd=False)
    sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False, buffering=1)
    sys.argv = [module, *args]
    sys.path[0] = cwd   # python -m puts the cwd first
    if not hasattr(sys.modules.get(module), "__path__"):   # a fresh process has not imported it yet
        sys.modules.pop(module, None)
    code = 0
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as exit_:
        code = exit_.code
    finally:
        atexit._run_exitfuncs()   # multiprocessing ends the process with os._exit, which skips them
        sys.stdout.flush()
        sys.stderr.flush()
    raise SystemExit(code)


def run_cli(*args: str, cwd: Path | None = None, module: str = "regbench",
            env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `python -m <module> args...` as a user would; returns the finished process (forked from a
    process that has imported torch and Hydra, or started from scratch when `env` changes anything)."""
    global _forkserver
    cwd = Path(cwd or REPO)
    if env or any(word in arg for arg in args for word in FRESH_PROCESS_ARGS):
        return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, capture_output=True,
                              text=True, env=environment(env), timeout=600)
    if _forkserver is None:
        import multiprocessing

        _forkserver = multiprocessing.get_context("forkserver")
        _forkserver.set_forkserver_preload(list(PRELOADED))
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        out, err = Path(folder, "stdout"), Path(folder, "stderr")
        process = _forkserver.Process(target=_forked_cli,
                                      args=(module, list(args), str(cwd), environment(), str(out), str(err)))
        process.start()
        process.join(600)
        if process.exitcode is None:
            process.kill()
            process.join()
            raise subprocess.TimeoutExpired([module, *args], 600)
        return subprocess.CompletedProcess([sys.executable, "-m", module, *args], process.exitcode,
                                           out.read_text(errors="backslashreplace"),
                                           err.read_text(errors="backslashreplace"))


def as_a_terminal_starts_it() -> None:
    """preexec_fn for a process a test interrupts: SIGINT at its default and unblocked, as a shell starts
    a command. A pytest worker's own signal state is not the user's (one ignored SIGINT there is
    inherited by every process it starts), so a Ctrl-C test should not depend on it."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])

"""A user's mistakes through the real command line: one line that says what was meant, exit 2, no
traceback, and no run or sweep dir left behind. Run in an empty cwd, so that Hydra's default
outputs/ dir is the one that must not appear."""
from __future__ import annotations

import hydra
import pytest
import torch

import regbench
from tests.conftest import run_cli

# (arguments, text the one line must contain)
TYPOS = [
    (["regularizer=dropuot"], "regularizer=dropuot is not an option: did you mean regularizer=dropout?"),
    (["dataset=mnist1"], "dataset=mnist1 is not an option: did you mean dataset=mnist1d?"),
    (["trainer.epoch=3"], "trainer.epoch is not a setting of trainer: did you mean trainer.epochs?"),
    (["replicate=3"], "replicate is not a regbench setting: did you mean replicates?"),
    (["+replicate=3"], "replicate is not a regbench setting: did you mean replicates?"),
    (["regularizer=dropout", "dataset.n_trian=100"], "dataset.n_trian is not a setting of dataset: did you mean "
                                                     "dataset.n_train?"),
    (["-m", "regularizer=none,dropuot"], "did you mean regularizer=dropout?"),
    (["-m", "trainer.epoch=2,3"], "did you mean trainer.epochs?"),
]


def refused(done, message: str) -> None:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith("regbench: error:") and message in lines[0], done.stderr
    assert "Traceback" not in done.stdout + done.stderr and "not in struct" not in done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("args, message", TYPOS, ids=[" ".join(c[0]) for c in TYPOS])
def test_a_typo_says_what_was_meant_and_leaves_no_dir(tmp_path, args, message):
    done = run_cli(*args, "+suite=smoke", cwd=tmp_path)
    refused(done, message)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_a_mistake_found_in_the_job_leaves_no_dir(tmp_path):
    """Hydra makes the run dir before the job checks its config: the job removes it again."""
    (tmp_path / "text.npz").write_text("x,y\n1,0\n")
    for args, message in ((["seed=-1"], "seed=-1"), (["+foo=1"], "foo is not a regbench setting"),
                          (["dataset=file", "dataset.path=text.npz"], "is a text file, not an .npz archive")):
        refused(run_cli("+suite=smoke", *args, cwd=tmp_path), message)
        assert [p.name for p in tmp_path.iterdir()] == ["text.npz"], args


@pytest.mark.slow
def test_a_mistake_never_removes_a_dir_that_was_there(tmp_path):
    """A run dir given on the command line that exists (empty here) stays (with the .hydra/ and log of the
    refused run in it), and so does the parent of a new one."""
    run_dir = tmp_path / "mine"
    run_dir.mkdir()
    refused(run_cli("+suite=smoke", "seed=-1", f"hydra.run.dir={run_dir}", cwd=tmp_path), "seed=-1")
    assert run_dir.is_dir()
    refused(run_cli("+suite=smoke", "seed=-1", f"hydra.run.dir={run_dir}/new", cwd=tmp_path), "seed=-1")
    assert [p.name for p in tmp_path.iterdir()] == ["mine"] and not (run_dir / "new").exists()
    assert not (run_dir / "metrics.json").exists()


@pytest.mark.slow
def test_version_names_regbench_torch_and_hydra(tmp_path):
    done = run_cli("--version", cwd=tmp_path)
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout == f"regbench {regbench.__version__} (torch {torch.__version__}, Hydra {hydra.__version__})\n"
    assert list(tmp_path.iterdir()) == []

"""Bad input through the real command line: one line naming the key or file, a non-zero exit, no
traceback, and nothing written or lost. Values of single keys are in test_config.py; this table holds
combinations, keys regbench does not read, and files."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli

# (arguments, text the one line must contain, exit code)
CASES = [
    (["regularizer=[l2,l2]"], "selects l2 twice", 2),
    (["+foo=1"], "foo is not a regbench setting", 2),
    (["regularizer=none", "regularizer.dropout.pp=0.2"], "regularizer.dropout.pp", 2),
    (["regularizer.nope.strength=1"], "regularizer.nope is not a technique", 2),
    (["regularizer=dropout", "regularizer.dropout.p=1.5"], "regularizer.dropout.p", 2),
    (["+baseline.regularizer.l2.strength=1"], "baseline.regularizer", 2),
    (["force=maybe"], "force", 2),
    (["trainer.optimizer=adam", "trainer.momentum=0.5"], "trainer.momentum", 2),
    (["replicates=1000000"], "replicates", 2),
    (["dataset.n_train=100000"], "dataset.n_train", 2),
    (["regularizer=early_stopping", "dataset.val_fraction=0"], "dataset.val_fraction", 2),
    (["dataset.data_dir={blocker}/cache", "dataset.generator_seed=7"], "blocker", 1),
]


@pytest.mark.slow
@pytest.mark.parametrize("args, message, code", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, args, message, code):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a directory should be")
    run_dir = tmp_path / "run"
    done = run_cli("+suite=smoke", *[a.format(blocker=blocker) for a in args], f"hydra.run.dir={run_dir}")
    lines = done.stderr.strip().splitlines()
    assert done.returncode == code, done.stderr
    assert len(lines) == 1 and lines[0].startswith("regbench: error:") and message in lines[0], done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    if code == 2:   # refused at start: nothing written
        assert not (run_dir / "metrics.json").exists()
    else:           # failed while running: recorded as failed
        assert json.loads((run_dir / "metrics.json").read_text())["status"] == "failed"
    assert blocker.read_text() == "a file where a directory should be"


@pytest.mark.slow
def test_bad_input_never_touches_an_earlier_result(tmp_path):
    """A mistake in a rerun into a dir that holds a completed result leaves that result as it was."""
    run_dir = tmp_path / "run"
    assert run_cli("+suite=smoke", "trainer.epochs=1", f"hydra.run.dir={run_dir}").returncode == 0
    before = (run_dir / "metrics.json").read_bytes()
    for args in (["trainer.epochs=1", "dataset.n_train=100000"], ["trainer.epochs=-1"]):
        done = run_cli("+suite=smoke", *args, f"hydra.run.dir={run_dir}")
        assert done.returncode == 2 and "Traceback" not in done.stderr
    assert (run_dir / "metrics.json").read_bytes() == before
    assert sorted(p.name for p in Path(tmp_path).iterdir()) == ["run"]

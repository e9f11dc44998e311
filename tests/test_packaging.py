"""A built wheel ships conf/ (through the regbench/conf symlink, see pyproject.toml) and runs from anywhere.

Everything here is offline: the venv's own setuptools builds (--no-build-isolation), the wheel goes into a
plain folder (--target) and the venv supplies its dependencies.
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO

# Not source: VCS, venv and cache dirs, build outputs, run outputs and the data cache.
# "data" (the data cache) only at the top: regbench/data is source.
_IGNORED = shutil.ignore_patterns(".*", "__pycache__", "*.egg-info", "build", "dist", "outputs", "multirun")


def NOT_SOURCE(directory: str, names: list[str]) -> set[str]:
    top = Path(directory).resolve() == REPO.resolve()
    return set(_IGNORED(directory, names)) | ({"data"} & set(names) if top else set())


def run(*args: str, cwd: Path, env: dict | None = None, umask: int = -1) -> str:
    done = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})}, umask=umask)
    assert done.returncode == 0, done.stderr
    return done.stdout


def pip(*args: str, cwd: Path) -> None:
    run("-m", "pip", *args, "--no-deps", "--no-index", "--disable-pip-version-check", "--quiet", cwd=cwd)


def packaged_conf(wheel: Path) -> set[str]:
    prefix = "regbench/conf/"
    return {name[len(prefix):] for name in zipfile.ZipFile(wheel).namelist() if name.startswith(prefix)}


@pytest.mark.slow
def test_wheels_ship_conf_and_the_installed_wheel_runs_from_any_directory(tmp_path):
    # Build from a copy, so the build never writes into the working tree that other runs read.
    source = tmp_path / "source"
    shutil.copytree(REPO, source, symlinks=True, ignore=NOT_SOURCE)
    wheel_dir, from_sdist = tmp_path / "wheel", tmp_path / "from_sdist"
    pip("wheel", "--no-build-isolation", "--wheel-dir", str(wheel_dir), str(source), cwd=tmp_path)
    # `python -m build` goes through an sdist: build one with the same backend hook, then its wheel.
    sdist = run("-c", "import sys; from setuptools import build_meta as b; print(b.build_sdist(sys.argv[1]))",
                str(tmp_path / "sdist"), cwd=source).split()[-1]
    pip("wheel", "--no-build-isolation", "--wheel-dir", str(from_sdist), str(tmp_path / "sdist" / sdist),
        cwd=tmp_path)
    (wheel,), (wheel_of_sdist,) = wheel_dir.glob("regbench-*.whl"), from_sdist.glob("regbench-*.whl")
    conf = {str(path.relative_to(REPO / "conf")) for path in (REPO / "conf").glob("**/*.yaml")}
    assert "config.yaml" in conf and "suite/smoke.yaml" in conf
    assert packaged_conf(wheel) == conf
    assert packaged_conf(wheel_of_sdist) == conf

    site, elsewhere, run_dir = tmp_path / "site", tmp_path / "elsewhere", tmp_path / "run"
    elsewhere.mkdir()
    pip("install", "--target", str(site), str(wheel), cwd=tmp_path)
    env = {"PYTHONPATH": str(site)}
    imported = run("-c", "import regbench; print(regbench.__file__)", cwd=elsewhere, env=env).strip()
    assert Path(imported) == site / "regbench" / "__init__.py"  # not the editable source
    run("-m", "regbench", "+suite=smoke", "trainer.epochs=1", f"hydra.run.dir={run_dir}",
        cwd=elsewhere, env=env, umask=0o022)
    hydra_yaml = (run_dir / ".hydra" / "hydra.yaml").read_text()
    assert f"path: {site / 'regbench' / 'conf'}\n" in hydra_yaml  # Hydra read the packaged conf/
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "completed"
    for name in ("metrics.json", "curves.csv"):
        assert stat.S_IMODE((run_dir / name).stat().st_mode) == 0o644, name

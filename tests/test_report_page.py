"""Pictures and the report page, from hand-written result files and from real CLI runs."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest

from regbench.report.collect import collect
from regbench.results import IDENTITY_SCHEME
from regbench.report.curves import curve_bands, fitted_functions
from regbench.report.page import build_report
from regbench.report.plots import draw_all
from regbench.report.summarize import summarize
from tests.conftest import run_cli

PNG = b"\x89PNG\r\n\x1a\n"


def classification_job(root: Path, name: str, config_hash: str, technique: str, accs: dict[int, float],
                       members: int = 0, baseline_hash: str | None = None) -> Path:
    """A job dir with metrics.json and curves.csv (5 epochs); accs: seed -> test accuracy."""
    job = root / name
    job.mkdir(parents=True)
    runs = []
    for seed, acc in accs.items():
        run = {"seed": seed, "train_acc": 1.0, "val_acc": acc, "test_acc": acc, "gap_acc": 1.0 - acc,
               "train_loss": 0.1, "val_loss": 1 - acc, "test_loss": 1 - acc, "gap_loss": 0.9 - acc,
               "epochs": 5, "best_epoch": 5, "diverged": False, "diverged_epoch": None}
        if members:
            run["member_test_accs"] = [acc - 0.01 * (m + 1) for m in range(members)]
            run["member_test_acc"] = float(np.mean(run["member_test_accs"]))
        runs.append(run)
    record = {"status": "completed", "error": None, "technique": technique, "dataset": "digits", "model": "mlp",
              "config_hash": config_hash, "baseline_hash": baseline_hash or config_hash,
              "identity": {"scheme": IDENTITY_SCHEME},
              "labels": {"dataset": "digits", "model": "mlp", "setting": ""},
              "overrides": ["dataset=digits", f"regularizer={technique}"], "config": {}, "runs": runs,
              "wall_seconds": 1.5, "device": "cpu", "versions": {"regbench": "0.1.0"}, "host": "testhost"}
    (job / "metrics.json").write_text(json.dumps(record))
    lines = ["epoch,seed,lr,train_loss,val_loss,test_loss,train_acc,val_acc,test_acc"]
    for epoch in range(1, 6):
        for seed, acc in accs.items():
            lines.append(f"{epoch},{seed},0.05,{1 / epoch},{1.2 / epoch + seed * 0.01},{1.1 / epoch},"
                         f"{1 - 0.5 / epoch},{acc * epoch / 5},{acc * epoch / 5 + seed * 0.01}")
    (job / "curves.csv").write_text("\n".join(lines) + "\n")
    return job


def regression_job(root: Path, name: str, config_hash: str, technique: str, seeds: list[int],
                   baseline_hash: str | None = None) -> Path:
    job = root / name
    job.mkdir(parents=True)
    runs = [{"seed": s, "train_loss": 0.02, "val_loss": 0.1, "test_loss": 0.05 + 0.01 * s, "gap_loss": 0.03,
             "train_acc": None, "val_acc": None, "test_acc": None, "gap_acc": None,
             "epochs": 3, "best_epoch": 3, "diverged": False, "diverged_epoch": None} for s in seeds]
    record = {"status": "completed", "error": None, "technique": technique, "dataset": "toy1d", "model": "shallow",
              "config_hash": config_hash, "baseline_hash": baseline_hash or config_hash,
              "identity": {"scheme": IDENTITY_SCHEME},
              "labels": {"dataset": "toy1d", "model": "shallow", "setting": ""}, "overrides": ["dataset=toy1d"],
              "runs": runs, "wall_seconds": 0.5}
    (job / "metrics.json").write_text(json.dumps(record))
    x = np.linspace(0, 1, 50)
    np.savez(job / "predictions.npz", x_test=x, y_test=np.exp(np.sin(2 * np.pi * x)),
             predictions=np.stack([np.exp(np.sin(2 * np.pi * x)) + 0.1 * s for s in seeds]),
             seeds=np.array(seeds), x_train=x[::5], y_train=np.exp(np.sin(2 * np.pi * x[::5])))
    (job / "curves.csv").write_text("epoch,seed,lr,train_loss,val_loss,test_loss\n"
                                    + "".join(f"{e},{s},0.01,{1 / e},{2 / e},{1.5 / e}\n"
                                              for e in (1, 2, 3) for s in seeds))
    return job


def assert_picture(path: Path) -> None:
    """A real PNG with something drawn on it (not one colour)."""
    import matplotlib.image

    data = path.read_bytes()
    assert data.startswith(PNG) and len(data) > 5000, path
    pixels = matplotlib.image.imread(path)
    assert pixels.shape[0] > 100 and pixels.shape[1] > 200
    assert len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 20, f"{path.name} is almost blank"


@pytest.fixture
def sweep(tmp_path):
    root = tmp_path / "sweep"
    base, l2, ens = "a" * 16, "b" * 16, "c" * 16
    classification_job(root, "none", base, "none", {0: 0.90, 1: 0.92, 2: 0.91})
    classification_job(root, "l2", l2, "l2", {0: 0.93, 1: 0.94, 2: 0.92}, baseline_hash=base)
    classification_job(root, "ensemble", ens, "ensemble", {0: 0.95, 1: 0.96, 2: 0.94}, members=4, baseline_hash=base)
    regression_job(root, "toy_none", "d" * 16, "none", [0, 1])
    regression_job(root, "toy_l2", "e" * 16, "l2", [0, 1], baseline_hash="d" * 16)
    return root


@pytest.mark.slow
def test_every_picture_is_drawn_from_the_result_files(sweep):
    found = collect([sweep])
    pictures = draw_all(summarize(found.runs), found.runs, sweep / "report")
    names = sorted(p.path.name for p in pictures)
    assert names == sorted(["bars-digits-mlp.png", "curves_loss-digits-mlp.png", "curves_acc-digits-mlp.png",
                            "members-digits-mlp.png", "bars-toy1d-shallow.png", "curves_loss-toy1d-shallow.png",
                            "functions-toy1d-shallow.png"])
    for picture in pictures:
        assert_picture(picture.path)


def test_curve_bands_are_the_mean_and_the_range_over_the_counted_seeds(sweep):
    runs = collect([sweep]).runs
    bands = curve_bands(runs, "c" * 16)
    # val_acc = acc·epoch/5: at epoch 5, the seeds' test accuracies
    assert bands.loc[5, ("val_acc", "mean")] == pytest.approx(0.95)
    assert bands.loc[5, ("val_acc", "low")] == pytest.approx(0.94)
    assert bands.loc[5, ("val_acc", "high")] == pytest.approx(0.96)
    assert bands.loc[2, ("val_loss", "mean")] == pytest.approx(0.6 + 0.01)  # seeds 0..2 add 0.01·seed


def test_fitted_functions_keep_only_the_rows_seeds(sweep):
    runs = collect([sweep]).runs
    runs = runs[~((runs.config_hash == "d" * 16) & (runs.seed == 1))]  # as if seed 1 were not counted
    fit = fitted_functions(runs, "d" * 16)
    assert fit["predictions"].shape == (1, 50)
    np.testing.assert_allclose(fit["mean"], fit["y_test"])  # seed 0's fit is the true function


@pytest.mark.slow
def test_the_report_embeds_and_links_every_picture(sweep):
    written = build_report([sweep])
    md = (sweep / "report.md").read_text()
    page = (sweep / "report.html").read_text()
    pictures = sorted((sweep / "report").glob("*.png"))
    assert len(pictures) == 7 and set(written[2:]) == set(pictures)
    for picture in pictures:
        assert f"](report/{picture.name})" in md
        assert base64.b64encode(picture.read_bytes()).decode() in page
    assert "regbench dataset=digits regularizer=ensemble" in md and "testhost" in md
    assert "src='report/" not in page  # self-contained: nothing to fetch beside it


@pytest.mark.slow
def test_failed_and_not_applicable_jobs_are_listed_on_the_page(sweep):
    (sweep / "broken").mkdir()
    (sweep / "broken" / "metrics.json").write_text(json.dumps(
        {"status": "failed", "error": "RuntimeError: out of memory", "technique": "mixup", "runs": []}))
    (sweep / "na").mkdir()
    (sweep / "na" / "metrics.json").write_text(json.dumps(
        {"status": "not_applicable", "error": None, "reason": "needs classes", "technique": "label_smoothing",
         "runs": []}))
    build_report([sweep])
    section = (sweep / "report.md").read_text().split("## Failed, diverged and not applicable")[1]
    assert "failed: mixup" in section and "out of memory" in section
    assert "not applicable: label_smoothing" in section and "needs classes" in section


@pytest.mark.slow
def test_a_toy1d_job_saves_its_fitted_functions(tmp_path):
    job = tmp_path / "toy"
    done = run_cli("dataset=toy1d", "replicates=2", "threads=1", "trainer.epochs=5", "progress=false",
                   f"hydra.run.dir={job}")
    assert done.returncode == 0, done.stderr
    with np.load(job / "predictions.npz") as npz:
        assert npz["x_test"].shape == npz["y_test"].shape == (200,)
        assert npz["predictions"].shape == (2, 200)
        assert npz["x_train"].shape == npz["y_train"].shape == (15,)
        assert list(npz["seeds"]) == [0, 1]
        np.testing.assert_allclose(npz["y_test"], np.exp(np.sin(2 * np.pi * npz["x_test"])), rtol=1e-5)


@pytest.mark.slow
def test_a_classification_job_saves_no_predictions_and_each_members_accuracy(tmp_path):
    job = tmp_path / "digits"
    done = run_cli("dataset=digits", "regularizer=ensemble", "regularizer.ensemble.members=3", "+suite=smoke",
                   "threads=1", f"hydra.run.dir={job}")
    assert done.returncode == 0, done.stderr
    assert not (job / "predictions.npz").exists()
    runs = json.loads((job / "metrics.json").read_text())["runs"]
    for run in runs:
        assert len(run["member_test_accs"]) == 3
        assert np.mean(run["member_test_accs"]) == pytest.approx(run["member_test_acc"])


@pytest.mark.slow
def test_leaderboard_report_flag_rebuilds_the_page(sweep):
    done = run_cli(str(sweep), "--report", module="regbench.report.cli")
    assert done.returncode == 0, done.stderr
    assert (sweep / "report.html").stat().st_size > 10000
    assert len(list((sweep / "report").glob("*.png"))) == 7
    assert "report in " in done.stdout and "report.html" in done.stdout


@pytest.mark.slow
def test_the_end_of_sweep_callback_builds_the_page(sweep):
    from omegaconf import OmegaConf
    from regbench.report.cli import LeaderboardCallback

    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep)}}})
    callback = LeaderboardCallback()
    callback.on_multirun_start(config)
    callback.on_multirun_end(config)
    assert (sweep / "report.html").exists() and len(list((sweep / "report").glob("*.png"))) == 7


def test_a_report_that_cannot_be_built_is_one_line_and_never_raises(sweep, capsys, monkeypatch):
    from omegaconf import OmegaConf
    import regbench.report.page as page
    from regbench.report.cli import LeaderboardCallback

    def broken(*args, **kwargs):
        raise RuntimeError("no display")

    monkeypatch.setattr(page, "draw_all", broken)
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep)}}})
    callback = LeaderboardCallback()
    callback.on_multirun_start(config)
    callback.on_multirun_end(config)
    assert not (sweep / "report.html").exists()
    assert capsys.readouterr().err.strip().splitlines() == ["regbench report: not built (RuntimeError: no display)"]
    assert (sweep / "leaderboard.md").exists()  # the leaderboard itself is still written


@pytest.mark.slow
def test_the_page_says_which_rows_pool_runs_of_several_versions(sweep):
    job = classification_job(sweep, "l2_later", "b" * 16, "l2", {3: 0.95}, baseline_hash="a" * 16)
    record = json.loads((job / "metrics.json").read_text())
    record["versions"] = {"regbench": "0.2.0", "torch": "2.14.1"}
    (job / "metrics.json").write_text(json.dumps(record))
    build_report([sweep])
    line = "config bbbbbbbb (l2) pools runs from regbench 0.1.0 and 0.2.0; torch unknown and 2.14.1"
    assert line in (sweep / "report.md").read_text()
    assert line in (sweep / "report.html").read_text()

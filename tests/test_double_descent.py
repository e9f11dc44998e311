"""+suite=double_descent and its picture (regbench/report/capacity.py): the suite sweeps widths, label noise
and an L2 grid chosen on validation in one population; the width axis, the interpolation threshold, the
picture and the table on hand-made results; nothing is drawn without a width axis."""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from regbench.report import capacity
from regbench.report.collect import collect
from regbench.report.summarize import summarize
from regbench.results import IDENTITY_SCHEME
from regbench.settings import Settings

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def swept(cfg, key: str) -> list:
    """The values a sweeper param runs through, parsed as Hydra parses it."""
    (override,) = OverridesParser.create().parse_overrides([f"{key}={cfg.hydra.sweeper.params[key]}"])
    return list(override.sweep_iterator())


def test_the_suite_sweeps_widths_and_label_noise_with_an_l2_grid_in_one_population(make_cfg):
    cfg = make_cfg("+suite=double_descent", smoke=False, hydra=True)
    hidden = swept(cfg, "model.hidden")
    widths = [layers[0] for layers in hidden]
    assert all(len(layers) == 2 and len(set(layers)) == 1 for layers in hidden)   # 40-h-h-10
    assert len(widths) >= 10 and min(widths) == 2 and max(widths) >= 150
    assert widths == sorted(widths, reverse=True)   # the longest jobs start first
    assert swept(cfg, "dataset.label_noise") == [0.0, 0.15]
    assert swept(cfg, "regularizer") == ["none", "l2"]
    assert cfg.hydra.mode.name == "MULTIRUN" and "joblib" in cfg.hydra.launcher._target_.lower()
    trainer = cfg.trainer
    assert (trainer.optimizer, trainer.lr, trainer.momentum, trainer.batch_size, trainer.lr_schedule,
            trainer.epochs) == ("sgd", 0.01, 0.9, 100, "none", 500)

    job = make_cfg("+suite=double_descent", "model.hidden=[64,64]", "regularizer=l2", smoke=False)
    settings = Settings.from_config(job)
    strengths = settings.grid["regularizer.l2.strength"]
    assert len(strengths) >= 3 and len(settings.points) == len(strengths)   # one job trains every value
    assert 1 <= settings.selection_seeds < len(settings.seeds) and len(settings.seeds) - settings.selection_seeds >= 3
    assert settings.model.hidden == [64, 64]
    assert job.dataset.n_train is None   # all 3600 examples: the published threshold and peak need them
    default = make_cfg("regularizer=l2", smoke=False).regularizer.l2.strength
    assert default in strengths   # a fixed-strength line beside the tuned one


def test_subset_smoke_cuts_the_suite_to_the_smoke_sizes(make_cfg):
    cfg = make_cfg("+suite=double_descent", "subset=smoke", smoke=False)
    assert cfg.trainer.epochs == 3   # the suite's trainer option composes before subset=smoke
    assert cfg.trainer.lr == 0.01    # the rest of it stays
    assert cfg.dataset.n_train == 500   # smoke's own subset: the suite sets no n_train to override it


@pytest.mark.parametrize("model, width", [
    ({"name": "mlp", "hidden": [64, 64]}, 64), ({"name": "mlp", "hidden": [7]}, 7), ({"name": "shallow", "hidden": 14}, 14),
    ({"name": "mlp", "hidden": [30, 20]}, None), ({"name": "mlp", "hidden": []}, None), ({"name": "cnn1d"}, None),
    ({"name": "x", "hidden": True}, None)])
def test_the_width_of_a_model(model, width):
    assert capacity.width_of({"model": model}) == width


def test_the_interpolation_threshold_is_the_first_width_that_fits_its_training_set():
    assert capacity.interpolation_threshold([2, 8, 32, 64, 128], [0.5, 0.3, 0.02, 0.01, 0.0]) == 64
    assert capacity.interpolation_threshold([128, 64, 8], [0.0, 0.005, 0.3]) == 64   # any order
    assert capacity.interpolation_threshold([2, 8], [0.5, 0.02]) is None


WIDTHS = (4, 16, 64, 256)
# per width: none's train error and test error (a peak at 64, where it first fits), tuned l2's test error
NONE_TRAIN = {4: 0.40, 16: 0.10, 64: 0.0, 256: 0.0}
NONE_TEST = {4: 0.50, 16: 0.40, 64: 0.55, 256: 0.38}
TUNED_TEST = {4: 0.50, 16: 0.38, 64: 0.40, 256: 0.36}


def write(root: Path, number: int, *, width: int, noise: float, technique: str, baseline: int, test: dict,
          train: dict, seeds=(0, 1, 2), tuned: float | None = None) -> None:
    """A completed metrics.json as a job writes it, with what the leaderboard and the picture read."""
    labels = {"dataset": "mnist1d" if noise == 0 else f"mnist1d[label_noise={noise}]",
              "model": f"mlp[hidden=[{width},{width}]]",
              "setting": f"tuned strength={tuned} trainer.epochs=500" if tuned else "trainer.epochs=500"}
    record = {"status": "completed", "config_hash": f"{number:016x}", "baseline_hash": f"{baseline:016x}",
              "technique": technique, "labels": labels, "identity": {"scheme": IDENTITY_SCHEME},
              "config": {"model": {"name": "mlp", "hidden": [width, width]},
                         "dataset": {"name": "mnist1d", "label_noise": noise}},
              "runs": [{"seed": seed, "test_acc": 1 - test[width] - 0.01 * i, "train_acc": 1 - train[width]}
                       for i, seed in enumerate(seeds)]}
    if tuned:
        record["tuned"] = {"chosen": {"regularizer.l2.strength": tuned}, "grid": "ab" * 8}
    path = root / f"{technique}-{number:08x}" / "metrics.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(record))


def results(root: Path, widths=WIDTHS, noises=(0.0, 0.15)):
    """Hand-made results of a double-descent sweep: none and tuned l2 per width and noise level."""
    number = 1
    for noise in noises:
        for width in widths:
            write(root, number, width=width, noise=noise, technique="none", baseline=number, test=NONE_TEST,
                  train=NONE_TRAIN)
            write(root, number + 1, width=width, noise=noise, technique="l2", baseline=number, test=TUNED_TEST,
                  train={w: 0.05 for w in WIDTHS}, seeds=(1, 2, 3), tuned=0.003)
            number += 2
    found = collect([root])
    return summarize(found.runs), found.runs


def test_widths_are_read_from_each_results_config(tmp_path):
    board, runs = results(tmp_path)
    assert sorted(set(capacity.widths(runs).values())) == list(WIDTHS)


def test_the_picture_draws_error_against_width_on_a_log_axis_with_bands_and_the_threshold(tmp_path):
    board, runs = results(tmp_path / "runs")
    found, common = capacity.points(board, runs)
    assert common == "trainer.epochs=500"
    assert set(found.line) == {"none", "l2 strength tuned on validation"}
    figure = capacity.capacity_figure(plt, found, "mlp")
    axes = [axis for axis in figure.axes if axis.get_title()]
    assert [axis.get_title() for axis in axes] == ["mnist1d", "mnist1d[label_noise=0.15]"]
    for axis in axes:
        assert axis.get_xscale() == "log"
        (threshold,) = [line for line in axis.lines if line.get_gid() == "threshold"]
        assert list(threshold.get_xdata()) == [64, 64]
        assert len([c for c in axis.collections if c.get_gid() == "band"]) == 2   # a band per line
        none = next(line for line in axis.lines if line.get_gid() == "test" and line.get_label() == "none")
        assert list(none.get_xdata()) == list(WIDTHS)
        assert none.get_ydata()[2] == pytest.approx(100 * 0.55 + 1.0)   # mean of 55, 56, 57
    plt.close(figure)


@pytest.mark.slow   # 4 s under load: savefig
def test_the_picture_is_saved_for_the_report(tmp_path):
    board, runs = results(tmp_path / "runs")
    (tmp_path / "report").mkdir()   # draw_all makes it
    pictures = capacity.draw(plt, board, runs, tmp_path / "report")
    assert [p.path.name for p in pictures] == ["capacity-mlp.png"] and pictures[0].path.stat().st_size > 0


def test_the_table_gives_each_width_technique_and_noise_level_with_the_chosen_strength(tmp_path):
    board, runs = results(tmp_path)
    lines = capacity.table_lines(board, runs)
    assert lines[0].startswith("| width | mnist1d: none (n=3) | mnist1d: l2 strength tuned on validation (n=3) |")
    row_64 = next(line for line in lines if line.startswith("| 64 |"))
    assert row_64.split(" | ")[1] == "56.0 ± 2.5"          # 55, 56, 57: t(0.975, 2) × 1 / √3 = 2.48
    assert "(0.003)" in row_64.split(" | ")[2]
    assert lines[-1].endswith("mnist1d: h=64; mnist1d[label_noise=0.15]: h=64.")


def test_nothing_is_drawn_without_a_width_axis(tmp_path):
    board, runs = results(tmp_path, widths=(64,))
    (tmp_path / "report").mkdir()
    assert capacity.draw(plt, board, runs, tmp_path / "report") == []
    assert capacity.table_lines(board, runs) == []
    assert not any((tmp_path / "report").iterdir())


def test_panels_leave_out_the_conditions_every_dataset_shares():
    assert capacity.without_common_conditions(["mnist1d[n_train=1000]", "mnist1d[label_noise=0.15 n_train=1000]"]) \
        == (["mnist1d", "mnist1d[label_noise=0.15]"], "n_train=1000")
    assert capacity.without_common_conditions(["mnist1d", "mnist1d[label_noise=0.15]"]) \
        == (["mnist1d", "mnist1d[label_noise=0.15]"], "")

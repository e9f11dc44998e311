"""What the pictures draw, read back from the matplotlib figures (not only that a PNG exists): markers on
short curves, seeds as dots below 3 seeds, whiskers cut at the metric's range, the paired Δ panel, early
stopping's stop and restored epochs, the full-batch step axis, short Optuna numbers."""
from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch

from regbench.experiment import Experiment
from regbench.report.collect import collect
from regbench.report.plots import bars_figure, curves_figure, short_numbers
from regbench.report.summarize import summarize
from regbench.trainer.loop import train_population
from tests.test_report_page import classification_job

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def board_of(root: Path):
    found = collect([root])
    return summarize(found.runs), found.runs


def with_curves(job: Path, lines: list[str]) -> None:
    (job / "curves.csv").write_text("\n".join(lines) + "\n")


def by_gid(axis, gid: str) -> list:
    return [a for a in [*axis.collections, *axis.lines] if a.get_gid() == gid]


def test_a_curve_measured_at_one_epoch_is_drawn_as_markers(tmp_path):
    # +suite=smoke with 2 epochs: curve_every 5 measures the last epoch only; a line through one point is nothing
    job = classification_job(tmp_path, "a", "a" * 16, "none", {0: 0.5, 1: 0.6})
    with_curves(job, ["epoch,seed,lr,train_loss,val_loss,test_loss,train_acc,val_acc,test_acc",
                      "2,0,0.05,1.0,1.2,1.1,0.40,0.30,0.50", "2,1,0.05,1.0,1.2,1.1,0.50,0.40,0.60"])
    board, runs = board_of(tmp_path)
    figure = curves_figure(plt, board, runs, "acc", "digits")
    axis = figure.axes[0]
    (test,) = by_gid(axis, "mean-test")
    assert test.get_marker() == "o"
    assert list(test.get_xdata()) == [2] and test.get_ydata()[0] == pytest.approx(55.0)
    bands = by_gid(axis, "band")                      # the seeds' range at that epoch: a bar, 50 to 60
    assert any(np.allclose(b.get_segments()[0], [[2, 50], [2, 60]]) for b in bands)
    assert axis.get_xlim()[0] == 0


def test_a_long_curve_has_no_markers(tmp_path):
    classification_job(tmp_path, "a", "a" * 16, "none", {0: 0.5, 1: 0.6})   # 5 epochs
    job = tmp_path / "a"
    with_curves(job, ["epoch,seed,lr,train_loss,val_loss,test_loss,train_acc,val_acc,test_acc"]
                + [f"{e},{s},0.05,1,1,1,0.5,0.5,0.5" for e in range(1, 21) for s in (0, 1)])
    board, runs = board_of(tmp_path)
    (test,) = by_gid(curves_figure(plt, board, runs, "acc", "digits").axes[0], "mean-test")
    assert test.get_marker() in (None, "None", "")


def test_two_seeds_draw_each_seed_and_no_interval(tmp_path):
    classification_job(tmp_path, "none", "b" * 16, "none", {0: 0.50, 1: 0.70})
    classification_job(tmp_path, "l2", "c" * 16, "l2", {0: 0.60, 1: 0.90}, baseline_hash="b" * 16)
    board, runs = board_of(tmp_path)
    figure = bars_figure(plt, board, runs, "digits")
    accuracy, gap, delta = figure.axes[:3]
    assert not by_gid(accuracy, "interval") and not by_gid(delta, "interval")
    dots = sorted(x for c in by_gid(accuracy, "seeds") for x in c.get_offsets()[:, 0])
    assert dots == pytest.approx([50, 60, 70, 90])
    # the Δ panel's dots are the per-seed differences, +10 and +20 points
    assert sorted(x for c in by_gid(delta, "seeds") for x in c.get_offsets()[:, 0]) == pytest.approx([10, 20])
    assert "fewer than 3 seeds" in figure.get_supxlabel()


def test_a_whisker_past_the_metrics_range_is_cut_there_and_marked(tmp_path):
    # 98, 99 and 70 %: mean 89, t interval ± 41 points, which would reach 130 %
    classification_job(tmp_path, "none", "d" * 16, "none", {0: 0.98, 1: 0.99, 2: 0.70})
    board, runs = board_of(tmp_path)
    accuracy = bars_figure(plt, board, runs, "digits").axes[0]
    (whisker,) = by_gid(accuracy, "interval")
    (left, _), (right, _) = whisker.get_segments()[0]
    half = board.test_acc_ci.iloc[0] * 100
    assert half > 11
    assert left == pytest.approx(89.0 - half) and right == 100.0
    (clipped,) = by_gid(accuracy, "clipped")
    assert clipped.get_offsets()[0][0] == 100.0
    assert len(by_gid(accuracy, "cap")) == 1            # the uncut end keeps its cap


def test_the_delta_panel_draws_the_paired_interval(tmp_path):
    classification_job(tmp_path, "none", "e" * 16, "none", {0: 0.70, 1: 0.75, 2: 0.72})
    classification_job(tmp_path, "l2", "f" * 16, "l2", {0: 0.80, 1: 0.82, 2: 0.85}, baseline_hash="e" * 16)
    board, runs = board_of(tmp_path)
    delta = bars_figure(plt, board, runs, "digits").axes[2]
    # differences 10, 7, 13 points: mean 10, sd 3, paired t half-width 4.3027 * 3 / sqrt(3) = 7.4525
    (mean,) = by_gid(delta, "mean")
    assert mean.get_offsets()[0][0] == pytest.approx(10.0)
    (whisker,) = by_gid(delta, "interval")
    (left, _), (right, _) = whisker.get_segments()[0]
    assert (left, right) == (pytest.approx(10 - 7.4525, abs=1e-3), pytest.approx(10 + 7.4525, abs=1e-3))
    assert "paired" in delta.get_title(loc="left")


def test_rows_against_two_baselines_say_which_they_pair_with(tmp_path):
    classification_job(tmp_path, "none", "1" * 16, "none", {0: 0.5, 1: 0.6, 2: 0.55})
    classification_job(tmp_path, "none50", "2" * 16, "none", {0: 0.6, 1: 0.7, 2: 0.65})
    classification_job(tmp_path, "l2", "3" * 16, "l2", {0: 0.6, 1: 0.6, 2: 0.6}, baseline_hash="2" * 16)
    board, runs = board_of(tmp_path)
    labels = [t.get_text() for t in bars_figure(plt, board, runs, "digits").axes[0].get_yticklabels()]
    assert any(label.endswith("[vs B]") or label.endswith("[vs A]") for label in labels)
    assert sum("[baseline" in label for label in labels) == 2


def test_optuna_values_show_four_significant_digits(tmp_path):
    assert short_numbers("regularizer.dropout.p=0.22193758987162576 trainer.epochs=5") == \
        "regularizer.dropout.p=0.2219 trainer.epochs=5"
    assert short_numbers("regularizer.l2.strength=0.001 lr=3e-05") == "regularizer.l2.strength=0.001 lr=3e-05"
    job = classification_job(tmp_path, "a", "a" * 16, "dropout", {0: 0.5, 1: 0.6, 2: 0.7})
    text = (job / "metrics.json").read_text().replace('"setting": ""', '"setting": "regularizer.dropout.p=0.22193758987162576"')
    (job / "metrics.json").write_text(text)
    board, runs = board_of(tmp_path)
    figure = bars_figure(plt, board, runs, "digits")
    assert [t.get_text() for t in figure.axes[0].get_yticklabels()] == ["dropout regularizer.dropout.p=0.2219"]
    assert curves_figure(plt, board, runs, "acc", "digits").axes[0].get_title().replace("\n", " ").startswith(
        "dropout regularizer.dropout.p=0.2219 ")


EARLY = ["epoch,steps,seed,lr,train_loss,val_loss,test_loss,train_acc,val_acc,test_acc,reported",
         "4,20,0,0.05,0.9,1.0,1.1,0.6,0.5,0.5,1", "5,25,0,0.05,0.8,1.1,1.2,0.7,0.5,0.5,0", "7,35,0,0.05,0.7,1.2,1.3,0.8,0.4,0.4,0",
         "5,25,1,0.05,0.8,1.0,1.1,0.7,0.5,0.5,0", "6,30,1,0.05,0.7,0.9,1.0,0.8,0.6,0.6,1",
         "10,50,1,0.05,0.6,1.1,1.2,0.9,0.5,0.5,0"]


def test_early_stopped_seeds_end_at_their_stop_epoch_with_the_restored_epoch_marked(tmp_path):
    job = classification_job(tmp_path, "es", "a" * 16, "early_stopping", {0: 0.5, 1: 0.6})
    with_curves(job, EARLY)
    board, runs = board_of(tmp_path)
    figure = curves_figure(plt, board, runs, "loss", "digits")
    axis = figure.axes[0]
    val = by_gid(axis, "seed-val")
    assert sorted(line.get_xdata()[-1] for line in val) == [7, 10]            # each seed's curve ends at its stop
    stops = sorted(tuple(c.get_offsets()[0]) for c in by_gid(axis, "stop"))
    assert (7, 1.2) in stops and (10, 1.1) in stops                          # ×: val loss where it stopped
    restored = sorted(tuple(c.get_offsets()[0]) for c in by_gid(axis, "restored"))
    assert (4, 1.0) in restored and (6, 0.9) in restored                     # ring: the weights it reports
    assert axis.get_xlabel() == "epoch"                                      # 5 steps an epoch


def test_a_full_batch_run_counts_steps(tmp_path):
    job = classification_job(tmp_path, "gd", "a" * 16, "none", {0: 0.5, 1: 0.6})
    with_curves(job, ["epoch,steps,seed,lr,train_loss,val_loss,test_loss,train_acc,val_acc,test_acc,reported"]
                + [f"{e},{e},{s},0.01,1,1,1,0.5,0.5,0.5,{int(e == 60)}" for e in (20, 40, 60) for s in (0, 1)])
    board, runs = board_of(tmp_path)
    figure = curves_figure(plt, board, runs, "loss", "toy1d")
    assert figure.axes[0].get_xlabel() == "step (full batch)"


def test_the_trainer_ends_each_curve_at_its_stop_and_marks_the_restored_epoch(make_cfg):
    # curve_every 5 (the default): a seed stopping at epoch 7 used to end its curve at epoch 5
    cfg = make_cfg("regularizer=early_stopping", "regularizer.early_stopping.patience=2", "trainer.epochs=20",
                   "replicates=3")
    experiment = Experiment.from_config(cfg)
    result = train_population(experiment.model, experiment.dataset.load(), experiment.trainer,
                              experiment.regularizers, experiment.seeds, torch.device("cpu"))
    assert (result.epochs < 20).all() and any(epochs % 5 for epochs in result.epochs.tolist())
    for m, seed in enumerate(experiment.seeds):
        rows = [row for row in result.curves if row["seed"] == seed]
        assert rows[-1]["epoch"] == result.epochs[m]
        assert all(row["steps"] == row["epoch"] * 5 for row in rows)       # 500 rows, batch 100
        (reported,) = [row for row in rows if row["reported"] == 1]
        assert reported["epoch"] == result.best_epoch[m] < result.epochs[m]
        assert reported["val_loss"] == pytest.approx(float(result.final["val_loss"][m]), rel=1e-5)
        assert reported["test_loss"] == pytest.approx(float(result.final["test_loss"][m]), rel=1e-5)
    assert [row["epoch"] for row in result.curves] == sorted(row["epoch"] for row in result.curves)


def test_the_trainer_counts_one_step_an_epoch_at_full_batch_and_reports_the_last_epoch(make_cfg):
    cfg = make_cfg("trainer.batch_size=null", "trainer.epochs=7", "replicates=2")
    experiment = Experiment.from_config(cfg)
    result = train_population(experiment.model, experiment.dataset.load(), experiment.trainer,
                              experiment.regularizers, experiment.seeds, torch.device("cpu"))
    assert [(row["epoch"], row["steps"], row["reported"]) for row in result.curves] == \
        [(5, 5, 0), (5, 5, 0), (7, 7, 1), (7, 7, 1)]


def test_lesson_line_colours_grey_the_baselines_and_cycle_past_the_palette():
    """capacity's palette ran out (StopIteration) past 21 lines; both lesson pictures share one rule."""
    from regbench.report.plots import BASELINE_COLOR, LINE_COLORS, line_colors

    names = ["none"] + [f"l2 strength={k}" for k in range(30)]
    colors = line_colors(names, {"none"})
    assert colors["none"] == BASELINE_COLOR and len(colors) == 31
    assert [colors[f"l2 strength={k}"] for k in range(len(LINE_COLORS) + 1)] == [*LINE_COLORS, LINE_COLORS[0]]

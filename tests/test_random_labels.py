"""Random labels (Zhang et al. 2017, issue 20 §3): label corruption redraws training labels uniformly and
never touches validation or test; the fit-epoch finder; the memorization pictures and table; the suite."""
from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pandas as pd
import pytest

from regbench.data.base import SplitSettings, corrupt_labels
from regbench.experiment import Experiment
from regbench.identity import labels
from regbench.report import memorization
from regbench.report.collect import collect
from regbench.report.summarize import summarize

K = 10


def split(label_noise: float, n: int = 20000):
    """A synthetic dataset whose label is a function of its input (x[:, 0] = the example's index)."""
    index = np.arange(n)
    x = np.stack([index, np.sin(index)], 1).astype(np.float32)
    y = (index * 7919) % K   # the true label: fixed by the input
    x_test = x[:1000] + n
    data = SplitSettings(label_noise=label_noise).split("synthetic", x, y, x_test, y[:1000].copy(), K, "tabular")
    true = lambda part: y[data.__dict__[f"x_{part}"][:, 0].numpy().astype(int)]   # noqa: E731
    return data, true, y


def test_corruption_1_redraws_every_training_label_uniformly_and_no_validation_or_test_label():
    data, true, y = split(1.0)
    train, labels = data.y_train.numpy(), true("train")
    n = len(train)
    # every label drawn at random: it agrees with the true class 1 time in K, not more
    assert abs((train == labels).mean() - 1 / K) < 4 * math.sqrt(0.09 / n)
    # uniform over the classes
    counts = np.bincount(train, minlength=K)
    assert np.all(np.abs(counts - n / K) < 5 * math.sqrt(n * 0.09))
    # independent of the input: within each true class the agreement and the spread are again 1/K
    for k in range(K):
        mine = train[labels == k]
        assert abs((mine == k).mean() - 1 / K) < 5 * math.sqrt(0.09 / len(mine))
    # validation and test keep their true labels, every one
    assert np.array_equal(data.y_val.numpy(), true("val"))
    assert np.array_equal(data.y_test.numpy(), y[:1000])


def test_corruption_0_2_changes_the_expected_fraction_and_nothing_at_0():
    data, true, _ = split(0.2)
    wrong = (data.y_train.numpy() != true("train")).mean()
    n = len(data.y_train)
    assert abs(wrong - 0.2 * (K - 1) / K) < 4 * math.sqrt(0.18 * 0.82 / n)   # a redraw may land on the true class
    assert np.array_equal(data.y_val.numpy(), true("val"))
    clean, true, _ = split(0.0)
    assert np.array_equal(clean.y_train.numpy(), true("train"))


def test_corrupt_labels_is_a_copy_drawn_from_the_rng_alone():
    y = np.zeros(1000, dtype=np.int64)
    first = corrupt_labels(y, 1.0, K, np.random.default_rng(3))
    assert not y.any()   # the input is left alone
    assert np.array_equal(first, corrupt_labels(y, 1.0, K, np.random.default_rng(3)))
    assert not np.array_equal(first, corrupt_labels(y, 1.0, K, np.random.default_rng(4)))


def test_mnist1d_random_labels_through_the_real_config(make_cfg):
    clean = Experiment.from_config(make_cfg()).dataset.load()
    noisy = Experiment.from_config(make_cfg("dataset.label_noise=1.0")).dataset.load()
    assert np.array_equal(clean.x_train.numpy(), noisy.x_train.numpy())
    assert np.array_equal(clean.y_val.numpy(), noisy.y_val.numpy())
    assert np.array_equal(clean.y_test.numpy(), noisy.y_test.numpy())
    agree = (clean.y_train == noisy.y_train).float().mean().item()
    assert abs(agree - 1 / K) < 4 * math.sqrt(0.09 / len(clean.y_train))


def test_suite_sweeps_corruption_and_the_techniques_on_a_net_that_can_fit(make_cfg):
    cfg = make_cfg("+suite=random_labels", smoke=False, hydra=True)
    params = cfg.hydra.sweeper.params
    levels = [float(v) for v in params["dataset.label_noise"].split(",")]
    assert levels[0] == 0.0 and levels[-1] == 1.0 and len(levels) >= 5
    assert set(params.regularizer.split(",")) == {"none", "l2", "dropout", "augment"}
    assert cfg.hydra.mode.name == "MULTIRUN" and cfg.replicates >= 3
    assert cfg.trainer.curve_every == 1   # the fit epoch is read from every epoch's train accuracy
    Experiment.from_config(make_cfg("+suite=random_labels", "dataset.label_noise=1.0", smoke=False))


# ---- the fit-epoch finder and the pictures, on hand-made results ----

def test_fit_epochs_is_the_first_recorded_epoch_at_the_threshold_and_nan_when_never():
    curves = pd.DataFrame({"seed": [0] * 4 + [1] * 4, "epoch": [1, 2, 3, 4] * 2,
                           "train_acc": [0.2, 0.95, 0.85, 1.0, 0.1, 0.5, 0.89, 0.8]})
    fits = memorization.fit_epochs(curves, threshold=0.9).set_index("seed")
    assert fits.fit_epoch[0] == 2 and math.isnan(fits.fit_epoch[1])
    assert fits.last_epoch.tolist() == [4, 4]
    assert memorization.fit_epochs(curves, threshold=0.5).fit_epoch.tolist() == [2, 2]
    assert memorization.fit_epochs(pd.DataFrame()).empty


def test_split_noise_reads_and_removes_label_noise_from_a_dataset_label():
    assert memorization.split_noise("mnist1d[label_noise=0.2]") == ("mnist1d", 0.2)
    assert memorization.split_noise("mnist1d[n_train=500 label_noise=1.0]") == ("mnist1d[n_train=500]", 1.0)
    assert memorization.split_noise("mnist1d[label_noise=0.4 n_train=500]") == ("mnist1d[n_train=500]", 0.4)
    assert memorization.split_noise("mnist1d") == ("mnist1d", 0.0)


def test_the_label_a_job_writes_carries_its_label_noise(make_cfg):
    for overrides, expected in (((), ("mnist1d[n_train=500]", 0.0)),
                                (("dataset.label_noise=0.2",), ("mnist1d[n_train=500]", 0.2))):
        assert memorization.split_noise(labels(make_cfg(*overrides))["dataset"]) == expected


def write_job(root, technique: str, noise: float, fit_at: int | None, epochs: int = 6, seeds=(0, 1, 2)):
    """A completed job dir: metrics.json and curves.csv whose train accuracy reaches 1 at `fit_at`."""
    config_hash = hashlib.sha256(f"{technique} {noise}".encode()).hexdigest()[:16]
    baseline_hash = hashlib.sha256(f"none {noise}".encode()).hexdigest()[:16]
    dataset = "mnist1d" + (f"[label_noise={noise:g}]" if noise else "")
    job = root / f"{technique}-{noise}"
    job.mkdir()
    runs, rows = [], []
    for seed in seeds:
        train = 1.0 if fit_at else 0.5
        runs.append({"seed": seed, "train_acc": train, "test_acc": 0.1 + 0.6 * (1 - noise) + 0.01 * seed,
                     "train_loss": 0.1, "test_loss": 2.0, "gap_acc": 0.3, "gap_loss": 1.9})
        for epoch in range(1, epochs + 1):
            reached = fit_at is not None and epoch >= fit_at + seed % 2
            rows.append({"epoch": epoch, "seed": seed, "train_acc": 1.0 if reached else 0.1 * epoch / epochs})
    record = {"status": "completed", "error": None, "technique": technique, "config_hash": config_hash,
              "baseline_hash": baseline_hash, "labels": {"dataset": dataset, "model": "mlp", "setting": ""},
              "runs": runs, "identity": {"scheme": 2}}
    (job / "metrics.json").write_text(json.dumps(record))
    pd.DataFrame(rows).to_csv(job / "curves.csv", index=False)


@pytest.fixture
def plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def test_pictures_draw_every_level_and_mark_the_unfitted(tmp_path, plt):
    results = tmp_path / "results"
    results.mkdir()
    for noise, fit_at in ((0.0, 2), (0.5, 3), (1.0, 4)):
        write_job(results, "none", noise, fit_at)
        write_job(results, "dropout", noise, fit_at if noise < 1 else None)
    runs = collect([results]).runs
    board = summarize(runs)
    (tmp_path / "out").mkdir()
    pictures = memorization.draw(plt, board, runs, tmp_path / "out")
    assert [p.path.name for p in pictures] == ["memorization_accuracy-mnist1d-mlp.png",
                                               "memorization_fit-mnist1d-mlp.png"]
    assert all(p.path.stat().st_size > 10_000 for p in pictures)

    rows = memorization.with_noise(board)
    fit = {(r.technique, r.label_noise): memorization.fit_summary(runs, r.config_hash) for r in rows.itertuples()}
    assert fit[("none", 0.0)]["mean"] == pytest.approx((2 + 3 + 2) / 3)   # seed 1 fits an epoch later
    assert fit[("dropout", 1.0)]["fitted"] == 0 and math.isnan(fit[("dropout", 1.0)]["mean"])
    figure = memorization.fit_figure(plt, rows, runs, "w")
    assert len([c for c in figure.axes[0].collections if c.get_gid() == "not_fitted"]) == 1
    plt.close(figure)

    table = memorization.table_lines(board, runs)
    assert "| dropout | 1 | 3 | 50.0 ± 0.0 | 11.0 ± 2.5 | not by 6 (0/3 seeds) |" in table
    assert "| none | 1 | 3 | 100.0 ± 0.0 | 11.0 ± 2.5 | 4.3 (3/3 seeds) |" in table
    assert table.index("| none | 0 | 3 | 100.0 ± 0.0 | 71.0 ± 2.5 | 2.3 (3/3 seeds) |") < table.index(
        "| dropout | 0 | 3 | 100.0 ± 0.0 | 71.0 ± 2.5 | 2.3 (3/3 seeds) |")   # the baseline first


def test_nothing_is_drawn_without_a_label_noise_axis(tmp_path, plt):
    results = tmp_path / "results"
    results.mkdir()
    write_job(results, "none", 0.2, 2)
    write_job(results, "dropout", 0.2, 3)
    runs = collect([results]).runs
    board = summarize(runs)
    (tmp_path / "out").mkdir()
    assert memorization.draw(plt, board, runs, tmp_path / "out") == []
    assert memorization.table_lines(board, runs) == []
    assert not any((tmp_path / "out").iterdir())

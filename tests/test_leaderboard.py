"""Leaderboard on hand-made metrics.json files (exact numbers), and the regbench-leaderboard command."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf

import regbench.report.cli as report_cli
from regbench.report.cli import LeaderboardCallback, Summary, show_leaderboard
from regbench.results import IDENTITY_SCHEME
from regbench.report.collect import METRICS, collect
from regbench.report.pivot import pivot
from regbench.report.summarize import summarize
from tests.conftest import run_cli

T_975_1 = 12.706204736174698  # Student t quantiles (0.975) with 1 and 2 degrees of freedom
T_975_2 = 4.302652729749464

DEFAULT, SMOKE, L2, L2_SMOKE, B10, B100, GONE = (c * 16 for c in "abcdef9")


def record(config_hash: str, runs: dict[int, tuple[float, float] | None], technique: str = "none",
           baseline_hash: str | None = None, setting: str = "", dataset: str = "mnist1d",
           status: str = "completed", versions: dict | None = None, scheme: int | None = IDENTITY_SCHEME) -> dict:
    """A metrics.json record (notes/schema.md). runs: seed -> (train_acc, test_acc), or None for a
    diverged run (what a NaN model writes: chance accuracy, null losses). Losses are 1 - acc.
    `versions` is written only where given (older records have none)."""
    rows = []
    for seed, accs in runs.items():
        if accs is None:
            rows.append({"seed": seed, "train_acc": 0.1, "val_acc": 0.1, "test_acc": 0.1, "gap_acc": 0.0,
                         "train_loss": None, "val_loss": None, "test_loss": None, "gap_loss": None,
                         "epochs": 5, "best_epoch": 1, "diverged": True, "diverged_epoch": 2})
            continue
        train, test = accs
        rows.append({"seed": seed, "train_acc": train, "val_acc": test, "test_acc": test, "gap_acc": train - test,
                     "train_loss": 1 - train, "val_loss": 1 - test, "test_loss": 1 - test,
                     "gap_loss": train - test, "epochs": 5, "best_epoch": 5, "diverged": False,
                     "diverged_epoch": None})
    if status in ("failed", "interrupted", "running"):
        rows = []
    elif any(accs is None for accs in runs.values()):
        status = "diverged"
    return {"status": status, "error": "ValueError: boom" if status in ("failed", "interrupted") else None,
            "technique": technique, "dataset": "mnist1d", "model": "mlp",
            "config_hash": config_hash, "baseline_hash": baseline_hash or config_hash,
            **({"identity": {"scheme": scheme}} if scheme is not None else {}),
            "labels": {"dataset": dataset, "model": "mlp", "setting": setting},
            "overrides": [], "config": {}, "runs": rows, **({"versions": versions} if versions else {})}


def write_job(root: Path, name: str, *args, mtime: int | None = None, **kwargs) -> Path:
    """Write record(*args, **kwargs) to root/name/metrics.json; mtime in seconds if given."""
    path = root / name / "metrics.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(record(*args, **kwargs)))
    if mtime is not None:
        os.utime(path, ns=(mtime * 10**9, mtime * 10**9))
    return path


def board_of(*dirs: Path) -> pd.DataFrame:
    return summarize(collect(dirs).runs)


def by_config(board: pd.DataFrame) -> dict[str, pd.Series]:
    return {row.config_hash: row for _, row in board.iterrows()}


def test_seeds_pool_under_one_hash_and_another_hash_is_another_row(tmp_path):
    # The smoke-vs-default merge: same technique, different resolved config -> two rows.
    write_job(tmp_path, "sweep1/0", DEFAULT, {0: (1.0, 0.60), 1: (1.0, 0.62)}, mtime=100)
    write_job(tmp_path, "sweep1/1", DEFAULT, {2: (1.0, 0.64)}, mtime=100)  # another job: seeds pool
    write_job(tmp_path, "sweep2/0", SMOKE, {0: (0.35, 0.30)}, setting="trainer.epochs=3", mtime=200)
    rows = by_config(board_of(tmp_path / "sweep1", tmp_path / "sweep2"))
    assert sorted(rows) == [DEFAULT, SMOKE]
    default, smoke = rows[DEFAULT], rows[SMOKE]
    assert (default.technique, default.setting, default.seeds) == ("none", "", 3)
    assert default.test_acc_mean == pytest.approx(0.62)  # seed 0 is 0.60, not the smoke run's 0.30
    assert default.test_acc_ci == pytest.approx(T_975_2 * 0.02 / math.sqrt(3))
    assert default.gap_acc_mean == pytest.approx(1.0 - 0.62)
    assert (smoke.setting, smoke.seeds, smoke.test_acc_mean) == ("trainer.epochs=3", 1, pytest.approx(0.30))
    assert math.isnan(smoke.test_acc_ci)
    assert (default.config, smoke.config) == ("a" * 8, "b" * 8)


@pytest.mark.parametrize("mtime_x, mtime_y, y_wins", [(100, 200, True), (200, 100, False), (100, 100, True)],
                         ids=["y-newer", "x-newer", "tie-later-path"])
def test_a_hash_and_seed_in_two_files_counts_once_and_the_newest_file_wins(tmp_path, mtime_x, mtime_y, y_wins):
    write_job(tmp_path, "x", L2, {0: (0.9, 0.70), 1: (0.9, 0.71)}, technique="l2", mtime=mtime_x)
    write_job(tmp_path, "y", L2, {0: (0.9, 0.80)}, technique="l2", setting="newer label", mtime=mtime_y)
    [row] = [row for _, row in board_of(tmp_path).iterrows()]
    assert row.seeds == 2 and row.test_acc_mean == pytest.approx(0.755 if y_wins else 0.705)
    assert row.setting == ("newer label" if y_wins else "")  # labels: the newest file's


def test_delta_is_paired_with_the_exact_baseline_hash(tmp_path):
    write_job(tmp_path, "0", DEFAULT, {0: (1.0, 0.60), 1: (1.0, 0.62), 2: (1.0, 0.64)})
    write_job(tmp_path, "1", SMOKE, {0: (0.4, 0.30), 1: (0.4, 0.30)}, setting="trainer.epochs=3")
    write_job(tmp_path, "2", L2, {0: (0.9, 0.70), 1: (0.9, 0.71), 2: (0.9, 0.75)}, technique="l2",
              baseline_hash=DEFAULT, setting="regularizer.l2.strength=0.1")
    write_job(tmp_path, "3", L2_SMOKE, {0: (0.5, 0.40)}, technique="l2", baseline_hash=SMOKE,
              setting="regularizer.l2.strength=0.1 trainer.epochs=3")
    rows = by_config(board_of(tmp_path))
    l2, l2_smoke = rows[L2], rows[L2_SMOKE]
    # l2 - none per seed: 0.10, 0.09, 0.11
    assert l2.delta_test_acc_mean == pytest.approx(0.10)
    assert l2.delta_test_acc_ci == pytest.approx(T_975_2 * 0.01 / math.sqrt(3))
    assert (l2.delta_seeds, l2.baseline, l2.is_baseline) == (3, "none", False)
    assert l2_smoke.delta_test_acc_mean == pytest.approx(0.10) and l2_smoke.delta_seeds == 1
    assert l2_smoke.baseline == "none trainer.epochs=3"
    assert (rows[DEFAULT].baseline, rows[DEFAULT].is_baseline) == ("baseline", True)


def test_a_none_row_is_compared_with_the_none_row_its_baseline_hash_names(tmp_path):
    # implicit suite: full-batch `none` is compared with `none` at batch size 100, not with the defaults
    write_job(tmp_path, "0", DEFAULT, {0: (1.0, 0.70), 1: (1.0, 0.70)})
    write_job(tmp_path, "1", B100, {0: (1.0, 0.60), 1: (1.0, 0.61)}, setting="trainer.batch_size=100")
    write_job(tmp_path, "2", B10, {0: (1.0, 0.50), 1: (1.0, 0.52)}, baseline_hash=B100,
              setting="trainer.batch_size=10")
    row = by_config(board_of(tmp_path))[B10]
    assert row.delta_test_acc_mean == pytest.approx(-0.095)  # -0.10, -0.09
    assert row.delta_test_acc_ci == pytest.approx(T_975_1 * math.sqrt(0.00005) / math.sqrt(2))
    assert row.baseline == "none trainer.batch_size=100"


def test_a_missing_baseline_leaves_delta_empty_and_says_so(tmp_path):
    write_job(tmp_path, "0", DEFAULT, {0: (1.0, 0.60), 1: (1.0, 0.62)})  # a `none`, but not this row's
    write_job(tmp_path, "1", L2, {0: (0.9, 0.70), 1: (0.9, 0.71)}, technique="l2", baseline_hash=GONE)
    summary = show_leaderboard([tmp_path])
    row = by_config(summary.board)[L2]
    assert math.isnan(row.delta_test_acc_mean) and row.delta_seeds == 0
    assert row.baseline == "not in these results (99999999)"
    md_row = next(line for line in (tmp_path / "leaderboard.md").read_text().splitlines() if "| l2 |" in line)
    assert md_row.endswith("| — | — | not in these results (99999999) |")


def test_a_diverged_run_is_left_out_of_every_column_and_of_delta_on_both_sides(tmp_path):
    write_job(tmp_path, "0", DEFAULT, {0: (1.0, 0.60), 1: (1.0, 0.62), 2: None})
    write_job(tmp_path, "1", L2, {0: (0.9, 0.70), 1: None, 2: (0.8, 0.75)}, technique="l2", baseline_hash=DEFAULT)
    write_job(tmp_path, "2", "1" * 16, {0: (0.3, 0.20)}, technique="l1", baseline_hash=DEFAULT)
    write_job(tmp_path, "3", "2" * 16, {0: None, 1: None}, technique="dropout", baseline_hash=DEFAULT)
    summary = show_leaderboard([tmp_path])
    board = summary.board
    l2 = by_config(board)[L2]
    assert (l2.seeds, l2.diverged) == (2, 1)
    # every column over seeds 0 and 2 alone
    expected = {"test_acc": 0.725, "train_acc": 0.85, "gap_acc": 0.125, "test_loss": 0.275,
                "train_loss": 0.15, "gap_loss": 0.125}
    assert {m: l2[f"{m}_mean"] for m in expected} == pytest.approx(expected)
    # Δ only where neither side diverged: seed 0 (l2 seed 1 and none seed 2 diverged)
    assert l2.delta_test_acc_mean == pytest.approx(0.10) and l2.delta_seeds == 1
    none = by_config(board)[DEFAULT]
    assert (none.seeds, none.diverged, none.test_acc_mean) == (2, 1, pytest.approx(0.61))
    # all seeds diverged: still a row, no metric, last (below l1's 20%)
    assert list(board.technique) == ["l2", "none", "l1", "dropout"]
    dropout = board.iloc[-1]
    assert (dropout.seeds, dropout.diverged, dropout.delta_seeds) == (0, 2, 0)
    assert all(math.isnan(dropout[f"{m}_mean"]) for m in METRICS)
    md = (tmp_path / "leaderboard.md").read_text()
    assert "| 2* (+1 diverged) | 72.5 | " in md  # *: fewer than 3 seeds, so no interval
    assert "| dropout | — | 0* (+2 diverged) | — | — | — | — | — | — | — | — | — | — | none |" in md


def test_fewer_than_3_seeds_show_the_mean_alone_and_the_table_says_why(tmp_path, capsys):
    """Two seeds give a t interval of 12.7 x their half-distance (53.6 ± 408.8 was printed): below 3 seeds
    the tables show the mean alone, a Δ on fewer than 3 shared seeds too, and a footnote says why."""
    write_job(tmp_path, "0", DEFAULT, {0: (1.0, 0.60), 1: (1.0, 0.66)})
    write_job(tmp_path, "1", L2, {0: (0.9, 0.70), 1: (0.9, 0.72), 2: (0.9, 0.74)}, technique="l2",
              baseline_hash=DEFAULT)
    show_leaderboard([tmp_path])
    md = (tmp_path / "leaderboard.md").read_text()
    none_line = next(line for line in md.splitlines() if "| none | — |" in line)
    l2_line = next(line for line in md.splitlines() if "| l2 | — |" in line)
    assert "| 2* | 63.0 | 100.0 | 37.0 |" in none_line and "±" not in none_line
    # l2 has 3 seeds (an interval), its Δ only 2 shared with the baseline (none)
    assert "| 3 | 72.0 ± 5.0 |" in l2_line and "| +8.0 |" in l2_line
    assert "* after the seed count: fewer than 3 seeds: no interval, the mean alone" in md
    terminal = capsys.readouterr().out
    assert "63.0 ±" not in terminal and "* fewer than 3 seeds: no interval" in " ".join(terminal.split())


def test_a_knob_sweeps_default_row_names_its_value(tmp_path, capsys):
    """The setting label holds only differences from the defaults: the default p of a dropout sweep read
    '—'. It names the value that its siblings set and it leaves at the default."""
    for name, config_hash, p, setting in (("a", "1" * 16, 0.1, "regularizer.dropout.p=0.1"), ("b", "2" * 16, 0.2, "")):
        path = write_job(tmp_path, name, config_hash, {0: (0.9, 0.6)}, technique="dropout", setting=setting,
                         baseline_hash=DEFAULT)
        job = json.loads(path.read_text())
        job["config"] = {"regularizer": {"dropout": {"name": "dropout", "p": p}}}
        path.write_text(json.dumps(job))
    write_job(tmp_path, "none", DEFAULT, {0: (1.0, 0.5)})
    show_leaderboard([tmp_path])
    md = (tmp_path / "leaderboard.md").read_text()
    assert "| dropout | regularizer.dropout.p=0.2 (default) |" in md
    assert "| dropout | regularizer.dropout.p=0.1 |" in md and "| none | — |" in md
    assert "regularizer.dropout.p=0.2 (default)" in " ".join(capsys.readouterr().out.split())


def test_the_csv_holds_fractions_and_its_column_names_say_so(tmp_path):
    write_job(tmp_path, "0", DEFAULT, {0: (1.0, 0.60), 1: (1.0, 0.62), 2: (1.0, 0.64)})
    show_leaderboard([tmp_path])
    csv = pd.read_csv(tmp_path / "leaderboard.csv")
    assert csv.test_acc_fraction_mean[0] == pytest.approx(0.62) and "test_acc_mean" not in csv
    assert {"train_acc_fraction_ci", "gap_acc_fraction_mean", "delta_test_acc_fraction_mean", "test_loss_mean"} <= set(csv)
    md = (tmp_path / "leaderboard.md").read_text()
    assert "| test acc % |" in md and "| 62.0 ± " in md
    assert "leaderboard.csv holds them as fractions of 1, in columns named *_acc_fraction_*" in md


def test_sorted_by_test_accuracy_not_gap_and_by_loss_without_accuracy(tmp_path):
    write_job(tmp_path, "a/0", DEFAULT, {0: (1.0, 0.62)})
    write_job(tmp_path, "a/1", L2, {0: (0.9, 0.72)}, technique="l2", baseline_hash=DEFAULT)
    write_job(tmp_path, "a/2", "1" * 16, {0: (0.2, 0.2)}, technique="dropout", baseline_hash=DEFAULT)
    assert list(board_of(tmp_path / "a").technique) == ["l2", "none", "dropout"]  # dropout: gap 0, last
    for name, loss in (("0", 0.5), ("1", 0.3), ("2", 0.9)):  # regression: losses only
        job = write_job(tmp_path, f"b/{name}", name * 16, {0: (0.0, 0.0)}, technique=f"t{name}")
        data = json.loads(job.read_text())
        data["runs"][0].update(train_acc=None, test_acc=None, gap_acc=None, test_loss=loss)
        job.write_text(json.dumps(data))
    assert list(board_of(tmp_path / "b").technique) == ["t1", "t0", "t2"]
    # a row without accuracy (regression) beside classification rows still sorts above an all-diverged one
    write_job(tmp_path, "c/0", DEFAULT, {0: (1.0, 0.62)})
    write_job(tmp_path, "c/1", "1" * 16, {0: None}, technique="a_diverged")
    (tmp_path / "c" / "2").mkdir()
    (tmp_path / "c" / "2" / "metrics.json").write_text((tmp_path / "b" / "0" / "metrics.json").read_text())
    assert list(board_of(tmp_path / "c").technique) == ["none", "t0", "a_diverged"]


def test_merged_datasets_stay_together_each_sorted_by_its_own_metric(tmp_path):
    # a sweep over datasets: digits and breast_cancer accuracies must not interleave, and the regression
    # set (no accuracy) sorts by its test loss inside its own group, not last among all rows
    for name, dataset, acc in (("0", "digits", 0.90), ("1", "digits", 0.97), ("2", "breast_cancer", 0.95),
                               ("3", "breast_cancer", 0.92)):
        write_job(tmp_path, name, name * 16, {0: (1.0, acc)}, technique=f"{dataset}_{acc}", dataset=dataset)
    for name, loss in (("4", 0.5), ("5", 0.3)):
        job = write_job(tmp_path, name, name * 16, {0: (0.0, 0.0)}, technique=f"diabetes_{loss}", dataset="diabetes")
        data = json.loads(job.read_text())
        data["runs"][0].update(train_acc=None, test_acc=None, gap_acc=None, test_loss=loss)
        job.write_text(json.dumps(data))
    assert list(board_of(tmp_path).technique) == ["breast_cancer_0.95", "breast_cancer_0.92", "diabetes_0.3",
                                                  "diabetes_0.5", "digits_0.97", "digits_0.9"]


def good_record() -> dict:
    return record(L2, {0: (0.9, 0.70)}, technique="l2")


def edited(change) -> str:
    data = good_record()
    change(data)
    return json.dumps(data)


BAD_FILES = {
    "empty": ("", "empty file"),
    "truncated": (json.dumps(good_record())[:200], "not valid JSON (truncated?)"),
    "truncated-in-a-string": ('{"status": "compl', "not valid JSON (truncated?)"),
    "not-json": ("{not json}", "not valid JSON (line 1 column 2: Expecting property name enclosed in "
                               "double quotes)"),
    "nan": (json.dumps(good_record()).replace("0.7", "NaN"), "not valid JSON (NaN is not a JSON value)"),
    "list": ("[1, 2]", "not a JSON object (a JSON list)"),
    "foreign": ('{"loss": 0.1, "step": 3}', "no 'status' field (not a regbench metrics.json?)"),
    "no-config-hash": (edited(lambda d: d.pop("config_hash")), "no 'config_hash' field (not a regbench "
                                                              "metrics.json?)"),
    "string-seed": (edited(lambda d: d["runs"][0].update(seed="0")), "'runs[0].seed' is '0', expected an int"),
    "string-metric": (edited(lambda d: d["runs"][0].update(test_acc="0.7")),
                      "'runs[0].test_acc' is '0.7', expected a number or null"),
    "no-setting": (edited(lambda d: d["labels"].pop("setting")), "no 'labels.setting' field (not a regbench "
                                                                 "metrics.json?)"),
    "runs-not-list": (edited(lambda d: d.update(runs={"0": {}})), "'runs' is {'0': {}}, expected a list"),
    "odd-status": (edited(lambda d: d.update(status="done")), "'status' is 'done', expected one of completed, "
                                                             "diverged, failed, interrupted, running, "
                                                             "not_applicable"),
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_a_bad_file_is_skipped_with_one_warning_and_the_rest_builds(tmp_path, capsys, name):
    content, reason = BAD_FILES[name]
    write_job(tmp_path, "0", DEFAULT, {0: (1.0, 0.60), 1: (1.0, 0.62)})
    bad = tmp_path / "1" / "metrics.json"
    bad.parent.mkdir()
    bad.write_text(content)
    summary = show_leaderboard([tmp_path])
    assert summary.skipped == [(str(bad), reason)]
    assert capsys.readouterr().err == f"warning: skipping {bad}: {reason}\n"
    assert list(summary.board.technique) == ["none"] and summary.board.seeds[0] == 2
    assert summary.statuses == {"completed": 1}
    assert list(pd.read_csv(tmp_path / "leaderboard.csv").technique) == ["none"]


def test_unfinished_jobs_are_listed_not_counted(tmp_path):
    write_job(tmp_path, "0", DEFAULT, {0: (1.0, 0.60)})
    write_job(tmp_path, "1", L2, {}, technique="l2", status="failed")
    write_job(tmp_path, "2", L2, {}, technique="l2", status="interrupted")
    running = write_job(tmp_path, "3", L2, {}, technique="l2", status="running")
    data = json.loads(running.read_text())
    data["runs"] = record(L2, {0: (0.9, 0.99)})["runs"]  # a half-written job's runs do not count
    running.write_text(json.dumps(data))
    summary = show_leaderboard([tmp_path])
    assert summary.statuses == {"completed": 1, "failed": 1, "interrupted": 1, "running": 1}
    assert sorted((u["path"], u["status"], u["error"]) for u in summary.unfinished) == [
        (str(tmp_path / "1"), "failed", "ValueError: boom"), (str(tmp_path / "2"), "interrupted", "ValueError: boom"),
        (str(tmp_path / "3"), "running", "")]
    assert list(summary.board.technique) == ["none"]
    md = (tmp_path / "leaderboard.md").read_text()
    assert "Unfinished jobs (not counted):" in md and f"- `{tmp_path / '1'}`: failed: ValueError: boom" in md


def regression_job(root: Path, name: str, config_hash: str, test_losses: dict[int, float], **kwargs) -> Path:
    """A job without accuracies (regression): seed -> test loss; train loss 0.1."""
    job = write_job(root, name, config_hash, {seed: (0.0, 0.0) for seed in test_losses}, **kwargs)
    data = json.loads(job.read_text())
    for run in data["runs"]:
        loss = test_losses[run["seed"]]
        run.update(train_acc=None, val_acc=None, test_acc=None, gap_acc=None, train_loss=0.1, test_loss=loss,
                   gap_loss=loss - 0.1)
    job.write_text(json.dumps(data))
    return job


def test_rows_without_accuracy_get_a_paired_delta_on_test_loss(tmp_path, capsys):
    regression_job(tmp_path, "0", DEFAULT, {0: 0.50, 1: 0.70, 2: 0.60})
    regression_job(tmp_path, "1", L2, {0: 0.40, 1: 0.50, 2: 0.60, 3: 0.0}, technique="l2", baseline_hash=DEFAULT)
    rows = by_config(board_of(tmp_path))
    l2, none = rows[L2], rows[DEFAULT]
    # differences on the shared seeds 0-2: -0.1, -0.2, 0.0 -> mean -0.1, sd 0.1
    assert l2.delta_test_loss_mean == pytest.approx(-0.1)
    assert l2.delta_test_loss_ci == pytest.approx(T_975_2 * 0.1 / math.sqrt(3))
    assert l2.delta_seeds == 3 and math.isnan(l2.delta_test_acc_mean)
    assert none.delta_test_loss_mean == 0.0 and none.delta_seeds == 3
    # lower loss is better: l2 wins on seeds 0 and 1, ties on seed 2
    assert l2.prob_improve == pytest.approx(2.5 / 3)
    summary = show_leaderboard([tmp_path])
    out = capsys.readouterr().out
    assert "Δ test loss" in out and "-0.100 ± 0.248" in out and "Δ test acc" not in out
    assert list(summary.board.technique) == ["l2", "none"]   # by test loss: 0.375 (4 seeds) before 0.6
    assert "| Δ test loss | P(improve) | p (paired t) | p (Holm) | baseline |" in (tmp_path / "leaderboard.md").read_text()


def test_classification_rows_keep_delta_test_acc_and_no_delta_loss(tmp_path):
    write_job(tmp_path, "0", DEFAULT, {0: (1.0, 0.60), 1: (1.0, 0.62)})
    write_job(tmp_path, "1", L2, {0: (0.9, 0.70), 1: (0.9, 0.66)}, technique="l2", baseline_hash=DEFAULT)
    l2 = by_config(board_of(tmp_path))[L2]
    assert l2.delta_test_acc_mean == pytest.approx(0.07) and math.isnan(l2.delta_test_loss_mean)


def test_not_applicable_jobs_are_listed_labelled_not_counted(tmp_path, capsys):
    write_job(tmp_path, "0", DEFAULT, {0: (1.0, 0.60)})
    job = write_job(tmp_path, "1", L2, {}, technique="label_smoothing", status="not_applicable")
    data = json.loads(job.read_text())
    data.update(runs=[], reason="label_smoothing smooths class targets: dataset toy1d is a regression task")
    job.write_text(json.dumps(data))
    summary = show_leaderboard([tmp_path])
    assert summary.statuses == {"completed": 1, "not_applicable": 1}
    assert list(summary.board.technique) == ["none"]
    out = capsys.readouterr().out
    assert f"not applicable (not counted) label_smoothing {tmp_path / '1'}: label_smoothing smooths" in out
    md = (tmp_path / "leaderboard.md").read_text()
    assert "Not applicable to this data (not counted):" in md and "Unfinished jobs" not in md
    assert f"- label_smoothing (`{tmp_path / '1'}`): label_smoothing smooths class targets" in md


def test_files_name_the_config_and_both_hashes(tmp_path):
    write_job(tmp_path, "0", DEFAULT, {0: (1.0, 0.60)})
    job = write_job(tmp_path, "1", L2, {0: (0.9, 0.70)}, technique="l2", baseline_hash=DEFAULT)
    show_leaderboard([job], out_dir=tmp_path / "out")  # a metrics.json given directly
    csv = pd.read_csv(tmp_path / "out" / "leaderboard.csv", dtype=str)
    assert csv.loc[0, ["config", "config_hash", "baseline_hash", "baseline"]].tolist() == ["c" * 8, L2, DEFAULT,
                                                                                      "not in these results (aaaaaaaa)"]
    header = (tmp_path / "out" / "leaderboard.md").read_text().splitlines()[0]
    assert header.startswith("| config | dataset | model | technique | setting | seeds |")
    assert header.endswith("| Δ test acc % | P(improve) | p (paired t) | p (Holm) | baseline |")


def test_terminal_table_keeps_labels_and_settings_and_wraps_them(tmp_path, capsys):
    long_setting = " ".join(f"regularizer.l2.knob_number_{i}=0.{i}" for i in range(12))
    write_job(tmp_path, "0", DEFAULT, {0: (1.0, 0.60)}, dataset="mnist1d[n_train=500]")
    write_job(tmp_path, "1", L2, {0: (0.9, 0.70)}, technique="l2", baseline_hash=DEFAULT,
              dataset="mnist1d[n_train=500]", setting=long_setting + " model_width_" + "x" * 60)
    show_leaderboard([tmp_path], write=False)
    out = capsys.readouterr().out
    assert "dataset=mnist1d[n_train=500]" in out  # the same on every row: in the title, not markup
    setting = "".join(line.split("│")[2].strip() for line in out.splitlines() if line.startswith("│"))
    assert (long_setting + " model_width_" + "x" * 60).replace(" ", "") in setting and "…" not in out


def test_labels_with_brackets_are_printed_as_written_not_as_markup(tmp_path, capsys):
    write_job(tmp_path, "0", DEFAULT, {0: (1.0, 0.60)}, dataset="mnist1d[n_train=500]")
    write_job(tmp_path, "1", SMOKE, {0: (1.0, 0.60)}, dataset="mnist1d[bold]")
    show_leaderboard([tmp_path], write=False)
    out = capsys.readouterr().out
    assert "mnist1d[n_train=500]" in out and "mnist1d[bold]" in out


def test_a_setting_shared_by_every_row_is_in_the_title(tmp_path, capsys):
    write_job(tmp_path, "0", SMOKE, {0: (1.0, 0.60)}, setting="trainer.epochs=3")
    show_leaderboard([tmp_path], write=False)
    assert "regbench leaderboard dataset=mnist1d model=mlp setting=trainer.epochs=3" in capsys.readouterr().out


def test_setting_parts_every_row_shares_go_to_the_title_and_leave_rows_and_baselines(tmp_path, capsys):
    """A suite's trainer values on every row (and in every baseline name) would hide what differs."""
    suite = "trainer.momentum=0.0 trainer.steps=300"
    write_job(tmp_path, "0", B100, {0: (1.0, 0.60)}, setting=f"trainer.batch_size=100 {suite}")
    write_job(tmp_path, "1", B10, {0: (1.0, 0.50)}, baseline_hash=B100, setting=f"{suite} trainer.batch_size=10")
    show_leaderboard([tmp_path], write=False)
    out = capsys.readouterr().out
    assert f"setting={suite}" in out and out.count("trainer.steps=300") == 1
    assert "trainer.batch_size=10 vs none" in out and "trainer.batch_size=100" in out   # its baseline, stripped
    md = (tmp_path / "leaderboard.md")
    show_leaderboard([tmp_path])  # the .md keeps every part on every row
    assert md.read_text().count("trainer.steps=300") == 3  # two rows + the B10 row's baseline name


@pytest.mark.slow
def test_cli_rebuilds_from_dirs_and_refuses_missing_ones(tmp_path):
    write_job(tmp_path, "sweep/0", DEFAULT, {0: (1.0, 0.60)})
    write_job(tmp_path, "sweep/1", L2, {0: (0.9, 0.70)}, technique="l2", baseline_hash=DEFAULT)
    out = tmp_path / "board"
    done = run_cli(str(tmp_path / "sweep"), "--out", str(out), module="regbench.report.cli")
    assert done.returncode == 0, done.stderr
    assert "l2" in done.stdout and "+10.0" in done.stdout and done.stderr == ""
    assert list(pd.read_csv(out / "leaderboard.csv").technique) == ["l2", "none"]
    missing = run_cli(str(tmp_path / "nope"), str(tmp_path / "nada"), module="regbench.report.cli")
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr.splitlines() == [f"regbench-leaderboard: error: no such directory: {tmp_path / d}"
                                           for d in ("nope", "nada")]


NOTHING = {"empty-dir": [], "truncated": [("0", '{"status": "compl')], "foreign": [("0", '{"loss": 1}')],
           "all-failed": [("0", json.dumps(record(L2, {}, status="failed"))),
                          ("1", json.dumps(record(DEFAULT, {}, status="failed")))]}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(NOTHING))
def test_cli_with_nothing_to_show_says_one_line_writes_nothing_and_exits_1(tmp_path, name):
    for job, content in NOTHING[name]:
        (tmp_path / job).mkdir()
        (tmp_path / job / "metrics.json").write_text(content)
    (tmp_path / "leaderboard.csv").write_text("an earlier leaderboard\n")
    done = run_cli(str(tmp_path), module="regbench.report.cli")
    assert done.returncode == 1 and done.stdout == ""
    lines = done.stderr.splitlines()
    warnings = 0 if name in ("empty-dir", "all-failed") else 1
    assert len(lines) == warnings + 1 and lines[-1].startswith(f"regbench leaderboard: nothing to show under {tmp_path}")
    assert (tmp_path / "leaderboard.csv").read_text() == "an earlier leaderboard\n"
    assert not (tmp_path / "leaderboard.md").exists()
    if name == "all-failed":
        assert "(2 failed)" in lines[-1] and "ValueError: boom" in lines[-1]


def sweep_config(sweep: Path):
    return OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep)}}})


@pytest.mark.slow
def test_callback_builds_into_the_sweep_dir_it_remembered(tmp_path):
    sweep = tmp_path / "sweep"
    write_job(sweep, "0", DEFAULT, {0: (1.0, 0.60)})
    callback = LeaderboardCallback()
    callback.on_multirun_start(sweep_config(sweep))
    assert LeaderboardCallback.sweep_dir == sweep
    callback.on_multirun_end(sweep_config(tmp_path / "elsewhere"))
    assert (sweep / "leaderboard.csv").exists() and list(LeaderboardCallback.summary.board.technique) == ["none"]


def test_callback_with_every_job_failed_stores_an_empty_summary_and_writes_nothing(tmp_path, capsys):
    write_job(tmp_path, "0", DEFAULT, {}, status="failed")
    write_job(tmp_path, "1", L2, {}, technique="l2", status="failed")
    callback = LeaderboardCallback()
    callback.on_multirun_start(sweep_config(tmp_path))
    callback.on_multirun_end(sweep_config(tmp_path))
    summary = LeaderboardCallback.summary
    assert summary.empty and summary.statuses == {"failed": 2} and len(summary.unfinished) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0", "1"]
    assert len(capsys.readouterr().err.splitlines()) == 1


def test_callback_never_raises(tmp_path, capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")
    monkeypatch.setattr(report_cli, "show_leaderboard", broken)
    LeaderboardCallback.summary = None
    callback = LeaderboardCallback()
    callback.on_multirun_start(sweep_config(tmp_path))
    callback.on_multirun_end(sweep_config(tmp_path))
    assert isinstance(LeaderboardCallback.summary, Summary) and LeaderboardCallback.summary.empty
    assert capsys.readouterr().err == "regbench leaderboard: not built (RuntimeError: disk on fire)\n"


def test_probability_of_improvement_p_value_and_few_seeds_on_hand_made_files(tmp_path):
    from scipy import stats
    write_job(tmp_path, "0", DEFAULT, {0: (1.0, 0.60), 1: (1.0, 0.66), 2: (1.0, 0.70), 3: (1.0, 0.64)})
    write_job(tmp_path, "1", L2, {0: (0.9, 0.70), 1: (0.9, 0.65), 2: (0.9, 0.80), 5: (0.9, 0.99)},
              technique="l2", baseline_hash=DEFAULT)
    write_job(tmp_path, "2", "1" * 16, {0: (0.9, 0.61), 1: (0.9, 0.67)}, technique="l1", baseline_hash=DEFAULT)
    rows = by_config(board_of(tmp_path))
    l2, l1, none = rows[L2], rows["1" * 16], rows[DEFAULT]
    # shared seeds 0-2: l2 wins, loses, wins; the 95% Wilson interval of 2 in 3, by hand (z = 1.96):
    # (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n) = (0.2077, 0.9385)
    assert l2.prob_improve == pytest.approx(2 / 3)
    assert (l2.prob_improve_low, l2.prob_improve_high) == pytest.approx((0.2077, 0.9385), abs=5e-5)
    assert l2.p_value == pytest.approx(stats.ttest_rel([0.70, 0.65, 0.80], [0.60, 0.66, 0.70]).pvalue)
    assert not l2.few_seeds and l1.few_seeds  # 4 seeds and 2
    assert l1.prob_improve == 1.0
    assert math.isnan(none.prob_improve) and math.isnan(none.p_value)  # the baseline against itself


def test_test_ece_is_read_and_summarized_with_a_ci(tmp_path):
    path = write_job(tmp_path, "0", DEFAULT, {0: (1.0, 0.60), 1: (1.0, 0.62), 2: (1.0, 0.64)})
    record = json.loads(path.read_text())
    for run, ece in zip(record["runs"], (0.05, 0.07, 0.09)):
        run["test_ece"] = ece
    path.write_text(json.dumps(record))
    row = board_of(tmp_path).iloc[0]
    assert row.test_ece_mean == pytest.approx(0.07) and row.test_ece_ci == pytest.approx(T_975_2 * 0.02 / math.sqrt(3))
    show_leaderboard([tmp_path])
    md = (tmp_path / "leaderboard.md").read_text()
    assert "| test ECE |" in md and "0.070 ± 0.050" in md


def render(board: pd.DataFrame, width: int) -> str:
    from rich.console import Console
    from regbench.report.table import print_board
    console = Console(width=width, record=True, file=open(os.devnull, "w"))
    print_board(console, board)
    return console.export_text()


def test_terminal_table_fits_80_columns_and_keeps_the_condition(tmp_path):
    suite = "trainer.epochs=3 trainer.batch_size=100"
    for i, (name, technique) in enumerate([(DEFAULT, "none"), (L2, "l2"), ("1" * 16, "dropout")]):
        write_job(tmp_path, str(i), name, {0: (0.95, 0.61 + i / 100), 1: (0.9, 0.6), 2: (0.93, 0.62)},
                  technique=technique, baseline_hash=DEFAULT, dataset="mnist1d[n_train=500]", setting=suite)
    board = board_of(tmp_path)
    text = render(board, 80)
    assert max(map(len, text.splitlines())) <= 80
    assert "dataset=mnist1d[n_train=500]" in text and f"setting={suite}" in text
    for column in ("technique", "seeds", "test acc %", "gap %", "Δ acc %", "P(improve)"):
        assert column in text
    assert "±" in text.split("dropout")[1].splitlines()[0]  # numbers keep their intervals on one line
    wide = render(board, 160)
    assert "train acc %" in wide and "p (paired t)" in wide and "train acc %" not in text


def test_a_merged_multi_dataset_board_fits_80_columns(tmp_path):
    write_job(tmp_path, "0", DEFAULT, {0: (1.0, 0.60), 1: (1.0, 0.62)}, dataset="mnist1d")
    write_job(tmp_path, "1", L2, {0: (0.9, 0.70), 1: (0.9, 0.66)}, technique="l2", baseline_hash=DEFAULT,
              dataset="mnist1d")
    regression_job(tmp_path, "2", SMOKE, {0: 0.50, 1: 0.70}, dataset="toy1d")
    regression_job(tmp_path, "3", B10, {0: 0.40, 1: 0.50}, technique="l2", baseline_hash=SMOKE, dataset="toy1d")
    text = render(board_of(tmp_path), 80)
    assert max(map(len, text.splitlines())) <= 80
    assert "mnist1d" in text and "toy1d" in text


def test_a_regression_board_keeps_one_line_per_row_at_80_columns(tmp_path):
    # losses print as 0.498 ± 0.022: with P(improve) kept at any cost the rows wrapped ("weight_nois / e")
    regression_job(tmp_path, "0", SMOKE, {0: 0.5401, 1: 0.5102, 2: 0.5733}, dataset="diabetes")
    for i, technique in enumerate(("weight_noise", "early_stopping", "grad_penalty")):
        regression_job(tmp_path, str(i + 1), str(i + 1) * 16, {0: 0.4981 + i / 97, 1: 0.5312, 2: 0.5013 - i / 89},
                       technique=technique, baseline_hash=SMOKE, dataset="diabetes")
    text = render(board_of(tmp_path), 80)
    assert max(map(len, text.splitlines())) <= 80
    for technique in ("weight_noise", "early_stopping", "grad_penalty"):
        line = next(line for line in text.splitlines() if technique in line)
        assert line.count("±") == 3  # test loss, loss gap and Δ test loss, each on the row's one line


def config_job(root: Path, name: str, config_hash: str, accs: dict[int, float], config: dict,
               labels: dict | None = None, **kwargs) -> Path:
    """A job whose record holds a resolved `config` (what --by reads) and its `labels`: seed -> test acc."""
    job = write_job(root, name, config_hash, {seed: (1.0, acc) for seed, acc in accs.items()}, **kwargs)
    data = json.loads(job.read_text())
    data["labels"].update(labels or {})
    data["config"] = config
    job.write_text(json.dumps(data))
    return job


def hidden_job(root: Path, name: str, config_hash: str, hidden: int, accs: dict[int, float], **kwargs) -> Path:
    """A job of an mlp with `hidden` units (in its label and its resolved config): seed -> test acc."""
    return config_job(root, name, config_hash, accs, {"model": {"name": "mlp", "hidden": hidden}},
                      {"model": f"mlp[hidden={hidden}]"}, **kwargs)


def test_pivot_by_a_config_key_gives_each_values_delta_and_their_difference(tmp_path, capsys):
    # narrow (64): dropout - none = +0.02, +0.04, +0.00 ; wide (256): +0.10, +0.06, +0.08
    hidden_job(tmp_path, "0", "a" * 16, 64, {0: 0.60, 1: 0.62, 2: 0.64})
    hidden_job(tmp_path, "1", "b" * 16, 64, {0: 0.62, 1: 0.66, 2: 0.64}, technique="dropout", baseline_hash="a" * 16)
    hidden_job(tmp_path, "2", "c" * 16, 256, {0: 0.70, 1: 0.72, 2: 0.71})
    hidden_job(tmp_path, "3", "d" * 16, 256, {0: 0.80, 1: 0.78, 2: 0.79}, technique="dropout", baseline_hash="c" * 16)
    runs = collect([tmp_path], by="model.hidden").runs
    table = pivot(runs, "model.hidden")
    assert list(table.value) == ["64", "256"] and set(table.model) == {"mlp"}
    narrow, wide = table.iloc[0], table.iloc[1]
    assert narrow.delta_mean == pytest.approx(0.02) and wide.delta_mean == pytest.approx(0.08)
    # per-seed differences of the Δs: 0.08, 0.02, 0.08 -> mean 0.06, sd 0.034641 (= sqrt(0.0012))
    assert wide.diff_method == "paired" and wide.diff_seeds == 3 and wide.vs == "64"
    assert wide.diff_mean == pytest.approx(0.06)
    assert wide.diff_ci == pytest.approx(T_975_2 * math.sqrt(0.0012) / math.sqrt(3))
    assert report_cli.cli([str(tmp_path), "--by", "model.hidden"]) == 0
    out = capsys.readouterr().out
    assert "+6.0 ± 8.6 (paired n=3)" in out and "hidden=256" in out
    md = (tmp_path / "leaderboard_by_model.hidden.md").read_text()
    assert "| mlp | dropout | — | +2.0 ± 5.0 (n=3) | +8.0 ± 5.0 (n=3) | +6.0 ± 8.6 (paired n=3) |" in md


def test_pivot_without_shared_seeds_uses_welchs_interval(tmp_path):
    hidden_job(tmp_path, "0", "a" * 16, 64, {0: 0.60, 1: 0.62})
    hidden_job(tmp_path, "1", "b" * 16, 64, {0: 0.62, 1: 0.66}, technique="dropout", baseline_hash="a" * 16)
    hidden_job(tmp_path, "2", "c" * 16, 256, {5: 0.70, 6: 0.72, 7: 0.71})
    hidden_job(tmp_path, "3", "d" * 16, 256, {5: 0.80, 6: 0.78, 7: 0.79}, technique="dropout",
               baseline_hash="c" * 16)
    wide = pivot(collect([tmp_path], by="model.hidden").runs, "model.hidden").iloc[1]
    # Δs: narrow 0.02, 0.04; wide 0.10, 0.06, 0.08; no seed in common
    from scipy import stats
    reference = stats.ttest_ind([0.10, 0.06, 0.08], [0.02, 0.04], equal_var=False).confidence_interval(0.95)
    assert wide.diff_method == "Welch" and wide.diff_mean == pytest.approx(0.05)
    assert wide.diff_mean - wide.diff_ci == pytest.approx(reference.low)


def test_pivot_with_three_values_compares_each_with_the_first_and_a_missing_key_is_one_line(tmp_path, capsys):
    for i, (hidden, gain) in enumerate([(256, 0.08), (16, 0.00), (64, 0.02)]):
        base, treated = f"{2 * i + 1}" * 16, f"{2 * i + 2}" * 16
        hidden_job(tmp_path, f"{2 * i}", base, hidden, {0: 0.6, 1: 0.7})
        hidden_job(tmp_path, f"{2 * i + 1}", treated, hidden, {0: 0.6 + gain, 1: 0.7 + gain + 0.01},
                   technique="dropout", baseline_hash=base)
    table = pivot(collect([tmp_path], by="model.hidden").runs, "model.hidden")
    assert list(table.value) == ["16", "64", "256"]  # numeric order; the first is the reference
    assert pd.isna(table.vs.iloc[0]) and list(table.vs)[1:] == ["16", "16"]
    assert table.diff_mean.tolist()[1:] == [pytest.approx(0.02), pytest.approx(0.08)]
    assert report_cli.cli([str(tmp_path), "--by", "trainer.nosuch"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--by trainer.nosuch: no run has this config key" in err


# --- issue 18: rows that look alike, ranking with diverged seeds, many comparisons, pooled versions ----

LABEL_HEADERS = ("config", "dataset", "model", "technique", "setting", "baseline")


def row_labels(header: list[str], cells: list[list[str]]) -> list[tuple[str, ...]]:
    """Each row's label cells: what tells a reader which row is which."""
    keep = [i for i, name in enumerate(header) if name in LABEL_HEADERS]
    return [tuple(row[i] for i in keep) for row in cells]


def test_one_config_is_one_row_paired_with_the_newest_baseline(tmp_path):
    # l2 run with `baseline` at the defaults (seeds 0-2), then again with baseline batch_size=100 (seeds 0-1):
    # the same config_hash, two baseline_hashes -> one row of all three seeds, paired with the newest
    write_job(tmp_path, "none", DEFAULT, {0: (1.0, 0.60), 1: (1.0, 0.62), 2: (1.0, 0.64)})
    write_job(tmp_path, "none100", B100, {0: (1.0, 0.55), 1: (1.0, 0.57)}, setting="trainer.batch_size=100")
    write_job(tmp_path, "a", L2, {0: (0.9, 0.70), 1: (0.9, 0.71), 2: (0.9, 0.75)}, technique="l2",
              baseline_hash=DEFAULT, mtime=100)
    write_job(tmp_path, "b", L2, {0: (0.9, 0.70), 1: (0.9, 0.71)}, technique="l2", baseline_hash=B100, mtime=200)
    board = board_of(tmp_path)
    (l2,) = [row for _, row in board.iterrows() if row.config_hash == L2]
    assert (l2.seeds, l2.baseline, l2.baselines) == (3, "none trainer.batch_size=100", 2)
    assert l2.test_acc_mean == pytest.approx((0.70 + 0.71 + 0.75) / 3)   # no seed of the config is lost
    assert l2.delta_seeds == 2 and l2.delta_test_acc_mean == pytest.approx(0.145)   # paired with B100 on 0, 1
    text = render(board, 80)
    assert max(map(len, text.splitlines())) <= 80
    assert "vs none trainer.batch_size=100" in text.replace("\n", " ") or "vs none" in text   # says its baseline
    show_leaderboard([tmp_path])
    md = (tmp_path / "leaderboard.md").read_text()
    assert len([line for line in md.splitlines() if "| l2 |" in line]) == 1
    assert "was compared with 2 baselines in these results; Δ pairs it with the newest: none trainer.batch_size=100" in md
    csv = pd.read_csv(tmp_path / "leaderboard.csv", dtype=str)
    assert not csv.config_hash.duplicated().any()


def test_a_row_paired_with_another_baseline_says_so_in_the_terminal(tmp_path):
    write_job(tmp_path, "none100", B100, {0: (1.0, 0.55), 1: (1.0, 0.57)}, setting="trainer.batch_size=100")
    write_job(tmp_path, "a", L2, {0: (0.9, 0.70), 1: (0.9, 0.71)}, technique="l2", baseline_hash=B100)
    from regbench.report.table import display_rows
    header, cells, _ = display_rows(board_of(tmp_path), compact=True, width=80)
    settings = dict(zip((row[header.index("technique")] for row in cells), (row[header.index("setting")] for row in cells)))
    assert settings == {"l2": "vs none trainer.batch_size=100", "none": "trainer.batch_size=100"}


def test_two_baselines_with_the_same_label_are_named_by_their_config(tmp_path):
    # two `none` configs whose labels read the same (e.g. conf/ defaults changed between them)
    write_job(tmp_path, "n1", DEFAULT, {0: (1.0, 0.60)})
    write_job(tmp_path, "n2", SMOKE, {0: (1.0, 0.50)})
    write_job(tmp_path, "a", L2, {0: (0.9, 0.70)}, technique="l2", baseline_hash=DEFAULT, mtime=100)
    write_job(tmp_path, "b", L2, {1: (0.9, 0.70)}, technique="l2", baseline_hash=SMOKE, mtime=200)
    board = board_of(tmp_path)
    assert list(board[board.config_hash == L2].baseline) == ["none (bbbbbbbb)"]
    from regbench.report.table import display_rows
    for compact in (True, False):
        header, cells, _ = display_rows(board, compact=compact, width=80 if compact else None)
        labels = row_labels(header, cells)
        assert len(set(labels)) == len(labels), labels


def diverged_regression_job(root: Path, name: str, config_hash: str, losses: dict[int, float | None],
                            **kwargs) -> Path:
    """A regression job: seed -> test loss, or None for a diverged seed (null losses)."""
    job = regression_job(root, name, config_hash, {s: 0.0 for s in losses}, **kwargs)
    data = json.loads(job.read_text())
    for run in data["runs"]:
        loss = losses[run["seed"]]
        if loss is None:
            run.update(train_loss=None, test_loss=None, gap_loss=None, diverged=True)
        else:
            run.update(test_loss=loss, gap_loss=loss - 0.1)
    data["status"] = "diverged" if None in losses.values() else "completed"
    job.write_text(json.dumps(data))
    return job


def test_a_diverged_seed_counts_against_its_rows_rank(tmp_path):
    write_job(tmp_path, "a/0", DEFAULT, {0: (1.0, 0.60), 1: (1.0, 0.60), 2: (1.0, 0.60)})
    # l2: the best surviving mean (0.80) but one seed of three diverged: (0.80 + 0.80 + 0) / 3 = 0.533
    write_job(tmp_path, "a/1", L2, {0: (0.9, 0.80), 1: (0.9, 0.80), 2: None}, technique="l2", baseline_hash=DEFAULT)
    write_job(tmp_path, "a/2", "1" * 16, {0: (0.9, 0.70), 1: (0.9, 0.70), 2: (0.9, 0.70)}, technique="l1",
              baseline_hash=DEFAULT)
    # dropout: 0.95 on two seeds of three, (0.95 + 0.95 + 0) / 3 = 0.633: above none's 0.60, below l1's 0.70
    write_job(tmp_path, "a/3", "2" * 16, {0: (0.9, 0.95), 1: (0.9, 0.95), 2: None}, technique="dropout",
              baseline_hash=DEFAULT)
    board = board_of(tmp_path / "a")
    assert list(board.technique) == ["l1", "dropout", "none", "l2"]
    assert by_config(board)[L2].test_acc_mean == pytest.approx(0.80)  # its numbers stay its surviving seeds'
    assert by_config(board)[L2].rank_score == pytest.approx(1.6 / 3)
    # a loss: a diverged seed is infinitely bad; among such rows, fewer diverged seeds first
    diverged_regression_job(tmp_path, "b/0", DEFAULT, {0: 0.50, 1: 0.50, 2: 0.50})
    diverged_regression_job(tmp_path, "b/1", L2, {0: 0.10, 1: 0.10, 2: None}, technique="l2", baseline_hash=DEFAULT)
    diverged_regression_job(tmp_path, "b/2", SMOKE, {0: 0.05, 1: None, 2: None}, technique="l1",
                            baseline_hash=DEFAULT)
    board = board_of(tmp_path / "b")
    assert list(board.technique) == ["none", "l2", "l1"]
    assert list(board.rank_score) == [pytest.approx(0.5), math.inf, math.inf]
    show_leaderboard([tmp_path / "a"])
    assert "diverged seed at the worst possible value" in (tmp_path / "a" / "leaderboard.md").read_text()


def test_holm_p_is_adjusted_over_the_rows_of_one_dataset_and_model(tmp_path):
    from scipy import stats
    base = {0: 0.60, 1: 0.66, 2: 0.70, 3: 0.64}
    l2 = {0: 0.70, 1: 0.69, 2: 0.80, 3: 0.70}
    l1 = {0: 0.61, 1: 0.70, 2: 0.69, 3: 0.66}
    write_job(tmp_path, "0", DEFAULT, {s: (1.0, a) for s, a in base.items()})
    write_job(tmp_path, "1", L2, {s: (0.9, a) for s, a in l2.items()}, technique="l2", baseline_hash=DEFAULT)
    write_job(tmp_path, "2", "1" * 16, {s: (0.9, a) for s, a in l1.items()}, technique="l1", baseline_hash=DEFAULT)
    # another dataset: a family of its own, with one test
    write_job(tmp_path, "3", SMOKE, {s: (1.0, a) for s, a in base.items()}, dataset="digits")
    write_job(tmp_path, "4", L2_SMOKE, {s: (0.9, a) for s, a in l2.items()}, technique="l2",
              baseline_hash=SMOKE, dataset="digits")
    rows = by_config(board_of(tmp_path))
    p_l2 = stats.ttest_rel(list(l2.values()), list(base.values())).pvalue
    p_l1 = stats.ttest_rel(list(l1.values()), list(base.values())).pvalue
    assert p_l2 < p_l1 < 0.5
    assert rows[L2].p_holm == pytest.approx(2 * p_l2) and rows["1" * 16].p_holm == pytest.approx(max(2 * p_l2, p_l1))
    assert rows[L2_SMOKE].p_holm == pytest.approx(p_l2)          # alone in its family: unadjusted
    assert math.isnan(rows[DEFAULT].p_holm)                       # a baseline is no test
    show_leaderboard([tmp_path])
    md = (tmp_path / "leaderboard.md").read_text()
    l2_line = next(line for line in md.splitlines() if "| mnist1d | mlp | l2 |" in line)
    assert f"| {p_l2:.3f} | {2 * p_l2:.3f} | none |" in l2_line
    assert "p (Holm)" in md and "same dataset and model" in md
    csv = pd.read_csv(tmp_path / "leaderboard.csv")
    assert csv.p_holm.notna().sum() == 3


def test_p_improve_with_three_winning_seeds_shows_the_count_and_a_wilson_interval(tmp_path):
    write_job(tmp_path, "0", DEFAULT, {0: (1.0, 0.60), 1: (1.0, 0.62), 2: (1.0, 0.64)})
    write_job(tmp_path, "1", L2, {0: (0.9, 0.61), 1: (0.9, 0.66), 2: (0.9, 0.67)}, technique="l2",
              baseline_hash=DEFAULT)
    row = by_config(board_of(tmp_path))[L2]
    assert (row.prob_improve, row.improved_seeds, row.prob_improve_high) == (1.0, 3.0, 1.0)
    assert row.prob_improve_low == pytest.approx(0.4385, abs=5e-5)
    show_leaderboard([tmp_path])
    assert "| 1.00 (3/3) [0.44, 1.00] |" in (tmp_path / "leaderboard.md").read_text()
    assert "3/3" in render(board_of(tmp_path), 80)


def test_a_row_pooling_runs_of_several_versions_says_so_and_the_csv_lists_them(tmp_path, capsys):
    old, new = {"regbench": "0.1.0", "torch": "2.13.0+cpu", "hydra": "1.3.8"}, {"regbench": "0.2.0", "torch": "2.14.1"}
    write_job(tmp_path, "n", DEFAULT, {0: (1.0, 0.60), 1: (1.0, 0.62), 2: (1.0, 0.64)}, versions=old)
    write_job(tmp_path, "a", L2, {0: (0.9, 0.70)}, technique="l2", baseline_hash=DEFAULT, versions=old, mtime=100)
    write_job(tmp_path, "b", L2, {1: (0.9, 0.70)}, technique="l2", baseline_hash=DEFAULT, versions=new, mtime=200)
    write_job(tmp_path, "c", L2, {2: (0.9, 0.70)}, technique="l2", baseline_hash=DEFAULT, mtime=300)  # no versions
    write_job(tmp_path, "d", "1" * 16, {0: (0.9, 0.70)}, technique="l1", baseline_hash=DEFAULT,
              versions={"regbench": "0.1.0", "torch": "2.14.1"}, mtime=100)
    write_job(tmp_path, "e", "1" * 16, {1: (0.9, 0.70)}, technique="l1", baseline_hash=DEFAULT,
              versions={"regbench": "0.1.0", "torch": "2.13.0+cpu"}, mtime=200)
    show_leaderboard([tmp_path])
    line = ("config cccccccc (l2) pools runs from regbench 0.1.0, 0.2.0 and unknown; "
            "torch 2.13.0+cpu, 2.14.1 and unknown")
    out = " ".join(capsys.readouterr().out.split())
    assert line in out and "config 11111111 (l1) pools runs from torch 2.14.1 and 2.13.0+cpu" in out
    assert "config aaaaaaaa" not in out   # one version: nothing to say
    md = (tmp_path / "leaderboard.md").read_text()
    assert f"- {line}\n" in md and md.count("pools runs from") == 2
    csv = pd.read_csv(tmp_path / "leaderboard.csv", dtype=str).set_index("config_hash")
    assert csv.loc[L2, ["regbench_versions", "torch_versions"]].tolist() == ["0.1.0 0.2.0 unknown",
                                                                             "2.13.0+cpu 2.14.1 unknown"]
    assert csv.loc[DEFAULT, ["regbench_versions", "torch_versions"]].tolist() == ["0.1.0", "2.13.0+cpu"]


def dataset_job(root: Path, name: str, config_hash: str, n_train: int, accs: dict[int, float], **kwargs) -> Path:
    """A job on mnist1d with `n_train` training examples (in its label and resolved config): seed -> test acc."""
    return config_job(root, name, config_hash, accs, {"dataset": {"name": "mnist1d", "n_train": n_train},
                                                      "trainer": {"lr": 0.05}},
                      {"dataset": f"mnist1d[n_train={n_train}]"}, **kwargs)


def test_pivot_by_a_name_keeps_configs_that_differ_in_other_conditions(tmp_path, capsys):
    # issue 18: A and B differ only in n_train; `--by dataset.name` showed A's dropout Δ (-2.0) and lost B's (-0.2)
    dataset_job(tmp_path, "a0", "a" * 16, 500, {0: 0.60, 1: 0.62, 2: 0.64})
    dataset_job(tmp_path, "a1", "b" * 16, 500, {0: 0.58, 1: 0.60, 2: 0.62}, technique="dropout", baseline_hash="a" * 16)
    dataset_job(tmp_path, "b0", "c" * 16, 300, {0: 0.50, 1: 0.52, 2: 0.54})
    dataset_job(tmp_path, "b1", "d" * 16, 300, {0: 0.498, 1: 0.518, 2: 0.538}, technique="dropout",
                baseline_hash="c" * 16)
    table = pivot(collect([tmp_path], by="dataset.name").runs, "dataset.name")
    assert sorted(table.delta_mean) == [pytest.approx(-0.02), pytest.approx(-0.002)]
    assert set(table.dataset) == {"*[n_train=500]", "*[n_train=300]"} and set(table.value) == {"mnist1d"}
    assert report_cli.cli([str(tmp_path), "--by", "dataset.name"]) == 0
    out = capsys.readouterr().out
    assert "-2.0 ± 0.0" in out and "-0.2 ± 0.0" in out
    md = (tmp_path / "leaderboard_by_dataset.name.md").read_text()
    assert "-2.0 ± 0.0 (n=3)" in md and "-0.2 ± 0.0 (n=3)" in md


def test_pivot_gives_configs_that_would_share_a_cell_a_row_each(tmp_path):
    # two dropout configs whose labels read the same, and one l2 config run against two baselines (one
    # config: every seed of it, paired with the newest baseline, as on the leaderboard)
    dataset_job(tmp_path, "n", DEFAULT, 500, {0: 0.60, 1: 0.62, 2: 0.64, 3: 0.66})
    dataset_job(tmp_path, "n100", B100, 500, {0: 0.50, 1: 0.52, 2: 0.54, 3: 0.56}, setting="trainer.batch_size=100")
    dataset_job(tmp_path, "d1", "1" * 16, 500, {0: 0.61, 1: 0.63}, technique="dropout", baseline_hash=DEFAULT)
    dataset_job(tmp_path, "d2", "2" * 16, 500, {0: 0.70, 1: 0.72}, technique="dropout", baseline_hash=DEFAULT)
    dataset_job(tmp_path, "l2a", L2, 500, {0: 0.65, 1: 0.67}, technique="l2", baseline_hash=DEFAULT)
    dataset_job(tmp_path, "l2b", L2, 500, {2: 0.69, 3: 0.71}, technique="l2", baseline_hash=B100)
    table = pivot(collect([tmp_path], by="trainer.lr").runs, "trainer.lr")
    assert len(table) == 3 and not table.duplicated(["technique", "setting", "value"]).any()
    by_setting = dict(zip(table.setting, zip(table.delta_mean, table.delta_seeds)))
    assert by_setting == {"config 11111111": (pytest.approx(0.01), 2), "config 22222222": (pytest.approx(0.10), 2),
                          "": (pytest.approx(0.15), 4)}


def test_grid_values_hidden_from_the_tables_are_in_no_holm_family(tmp_path):
    # l2 tuned on a grid: its default point and tuned row are shown, the other grid value only in the csv
    base = {0: 0.60, 1: 0.66, 2: 0.70, 3: 0.64}
    write_job(tmp_path, "n", DEFAULT, {s: (1.0, a) for s, a in base.items()})
    points = {L2: {0: 0.70, 1: 0.69, 2: 0.80, 3: 0.70}, SMOKE: {0: 0.61, 1: 0.70, 2: 0.69, 3: 0.66}}
    for name, (config_hash, accs) in enumerate(points.items()):
        job = write_job(tmp_path, f"g{name}", config_hash, {s: (0.9, a) for s, a in accs.items()}, technique="l2",
                        baseline_hash=DEFAULT, setting=f"regularizer.l2.strength={name}")
        data = json.loads(job.read_text())
        data["grid"] = {"config_hash": "7" * 16, "default": config_hash == L2}
        job.write_text(json.dumps(data))
    job = write_job(tmp_path, "t", B10, {3: (0.9, 0.70)}, technique="l2", baseline_hash=DEFAULT, setting="tuned")
    data = json.loads(job.read_text())
    data["tuned"] = {"chosen": {"regularizer.l2.strength": 0}, "grid": "7" * 16, "default_hash": L2}
    job.write_text(json.dumps(data))
    rows = by_config(board_of(tmp_path))
    assert not rows[SMOKE].shown and math.isfinite(rows[SMOKE].p_value) and math.isnan(rows[SMOKE].p_holm)
    # the family: the default point (one test; the tuned row's single seed has no p)
    assert rows[L2].p_holm == pytest.approx(rows[L2].p_value)


def test_results_stored_under_an_older_identity_are_labelled_and_never_pooled(tmp_path):
    """A result of the older identity scheme (no `identity` in its record) keeps a row of its own that
    says so, beside the same config's result of this code: its seeds are never pooled with them."""
    write_job(tmp_path, "old", "a" * 16, {0: (1.0, 0.60), 1: (1.0, 0.62)}, technique="l2", scheme=None)
    write_job(tmp_path, "new", "b" * 16, {0: (1.0, 0.70), 1: (1.0, 0.72)}, technique="l2")
    rows = by_config(board_of(tmp_path))
    assert rows["a" * 16].setting == "[older identity]" and rows["a" * 16].seeds == 2
    assert rows["b" * 16].setting == "" and rows["b" * 16].seeds == 2

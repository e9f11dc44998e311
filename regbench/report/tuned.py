"""The tuned comparison: each technique at its default and at its value chosen on validation, side by
side, with the rank of each among the techniques ("which techniques change rank once tuned?").

Computed from `collect`'s runs, like the pivot, because every number in it is restricted to the seeds the
tuned rows report on (the seeds that did not choose): the default, tuned and `none` rows are then measured
on the same seeds, and a rank moves only because the value did. The board supplies the rows' labels.
"""
from __future__ import annotations

import math

import pandas as pd

from regbench.report.plots import short_numbers
from regbench.report.stats import mean_ci, paired_difference, score_counting_failures, shown_half_width, \
    MIN_SEEDS_FOR_INTERVAL
from regbench.report.summarize import per_seed
from regbench.report.table import fmt

TUNED_COLUMNS = ["dataset", "model", "setting", "technique", "default_config", "tuned_config", "chosen", "metric", "seeds",
                 "default_mean", "default_ci", "default_seeds", "default_delta_mean", "default_delta_ci",
                 "tuned_mean", "tuned_ci", "tuned_seeds", "tuned_delta_mean", "tuned_delta_ci",
                 "default_score", "tuned_score", "default_rank", "tuned_rank"]


def tuned_table(runs: pd.DataFrame, board: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """(table, notes). One row per technique of each comparison that has tuned rows: a comparison is a
    (dataset, model, baseline) whose tuned rows report on the same seeds. A row holds the technique's
    default (the default point of the grid it was tuned on; for a technique not tuned, its row at the
    comparison's default setting), its tuned row and the value chosen, each as mean ± 95% CI and paired
    Δ vs `none` on the seeds every tuned row there reports on (`seeds`). Ranks: 1 = best test accuracy
    (lowest test loss for regression) among the techniques and `none`, by defaults, then with each
    tuned row in place of its default; scored as the leaderboard ranks (`default_score`, `tuned_score`:
    the mean over those seeds with a diverged one at accuracy 0 or loss +inf), so a diverged seed counts
    against its row. A technique with several tuned rows in one comparison (merged
    sweeps that chose on other seeds) is left out of it, with a note: the leaderboard lists each."""
    rows, notes = [], []
    for (dataset, model, baseline_hash), part in board.groupby(["dataset", "model", "baseline_hash"], sort=False):
        tuned = part[part.tuned_grid.notna()]
        counts = tuned.technique.value_counts()
        for technique, count in counts[counts > 1].items():
            notes.append(f"{dataset} {model}: {technique} has {count} tuned results with this baseline "
                         "(chosen on other seeds or grids): left out here, the leaderboard lists each")
        several = tuned[tuned.technique.map(counts) > 1]
        tuned = tuned[tuned.technique.map(counts) == 1]
        if tuned.empty:
            continue
        reported = [set(runs[runs.config_hash == config_hash].seed) for config_hash in tuned.config_hash]
        seeds = sorted(set.intersection(*reported))
        if any(seed_set != set(seeds) for seed_set in reported):
            notes.append(f"{dataset} {model}: the tuned rows report on different seeds; compared on the "
                         f"seeds they share ({' '.join(map(str, seeds)) or 'none'})")
        alive = runs[~runs.diverged & runs.seed.isin(seeds)]
        metric = "test_acc" if part.test_acc_mean.notna().any() else "test_loss"
        # the comparison's default setting: that of the tuned grids' default points, else of `none`
        defaults = part[part.config_hash.isin(tuned.tuned_default.dropna())]
        base = defaults if not defaults.empty else part[part.config_hash == baseline_hash]
        setting = base.setting.iloc[0] if not base.empty else ""
        plain = part[part.grid.isna() & part.tuned_grid.isna() & (part.setting == setting)]

        def side(row: pd.Series, name: str) -> dict:
            mine = alive[alive.config_hash == row.config_hash]
            mean, ci, n = mean_ci(mine[metric])
            every = runs[(runs.config_hash == row.config_hash) & runs.seed.isin(seeds)]
            score = score_counting_failures(every[metric], every.diverged, 0.0 if metric == "test_acc" else math.inf)
            delta, delta_ci, paired = paired_difference(per_seed(mine, metric),
                                                   per_seed(alive[alive.config_hash == baseline_hash], metric))
            # intervals only where enough seeds make one (stats.interval_shown): NaN prints the mean alone
            return {f"{name}_config": row.config, f"{name}_mean": mean, f"{name}_ci": shown_half_width(ci, n),
                    f"{name}_seeds": n, f"{name}_delta_mean": delta,
                    f"{name}_delta_ci": shown_half_width(delta_ci, paired), f"{name}_score": score}

        for technique in dict.fromkeys([*plain.technique, *tuned.technique, *several.technique]):
            row = {"dataset": dataset, "model": model, "setting": setting, "technique": technique,
                   "metric": metric, "seeds": " ".join(map(str, seeds))}
            default = plain[plain.technique == technique]
            if default.empty:  # tuned more than once: its default still shows where the grids agree on it
                shared = set(several[several.technique == technique].tuned_default.dropna())
                default = part[part.config_hash.isin(shared)] if len(shared) == 1 else default
            mine = tuned[tuned.technique == technique]
            if not mine.empty:
                (_, chosen), = mine.iterrows()
                if isinstance(chosen.tuned_default, str):
                    default = part[part.config_hash == chosen.tuned_default]
                row.update(chosen=chosen.tuned, **side(chosen, "tuned"))
            if not default.empty:
                row.update(side(default.iloc[0], "default"))   # one config: one row of the board
            rows.append(row)
    table = pd.DataFrame(rows, columns=TUNED_COLUMNS)
    for _, part in table.groupby(["dataset", "model", "setting"], sort=False):
        lower_better = part.metric.iloc[0] == "test_loss"
        tuned = part.tuned_score.where(part.tuned_score.notna(), part.default_score)
        table.loc[part.index, "default_rank"] = part.default_score.rank(ascending=lower_better, method="min")
        table.loc[part.index, "tuned_rank"] = tuned.rank(ascending=lower_better, method="min")
    return table.sort_values(["dataset", "model", "setting", "tuned_rank"], kind="stable", ignore_index=True), notes


def rank_text(rank: float) -> str:
    return "—" if not math.isfinite(rank) else f"{int(rank)}"


def tuned_rows(table: pd.DataFrame, compact: bool = False) -> list[tuple[str, list[str], list[list[str]]]]:
    """[(title, header, cells)], one per (dataset, model)."""
    out = []
    for (dataset, model, setting), part in table.groupby(["dataset", "model", "setting"], sort=False):
        percent = part.metric.iloc[0] == "test_acc"
        unit = "test acc %" if percent else "test loss"
        delta = "Δ" if compact else f"Δ {unit}"
        short = ("%" if percent else "loss") if compact else unit
        header = ["technique", f"default {short}", delta, "rank", "chosen on validation" if not compact else "chosen",
                  f"tuned {short}", delta, "rank"]
        # the terminal: means without their intervals (the Δs keep theirs), to fit 80 columns
        half = (lambda ci: math.nan) if compact else (lambda ci: ci)
        cells = []
        for _, row in part.iterrows():
            chosen = short_numbers(row.chosen) if isinstance(row.chosen, str) else "not tuned" if row.technique != "none" else "—"
            if compact and isinstance(row.chosen, str):
                chosen = " ".join(setting.partition("=")[0].rpartition(".")[2] + "=" + setting.partition("=")[2]
                                  for setting in chosen.split())  # 'strength=0.003'
            tuned = isinstance(row.chosen, str)
            cells.append([
                row.technique,
                fmt(row.default_mean, half(row.default_ci), percent=percent)
                + (f" (n={row.default_seeds:.0f})" if not compact and math.isfinite(row.default_mean) else ""),
                fmt(row.default_delta_mean, row.default_delta_ci, percent=percent, signed=True),
                rank_text(row.default_rank), chosen,
                (fmt(row.tuned_mean, half(row.tuned_ci), percent=percent)
                 + (f" (n={row.tuned_seeds:.0f})" if not compact else "")) if tuned else "—",
                fmt(row.tuned_delta_mean, row.tuned_delta_ci, percent=percent, signed=True) if tuned else "—",
                rank_text(row.tuned_rank) + ("" if row.tuned_rank == row.default_rank or not math.isfinite(row.default_rank)
                                             else f" ({'↑' if row.tuned_rank < row.default_rank else '↓'})"),
            ])
        if compact:  # 80 columns: the Δs (and every interval) stay in leaderboard_tuned.md
            keep = [i for i, name in enumerate(header) if name != delta]
            header, cells = [header[i] for i in keep], [[line[i] for i in keep] for line in cells]
        title = f"dataset={dataset} model={model}" + (f" {setting}" if setting else "")
        out.append((f"{title} seeds={part.seeds.iloc[0]}", header, cells))
    return out


TUNED_NOTES = ("Every number here is on the seeds in the title: those the tuned rows report on, which took "
               "no part in choosing. Default: the technique at its conf/ default (the default point of the grid "
               "it was tuned on). Tuned: the grid value with the best mean validation metric over the selection "
               "seeds; test metrics never reach the choice. Mean ± 95% CI over those seeds (n; the mean alone "
               f"below {MIN_SEEDS_FOR_INTERVAL} seeds, whose t interval says nothing); Δ: paired "
               "with the `none` baseline on them (a diverged run is left out of its row: its n says so). Rank: among these techniques and `none` (1 = best "
               "test metric over those seeds, a diverged seed counting as accuracy 0 or loss +∞), by default rows, then with each tuned row in place of its default; ↑/↓ a "
               "technique that moved.")


def tuned_markdown(table: pd.DataFrame, notes: list[str], level: int = 1) -> str:
    """leaderboard_tuned.md; `level` 2 makes it a section of a page (the report)."""
    text = "#" * level + " Tuned on validation vs default\n"
    for title, header, cells in tuned_rows(table):
        text += f"\n{'#' * (level + 1)} {title}\n\n| " + " | ".join(header) + " |\n|" + "---|" * len(header) + "\n"
        text += "".join("| " + " | ".join(c.replace("|", "\\|") for c in line) + " |\n" for line in cells)
    return text + "\n" + TUNED_NOTES + "\n" + "".join(f"\n- {note}" for note in notes) + ("\n" if notes else "")


def print_tuned(console, table: pd.DataFrame, notes: list[str]) -> None:
    from rich.table import Table
    from rich.text import Text

    for title, header, cells in tuned_rows(table, compact=True):
        grid = Table(title=Text(f"tuned on validation vs default: {title}"),
                     caption=Text("chosen: best mean validation metric over the selection seeds; every number "
                                  "on the other seeds; rank 1 = best; Δs, intervals and notes in "
                                  "leaderboard_tuned.md"))
        for name in header:
            grid.add_column(name, justify="left" if name in ("technique", "chosen") else "right",
                            overflow="fold")
        for line in cells:
            grid.add_row(*map(Text, line))
        console.print(grid)
    for note in notes:
        console.print(Text(note, style="yellow"))

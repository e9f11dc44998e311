"""Reporting: per resolved config, the train-versus-test gap with 95% CIs and Δ vs its baseline.

Built from files on disk (`**/metrics.json`), so it works the same at the end of a sweep (whatever
launcher ran the jobs) and later from `regbench-leaderboard DIR...`. The modules follow the data, each
reading only what the one before returns:
  collect    read and check every metrics.json; one run per (config_hash, seed), the newest file's
  summarize  one row per (config_hash, baseline_hash): mean ± 95% CI per metric, Δ vs the baseline row
  table      terminal table and leaderboard.md (formatting only, no statistics)
  cli        show_leaderboard (collect → summarize → render → files), the Hydra callback, the command
`stats` holds the small pure statistics `summarize` uses.
"""

TITLE = "regbench leaderboard"  # here, not in `table`, so that `cli` names it without importing pandas

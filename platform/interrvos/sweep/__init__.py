"""Benchmark sweeps: checkpoints x datasets x named axes of prediction settings, on Ray (docs/sweeps.md).

    config.py       the typed grid (YAML + --set), validated before anything runs
    cells.py        checkpoints (paths, globs, training checkpoints exported) and datasets (the evaluation
                    filter) resolved; the grid expanded into cells with stable ids and cache keys
    keys.py         content hashes and the prediction cache's keys
    cache.py        the prediction cache (SQLite, one row per expression)
    predict.py      the Ray Data actor pool that predicts the missing expressions of a model group
    scoring.py      a cell's predictions scored by `interrvos evaluate`'s code (a Ray task per cell)
    run.py          the orchestration: resolve, predict, score, report; plan.py: `--dry-run`
    stats.py        clustered-by-video bootstrap intervals and paired differences
    report.py       parquet/CSV/JSON tables and the Markdown report; plots.py: its PNGs
    leaderboard.py  optional: the results sent to a running evaluation app
    proof.py        the demo's training proof (train, then a small sweep): train/ knows no evaluation
    cli.py          `interrvos sweep` (register(app))
"""

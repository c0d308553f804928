"""Evaluation: exact J and F, the MeViS/InterRVOS and actor-target protocols, caption-type tables,
predictions formats and validation, model-free baselines, reports and overlays (docs/evaluation.md)."""

from interrvos.evaluate.metrics import boundary_map, f_score, j_score, jf_score, jf_scores
from interrvos.evaluate.run import baseline_table_markdown, run_evaluate, score_predictions

__all__ = ["baseline_table_markdown", "boundary_map", "f_score", "j_score", "jf_score", "jf_scores",
           "run_evaluate", "score_predictions"]

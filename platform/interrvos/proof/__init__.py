"""The referring proof: synthetic data -> pretraining of the tiny SAM2 and MLLM -> ReVIOsA training (the
paper's three modes) -> a sweep of every trained model, the untrained one and the baselines on held-out
videos -> tables, ablation and report. `interrvos proof` (the long run, `make proof`) and the demo's
training step (the short one) are this pipeline with two configs.
"""

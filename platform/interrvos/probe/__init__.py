"""Does the language model read the expression? A held-out linear probe of the expression's colour and
shape words on the MLLM's `[SEG_ACT]` hidden state (features.py, probe.py, measure.py), and a short
synthetic text pretraining that teaches the tiny MLLM to read them (text_pretrain.py). CLI: cli.py
(`interrvos probe-text`, `interrvos pretrain-text`); docs/training.md, "Does the language model read the
expression?".
"""

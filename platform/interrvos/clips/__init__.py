"""Clip extraction: the paper's clip rule (pure) and its Ray Data pipeline."""

"""InterRVOS Platform: data, training, serving and evaluation for interaction-aware RVOS on Ray."""

__version__ = "0.1.0"

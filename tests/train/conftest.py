"""Training tests: fast Ray Train reports, the toy task importable by Ray workers, a tiny dataset."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

# Each ray.train.report waits for a controller poll (2 s by default): keep tests fast.
os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.1")


def _load_toy():
    """tests/train/toy.py as module `interrvos_train_toy`, pickled by value so Ray workers need no tests/."""
    from ray import cloudpickle

    name = "interrvos_train_toy"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("toy.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        cloudpickle.register_pickle_by_value(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def toy():
    return _load_toy()


@pytest.fixture(scope="session")
def pushing_dataset(tmp_path_factory, toy) -> str:
    return toy.write_pushing_dataset(tmp_path_factory.mktemp("pushing"))


@pytest.fixture(scope="session")
def make_toy_config():
    return toy_config


def toy_config(storage: str, dataset: str, name: str, **overrides):
    """A TrainConfig for the toy task on 2 CPU workers (fp32)."""
    from interrvos.train.config import TrainConfig

    tree = {
        "name": name, "storage": storage,
        "data": {"sources": [dataset], "frames_per_sample": 3, "expressions_per_sample": 2, "samples_per_epoch": 16,
                 "decode_cpus": 0.25},
        "optim": {"batch_size": 2, "grad_accum": 2, "max_steps": 4, "lr": 1e-2, "warmup_ratio": 0.25},
        "deepspeed": {"stage": 2},
        "workers": {"num_workers": 2, "cpus_per_worker": 0.5, "use_gpu": False, "max_failures": 0,
                    "report_poll_s": 0.1},
        "checkpoint": {"every_n_steps": 2, "keep_last": 2},
        "log": {"progress": False},
    }  # fmt: skip
    for dotted, value in overrides.items():
        node = tree
        *parents, leaf = dotted.split("__")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return TrainConfig.model_validate(tree)

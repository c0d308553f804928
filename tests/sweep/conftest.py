"""The sweep tests' world: a small synthetic dataset (train.sample_data) and two tiny checkpoints under
one folder (so a glob finds both): one model after 40 and after 65 teaching steps (`world`), or two
random ones (`plain_world`, quick to make, for tests that never predict)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml


def _world(root: Path, teach: bool) -> dict:
    import torch

    from interrvos.model.checkpoint import save_checkpoint
    from interrvos.model.reviosa import build_model
    from interrvos.train.sample_data import teach_tiny, write_pushing_dataset

    dataset = write_pushing_dataset(root / "ds", num_videos=3, num_frames=4)
    ckpts = root / "checkpoints"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:  # random tiny models predict empty masks: tiny-a is taught 40 steps, tiny-b the same 25 steps further
        model = build_model("tiny", ["inference.num_frames=2", "random_templates=false"])
        teach_tiny(model, 40 if teach else 0)
        save_checkpoint(model, str(ckpts / "tiny-a"))
        if not teach:
            model = build_model("tiny", ["inference.num_frames=2", "random_templates=false", "seed=1"])
        teach_tiny(model, 25 if teach else 0)
        save_checkpoint(model, str(ckpts / "tiny-b"))
    finally:
        torch.set_num_threads(threads)
    return {"root": root, "dataset": dataset, "checkpoints": str(ckpts), "a": str(ckpts / "tiny-a"),
            "b": str(ckpts / "tiny-b")}


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> dict:
    """Taught checkpoints (predictions that score above 0), for the tests that predict (~15 s to make)."""
    return _world(tmp_path_factory.mktemp("sweep"), teach=True)


@pytest.fixture(scope="session")
def plain_world(tmp_path_factory) -> dict:
    """The same layout with random checkpoints (two seeds), for the tests that only resolve the grid."""
    return _world(tmp_path_factory.mktemp("sweep_plain"), teach=False)


def grid(world: dict, out: Path, cache: Path, **changes) -> dict:
    """The tests' 2 checkpoints x 1 dataset x 2 settings grid as a config tree (changes replace keys)."""
    tree = {
        "name": "test", "out": str(out), "cache": str(cache),
        "checkpoints": [{"glob": f"{world['checkpoints']}/tiny-*"}],
        "datasets": [{"id": "push", "path": world["dataset"]}],
        "axes": {"K": {"field": "inference.num_frames", "values": [1, 2]}},
        "predict": {"batch_size": 5, "workers": {"min_size": 1, "max_size": 1, "num_cpus": 1}},
        "scoring": {"sensitivity_pairs": 4},
        "stats": {"samples": 300},
    }
    tree.update(changes)
    return tree


@pytest.fixture(scope="session")
def make_grid():
    """grid() as a fixture (test modules cannot import conftest under --import-mode=importlib)."""
    return grid


def write_yaml(path: Path, tree: dict) -> Path:
    path.write_text(yaml.safe_dump(tree))
    return path


@pytest.fixture(scope="session")
def yaml_file():
    return write_yaml

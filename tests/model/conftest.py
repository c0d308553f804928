"""Fixtures for the ReVIOsA tests: the tiny model (built per test where it gets trained), a synthetic
clip and batches in the processor's layout."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One intra-op thread: on a small shared CI machine, two OpenMP threads competing with other
    processes made the tiny model 50-100x slower (measured); one thread is also what each Ray worker uses."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_model():
    """A shared tiny model for tests that only read it (never train or mutate it)."""
    from interrvos.model.reviosa import build_model

    return build_model("tiny").eval()


@pytest.fixture()
def fresh_tiny():
    """Factory: a new tiny model, optionally with dotted overrides."""
    from interrvos.model.reviosa import build_model

    return lambda *overrides: build_model("tiny", list(overrides))


@pytest.fixture(scope="session")
def clip():
    from interrvos.model.synthetic import synthetic_clip

    return synthetic_clip(num_frames=4, height=72, width=96, seed=1)


def make_batch(model, clip, frames: int = 2, unidirectional: bool = True, single: bool = True, samples: int = 1):
    """A batch with a unidirectional expression (actor + target) and a single-object one."""
    from interrvos.model.processor import TrainingExpression

    exps = []
    if unidirectional:
        exps.append(TrainingExpression("red square pushing the blue disc", clip.actor[:frames], clip.target[:frames]))
    if single:
        exps.append(TrainingExpression("the blue disc", clip.target[:frames]))
    rng = model.sample_rng()
    return model.processor.collate([model.processor.sample(clip.frames[:frames], exps, rng) for _ in range(samples)])


@pytest.fixture(scope="session")
def batch_of():
    """make_batch as a fixture (test modules cannot import conftest under --import-mode=importlib)."""
    return make_batch

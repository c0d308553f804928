"""Tiny datasets for the evaluation tests, written with mevis.write_dataset (no pipeline)."""

from __future__ import annotations

import numpy as np
import pytest

from interrvos.data.mevis import write_dataset, write_frame
from interrvos.data.records import Expression, VideoEntry
from interrvos.data.rle import encode_mask

H, W = 24, 32


def box(y0: int, y1: int, x0: int, x1: int, h: int = H, w: int = W) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    m[max(y0, 0):max(y1, 0), max(x0, 0):max(x1, 0)] = 1
    return m


def _track(boxes: list[tuple[int, int, int, int] | None]) -> list:
    return [None if b is None else encode_mask(box(*b)) for b in boxes]


def build_eval_dataset(root: str, num_frames: int = 5, with_images: bool = True) -> dict[str, VideoEntry]:
    """v1: a person (large, moving) pushes a ball (small); a dog beside them, hidden in frame 0.
    v2: a cat and a bird. Expressions of every caption type, an actor-target pair, a bidirectional one."""
    n = num_frames
    tracks = {
        "p": _track([(2, 14, 2 + t, 12 + t) for t in range(n)]),
        "b": _track([(10, 14, 13 + t, 17 + t) for t in range(n)]),
        "d": _track([None] + [(16, 22, 20, 30)] * (n - 1)),
        "c": _track([(1, 9, 1, 9)] * n),
        "r": _track([(12, 20, 16 + t, 22 + t) for t in range(n)]),
    }
    frames = [f"{i:05d}" for i in range(n)]
    pair = dict(caption_type="interaction", interaction="unidirectional")
    v1 = VideoEntry(vid_id="v1", frames=frames, objects={
        "1": {"category": "person", "anno_id": "p"}, "2": {"category": "ball", "anno_id": "b"},
        "3": {"category": "dog", "anno_id": "d"}}, expressions={
        "0": Expression(exp="the person walking right", caption_type="single_all", obj_id=["1"], anno_id=["p"]),
        "1": Expression(exp="the small ball", caption_type="single_appearance", obj_id=["2"], anno_id=["b"]),
        "2": Expression(exp="person and dog", caption_type="multi", obj_id=["1", "3"], anno_id=["p", "d"]),
        "3": Expression(exp="person pushing the ball", obj_id=["1", "2"], anno_id=["p", "b"], actor_ids=["1"],
                        target_ids=["2"], actor_anno_id=["p"], target_anno_id=["b"], **pair),
        "4": Expression(exp="ball pushed by the person", obj_id=["2", "1"], anno_id=["b", "p"], actor_ids=["2"],
                        target_ids=["1"], actor_anno_id=["b"], target_anno_id=["p"], **pair),
        "5": Expression(exp="dog and person side by side", caption_type="interaction", interaction="bidirectional",
                        obj_id=["3", "1"], anno_id=["d", "p"]),
    })
    v2 = VideoEntry(vid_id="v2", frames=frames, objects={
        "1": {"category": "cat", "anno_id": "c"}, "2": {"category": "bird", "anno_id": "r"}}, expressions={
        "0": Expression(exp="the bird flying right", caption_type="single_motion", obj_id=["2"], anno_id=["r"]),
        "1": Expression(exp="cat watching the bird", obj_id=["1", "2"], anno_id=["c", "r"], actor_ids=["1"],
                        target_ids=["2"], actor_anno_id=["c"], target_anno_id=["r"], **pair),
    })
    videos = {"v1": v1, "v2": v2}
    if with_images:
        rng = np.random.default_rng(0)
        for vid, entry in videos.items():
            for frame in entry.frames:
                write_frame(root, vid, frame, rng.integers(0, 255, (H, W, 3), dtype=np.uint8))
    write_dataset(root, videos, tracks)
    return videos


@pytest.fixture(scope="session")
def eval_dataset(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("eval") / "dataset")
    build_eval_dataset(root)
    return root


def oracle_records(root: str) -> list[dict]:
    """Prediction records equal to the ground truth (what the oracle baseline predicts)."""
    from interrvos.data.mevis import load_dataset
    from interrvos.evaluate.baselines import BaselinePredictions
    from interrvos.evaluate.predictions import prediction_record

    ds, oracle = load_dataset(root), BaselinePredictions("oracle")
    records = []
    for vid, exp, _ in ds.all_expressions():
        p = oracle.load(ds, vid, exp)
        records.append(prediction_record(vid, exp, p.actor, p.target))
    return records


@pytest.fixture
def oracle():
    return oracle_records

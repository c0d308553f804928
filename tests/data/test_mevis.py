"""The dataset folder: our format round trips; plain MeViS, the authors' release and Ref-YouTube-VOS load."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from interrvos.data.mevis import (
    MASK_FILE,
    META_FILE,
    Dataset,
    load_dataset,
    refytvos_anno_id,
    write_dataset,
    write_frame,
)
from interrvos.data.records import Expression, VideoEntry
from interrvos.data.rle import decode_rle, encode_mask
from interrvos.errors import DatasetError

H, W = 8, 12


def _box(y0: int, y1: int, x0: int, x1: int, h: int = H, w: int = W) -> np.ndarray:
    m = np.zeros((h, w), dtype=np.uint8)
    m[y0:y1, x0:x1] = 1
    return m


def build_tiny_dataset(root: str) -> tuple[dict[str, VideoEntry], dict[str, list]]:
    """Two videos: v1 (3 frames, person 1 kicks ball 3, dog 2 beside them) and v2 (2 frames, one cat)."""
    frames = ["00000", "00001", "00002"]
    tracks = {
        "a1": [encode_mask(_box(0, 4, 0, 4)), encode_mask(_box(1, 5, 1, 5)), None],
        "a2": [None, encode_mask(_box(4, 8, 6, 12)), encode_mask(_box(4, 8, 5, 11))],
        "a3": [encode_mask(_box(2, 3, 3, 9)), encode_mask(_box(2, 4, 3, 9)), encode_mask(_box(0, 1, 0, 1))],
        "b1": [encode_mask(_box(0, 8, 0, 6)), encode_mask(_box(0, 8, 6, 12))],
    }
    v1 = VideoEntry(
        vid_id="v1",
        frames=frames,
        objects={
            "1": {"category": "person", "anno_id": "a1"},
            "2": {"category": "dog", "anno_id": "a2"},
            "3": {"category": "ball", "anno_id": "a3"},
        },
        expressions={
            "0": Expression(exp="the person in red", caption_type="single_appearance", obj_id=["1"], anno_id=["a1"]),
            "1": Expression(exp="person and dog", caption_type="multi", obj_id=["1", "2"], anno_id=["a1", "a2"]),
            "2": Expression(
                exp="person kicking the ball",
                caption_type="interaction",
                obj_id=["1", "3"],
                anno_id=["a1", "a3"],
                interaction="unidirectional",
                actor_ids=["1"],
                target_ids=["3"],
                actor_anno_id=["a1"],
                target_anno_id=["a3"],
            ),
            "3": Expression(
                exp="dog and person playing together",
                caption_type="interaction",
                obj_id=["2", "1"],
                anno_id=["a2", "a1"],
                interaction="bidirectional",
            ),
        },
    )
    v2 = VideoEntry(
        vid_id="v2",
        frames=["00000", "00005"],
        objects={"7": {"category": "cat", "anno_id": "b1"}},
        expressions={"0": Expression(exp="cat walking right", caption_type="single_motion", obj_id=["7"], anno_id=["b1"])},
    )
    videos = {"v1": v1, "v2": v2}
    rng = np.random.default_rng(0)
    for vid, entry in videos.items():
        for frame in entry.frames:
            write_frame(root, vid, frame, rng.integers(0, 255, (H, W, 3), dtype=np.uint8))
    write_dataset(root, videos, tracks)
    return videos, tracks


def test_write_then_load_round_trips_videos_and_masks(tmp_path):
    root = str(tmp_path / "ds")
    videos, tracks = build_tiny_dataset(root)
    ds = load_dataset(root)
    assert ds.kind == "interrvos"
    assert ds.skipped == []
    assert ds.videos == videos
    for anno, masks in tracks.items():
        assert ds.masks(anno) == masks
    assert ds.frame_path("v1", "00001") == os.path.join(root, "JPEGImages", "v1", "00001.jpg")
    assert ds.read_frame("v2", "00005").shape == (H, W, 3)
    assert ds.frame_size("v1") == (H, W)
    assert [(v, e) for v, e, _ in ds.all_expressions()] == [("v1", "0"), ("v1", "1"), ("v1", "2"), ("v1", "3"), ("v2", "0")]


def test_written_files_are_mevis_shaped_json_with_str_ids_and_no_temp_files(tmp_path):
    root = tmp_path / "ds"
    build_tiny_dataset(str(root))
    assert sorted(os.listdir(root)) == ["JPEGImages", MASK_FILE, META_FILE]
    meta = json.loads((root / META_FILE).read_text())
    exp = meta["videos"]["v1"]["expressions"]["2"]
    assert exp["obj_id"] == ["1", "3"] and exp["anno_id"] == ["a1", "a3"]
    assert exp["actor_anno_id"] == ["a1"] and exp["target_anno_id"] == ["a3"]
    assert meta["videos"]["v1"]["frames"] == ["00000", "00001", "00002"]
    masks = json.loads((root / MASK_FILE).read_text())
    assert len(masks["a1"]) == 3 and masks["a1"][2] is None and isinstance(masks["a1"][0]["counts"], str)


def test_object_masks_are_the_per_frame_union(tmp_path):
    root = str(tmp_path / "ds")
    _, tracks = build_tiny_dataset(root)
    ds = load_dataset(root)
    union = ds.object_masks("v1", ["1", "2"])
    assert len(union) == 3
    for i, m in enumerate(union):
        expected = np.zeros((H, W), np.uint8)
        for anno in ("a1", "a2"):
            if tracks[anno][i] is not None:
                expected |= decode_rle(tracks[anno][i])
        np.testing.assert_array_equal(m, expected)
    with pytest.raises(DatasetError, match="no object"):
        ds.object_masks("v1", ["9"])


def test_expression_masks_split_actor_and_target(tmp_path):
    root = str(tmp_path / "ds")
    _, tracks = build_tiny_dataset(root)
    ds = load_dataset(root)
    actor = ds.expression_masks("v1", "2", role="actor")
    target = ds.expression_masks("v1", "2", role="target")
    both = ds.expression_masks("v1", "2")
    np.testing.assert_array_equal(actor[0], decode_rle(tracks["a1"][0]))
    np.testing.assert_array_equal(target[1], decode_rle(tracks["a3"][1]))
    assert actor[2].sum() == 0  # the person is not visible in frame 2
    for a, t, b in zip(actor, target, both, strict=True):
        np.testing.assert_array_equal(a | t, b)


def _write_json(path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def test_plain_mevis_folder_with_int_ids_loads(tmp_path):
    rle = encode_mask(_box(0, 2, 0, 2))
    _write_json(
        tmp_path / META_FILE,
        {
            "videos": {
                "bike-1": {
                    "vid_id": 17,
                    "frames": ["00000", "00001"],
                    "expressions": {
                        "0": {"exp": "bike moving left", "obj_id": [0], "anno_id": [3]},
                        "1": {"exp": "two bikes", "obj_id": [0, 1], "anno_id": [3, 4]},
                    },
                }
            }
        },
    )
    _write_json(tmp_path / MASK_FILE, {"3": [rle, None], "4": [None, rle]})
    ds = load_dataset(str(tmp_path))
    assert ds.kind == "mevis"
    video = ds.videos["bike-1"]
    assert video.vid_id == "17"
    assert video.expressions["0"].obj_id == ["0"] and video.expressions["0"].anno_id == ["3"]
    assert video.expressions["0"].caption_type == "single_all"
    assert video.expressions["1"].caption_type == "multi"
    assert video.expressions["1"].interaction == "none"
    assert ds.object_anno_ids("bike-1") == {"0": "3", "1": "4"}
    union = ds.object_masks("bike-1", ["0", "1"])
    assert union[0].sum() == 4 and union[1].sum() == 4


def test_authors_release_roles_map_subject_to_actor_and_object_to_target(tmp_path):
    rle = encode_mask(_box(0, 2, 0, 2))
    roles = {"obj_id": {"subject": [0], "object": [2]}, "anno_id": {"subject": [10], "object": [12]}}
    _write_json(
        tmp_path / META_FILE,
        {
            "videos": {
                "123_clip000": {
                    "vid_id": 0,
                    "frames": ["00000"],
                    "expressions": {
                        "0": {"exp": "man", "obj_id": [0], "anno_id": [10], "caption_type": "single"},
                        "1": {
                            "exp": "man pushing cart",
                            "obj_id": [0, 2],
                            "anno_id": [10, 12],
                            "caption_type": "unidirectional",
                            "subject/object": roles,
                        },
                        "2": {"exp": "two men hugging", "obj_id": [0, 1], "anno_id": [10, 11], "caption_type": "bidirectional"},
                    },
                }
            }
        },
    )
    _write_json(tmp_path / MASK_FILE, {"10": [rle], "11": [rle], "12": [None]})
    ds = load_dataset(str(tmp_path))
    assert ds.kind == "interrvos" and ds.skipped == []
    exps = ds.videos["123_clip000"].expressions
    assert exps["0"].caption_type == "single_all"
    uni = exps["1"]
    assert (uni.caption_type, uni.interaction) == ("interaction", "unidirectional")
    assert (uni.actor_ids, uni.target_ids, uni.actor_anno_id, uni.target_anno_id) == (["0"], ["2"], ["10"], ["12"])
    assert (exps["2"].caption_type, exps["2"].interaction) == ("interaction", "bidirectional")


def _palette_png(path, labels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(labels.astype(np.uint8), mode="P")
    img.putpalette([0, 0, 0, 236, 95, 103, 249, 145, 87] + [0] * (256 * 3 - 9))  # colours != ids
    img.save(path)


def test_refytvos_folder_with_palette_pngs_loads_and_yields_the_right_masks(tmp_path):
    _write_json(
        tmp_path / META_FILE,
        {
            "videos": {
                "003234408d": {
                    "frames": ["00000", "00005", "00010"],
                    "expressions": {"0": {"exp": "a penguin on the left", "obj_id": "1"}, "1": {"exp": "the other penguin", "obj_id": "2"}},
                }
            }
        },
    )
    _write_json(tmp_path / "meta.json", {"videos": {"003234408d": {"objects": {"1": {"category": "penguin"}, "2": {"category": "penguin"}}}}})
    labels = [np.zeros((H, W), np.uint8) for _ in range(2)]
    labels[0][0:3, 0:4] = 1
    labels[0][5:8, 6:12] = 2
    labels[1][1:4, 1:5] = 1  # object 2 left the frame
    for frame, lab in zip(["00000", "00005"], labels, strict=True):
        _palette_png(tmp_path / "Annotations" / "003234408d" / f"{frame}.png", lab)
    # frame 00010 has no PNG: no object is annotated there

    ds = load_dataset(str(tmp_path))
    assert ds.kind == "refytvos"
    video = ds.videos["003234408d"]
    e0 = video.expressions["0"]
    assert e0.obj_id == ["1"] and e0.anno_id == [refytvos_anno_id("003234408d", "1")]
    assert e0.caption_type == "single_all"
    assert video.objects["2"] == {"category": "penguin", "anno_id": "003234408d:2"}

    masks1 = ds.masks("003234408d:1")
    masks2 = ds.masks("003234408d:2")
    assert len(masks1) == 3 and masks1[2] is None
    np.testing.assert_array_equal(decode_rle(masks1[0]), (labels[0] == 1).astype(np.uint8))
    np.testing.assert_array_equal(decode_rle(masks1[1]), (labels[1] == 1).astype(np.uint8))
    np.testing.assert_array_equal(decode_rle(masks2[0]), (labels[0] == 2).astype(np.uint8))
    assert masks2[1] is None
    union = ds.object_masks("003234408d", ["1", "2"])
    np.testing.assert_array_equal(union[0], (labels[0] > 0).astype(np.uint8))
    assert union[2].shape == (H, W) and union[2].sum() == 0


def test_a_folder_without_meta_expressions_is_not_a_dataset(tmp_path):
    (tmp_path / "JPEGImages").mkdir()
    with pytest.raises(DatasetError, match=META_FILE) as err:
        load_dataset(str(tmp_path))
    assert str(tmp_path) in str(err.value)


def test_invalid_json_or_missing_videos_is_not_a_dataset(tmp_path):
    (tmp_path / META_FILE).write_text('{"videos": {')
    with pytest.raises(DatasetError, match="not valid JSON"):
        load_dataset(str(tmp_path))
    (tmp_path / META_FILE).write_text('{"clips": {}}')
    with pytest.raises(DatasetError, match="'videos'"):
        load_dataset(str(tmp_path))


def test_bad_expressions_are_skipped_and_listed_not_fatal(tmp_path):
    root = str(tmp_path / "ds")
    build_tiny_dataset(root)
    meta = json.loads((tmp_path / "ds" / META_FILE).read_text())
    meta["videos"]["v1"]["expressions"]["1"]["exp"] = ""
    _write_json(tmp_path / "ds" / META_FILE, meta)
    ds = load_dataset(root)
    assert "1" not in ds.videos["v1"].expressions and "0" in ds.videos["v1"].expressions
    assert len(ds.skipped) == 1 and "video 'v1' expression '1'" in ds.skipped[0] and "exp" in ds.skipped[0]


def test_unknown_anno_id_and_missing_mask_dict_raise_dataset_errors(tmp_path):
    root = str(tmp_path / "ds")
    build_tiny_dataset(root)
    ds = load_dataset(root)
    with pytest.raises(DatasetError, match="unknown anno id 'zz'"):
        ds.masks("zz")
    os.remove(os.path.join(root, MASK_FILE))
    ds = load_dataset(root)
    assert isinstance(ds, Dataset)
    with pytest.raises(DatasetError, match="missing"):
        ds.masks("a1")

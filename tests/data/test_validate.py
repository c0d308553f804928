"""validate_dataset: each rule reports the file, video, expression and field at fault, and all of them at once."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from interrvos.data.mevis import MASK_FILE, META_FILE, write_frame
from interrvos.data.rle import encode_mask
from interrvos.data.validate import Problem, validate_dataset

H, W = 6, 10


def _rle(h: int = H, w: int = W) -> dict:
    m = np.zeros((h, w), np.uint8)
    m[1:3, 2:6] = 1
    return encode_mask(m)


@pytest.fixture
def dataset(tmp_path) -> Path:
    """A valid dataset: video v1 (3 frames; person 1 pushes cart 2), video v2 (2 frames; dog 5)."""
    root = tmp_path / "ds"
    meta = {
        "videos": {
            "v1": {
                "vid_id": "v1",
                "frames": ["00000", "00001", "00002"],
                "objects": {"1": {"category": "person", "anno_id": "a1"}, "2": {"category": "cart", "anno_id": "a2"}},
                "expressions": {
                    "0": {"exp": "person in blue", "caption_type": "single_appearance", "obj_id": ["1"], "anno_id": ["a1"]},
                    "1": {
                        "exp": "person pushing a cart",
                        "caption_type": "interaction",
                        "obj_id": ["1", "2"],
                        "anno_id": ["a1", "a2"],
                        "interaction": "unidirectional",
                        "actor_ids": ["1"],
                        "target_ids": ["2"],
                        "actor_anno_id": ["a1"],
                        "target_anno_id": ["a2"],
                    },
                },
            },
            "v2": {
                "vid_id": "v2",
                "frames": ["00000", "00001"],
                "objects": {"5": {"category": "dog", "anno_id": "b5"}},
                "expressions": {"0": {"exp": "dog running", "caption_type": "single_motion", "obj_id": ["5"], "anno_id": ["b5"]}},
            },
        }
    }
    masks = {"a1": [_rle(), None, _rle()], "a2": [_rle(), _rle(), None], "b5": [None, _rle()]}
    for vid, video in meta["videos"].items():
        for frame in video["frames"]:
            write_frame(str(root), vid, frame, np.full((H, W, 3), 128, np.uint8))
    (root / META_FILE).write_text(json.dumps(meta))
    (root / MASK_FILE).write_text(json.dumps(masks))
    return root


def edit(root: Path, name: str, change: Callable[[dict], None]) -> None:
    data = json.loads((root / name).read_text())
    change(data)
    (root / name).write_text(json.dumps(data))


def only(problems: list[Problem]) -> Problem:
    assert len(problems) == 1, [str(p) for p in problems]
    return problems[0]


def where(p: Problem) -> tuple:
    return (p.file, p.video, p.expression, p.field)


def test_a_valid_dataset_has_no_problems(dataset):
    assert validate_dataset(str(dataset)) == []
    assert validate_dataset(str(dataset), check_images=False) == []


def test_a_frame_without_its_jpeg_is_reported(dataset):
    os.remove(dataset / "JPEGImages" / "v1" / "00001.jpg")
    p = only(validate_dataset(str(dataset)))
    assert where(p) == ("JPEGImages/v1/00001.jpg", "v1", None, "frames.1")
    assert "00001" in p.message
    assert validate_dataset(str(dataset), check_images=False) == []


def test_a_missing_frame_folder_is_one_problem(dataset):
    for name in os.listdir(dataset / "JPEGImages" / "v2"):
        os.remove(dataset / "JPEGImages" / "v2" / name)
    os.rmdir(dataset / "JPEGImages" / "v2")
    p = only(validate_dataset(str(dataset)))
    assert where(p) == ("JPEGImages/v2", "v2", None, "frames")
    assert "2 frames" in p.message


def test_mask_size_different_from_the_jpeg_size_is_reported(dataset):
    # Every mask of b5 is 10x6 while v2's JPEGs are 6x10: only the JPEG header can tell.
    edit(dataset, MASK_FILE, lambda m: m.update(b5=[None, _rle(W, H)]))
    p = only(validate_dataset(str(dataset)))
    assert where(p) == (MASK_FILE, "v2", None, "b5")
    assert "[6, 10]" in p.message and "[10, 6]" in p.message and "JPEG" in p.message


def test_mask_size_different_from_most_masks_is_reported_without_images(dataset):
    edit(dataset, MASK_FILE, lambda m: m["a2"].__setitem__(1, _rle(H + 1, W)))
    p = only(validate_dataset(str(dataset), check_images=False))
    assert where(p) == (MASK_FILE, "v1", None, "a2")
    assert "1 of 2 masks" in p.message and "first at frame 1" in p.message


def test_mask_list_length_must_match_the_frames(dataset):
    edit(dataset, MASK_FILE, lambda m: m["a1"].pop())
    p = only(validate_dataset(str(dataset)))
    assert where(p) == (MASK_FILE, "v1", None, "a1")
    assert "2 masks for the 3 frames" in p.message


@pytest.mark.parametrize("field", ["anno_id", "actor_anno_id", "target_anno_id"])
def test_an_anno_id_without_masks_is_reported(dataset, field):
    def change(meta):
        e = meta["videos"]["v1"]["expressions"]["1"]
        old = e[field][0]
        e[field] = ["zz"]
        if field == "anno_id":  # keep actor/target inside anno_id so only one rule fires
            e["anno_id"] = ["zz", "a2"]
            e["actor_anno_id"] = ["zz"]
        elif old in e["anno_id"]:
            e["anno_id"] = [("zz" if a == old else a) for a in e["anno_id"]]

    edit(dataset, META_FILE, change)
    problems = validate_dataset(str(dataset))
    unknown = [p for p in problems if "have no masks" in p.message]
    assert (META_FILE, "v1", "1", field) in [where(p) for p in unknown]
    assert all("'zz'" in p.message for p in unknown)
    assert all("have no masks" in p.message for p in problems), [str(p) for p in problems]


def test_an_obj_id_not_among_the_video_objects_is_reported(dataset):
    edit(dataset, META_FILE, lambda m: m["videos"]["v2"]["expressions"]["0"].update(obj_id=["6"]))
    p = only(validate_dataset(str(dataset)))
    assert where(p) == (META_FILE, "v2", "0", "obj_id")
    assert "'6'" in p.message


def test_a_bad_caption_type_is_reported(dataset):
    edit(dataset, META_FILE, lambda m: m["videos"]["v2"]["expressions"]["0"].update(caption_type="motion"))
    p = only(validate_dataset(str(dataset)))
    assert where(p) == (META_FILE, "v2", "0", "caption_type")
    assert "'motion'" in p.message and "single_motion" in p.message


def test_a_unidirectional_interaction_needs_actor_and_target(dataset):
    def change(meta):
        e = meta["videos"]["v1"]["expressions"]["1"]
        e["target_ids"], e["target_anno_id"] = [], []

    edit(dataset, META_FILE, change)
    p = only(validate_dataset(str(dataset)))
    assert where(p) == (META_FILE, "v1", "1", "target_ids")
    assert "unidirectional" in p.message


def test_actor_ids_must_be_among_obj_id(dataset):
    edit(dataset, META_FILE, lambda m: m["videos"]["v1"]["expressions"]["1"].update(actor_ids=["5"]))
    p = only(validate_dataset(str(dataset)))
    assert where(p) == (META_FILE, "v1", "1", "actor_ids")
    assert "['5']" in p.message and "obj_id" in p.message


def test_an_interaction_caption_needs_an_interaction_kind(dataset):
    edit(dataset, META_FILE, lambda m: m["videos"]["v1"]["expressions"]["1"].update(interaction="none"))
    p = only(validate_dataset(str(dataset)))
    assert where(p) == (META_FILE, "v1", "1", "interaction")


def test_an_empty_expression_text_is_reported(dataset):
    edit(dataset, META_FILE, lambda m: m["videos"]["v2"]["expressions"]["0"].update(exp="  "))
    p = only(validate_dataset(str(dataset)))
    assert where(p) == (META_FILE, "v2", "0", "exp")
    assert "empty" in p.message


def test_a_malformed_rle_is_reported_without_decoding(dataset):
    def change(masks):
        masks["a2"][0] = {"size": [H, W], "counts": "zz"}  # pycocotools would write out of bounds
        masks["a2"][1] = {"size": [H, W], "counts": "3"}  # too few pixels

    edit(dataset, MASK_FILE, change)
    p = only(validate_dataset(str(dataset)))
    assert where(p) == (MASK_FILE, "v1", None, "a2")
    assert "frame 0" in p.message and "1 more" in p.message


def test_schema_errors_name_the_pydantic_field_path(dataset):
    def change(meta):
        meta["videos"]["v1"]["frames"] = ["00000", 1, "00002"]
        meta["videos"]["v2"]["expressions"]["0"]["colour"] = "brown"
        meta["videos"]["v2"]["expressions"]["0"]["obj_id"] = [{"id": 5}]

    edit(dataset, META_FILE, change)
    problems = [where(p) for p in validate_dataset(str(dataset))]
    assert (META_FILE, "v1", None, "frames.1") in problems
    assert (META_FILE, "v2", "0", "colour") in problems
    assert (META_FILE, "v2", "0", "obj_id.0") in problems


def test_invalid_json_is_a_problem_not_a_crash(dataset):
    (dataset / MASK_FILE).write_text("{not json")
    p = only(validate_dataset(str(dataset)))
    assert p.file == MASK_FILE and "not valid JSON" in p.message
    (dataset / META_FILE).write_text("[1, 2")
    p = only(validate_dataset(str(dataset)))
    assert p.file == META_FILE and "not valid JSON" in p.message


def test_a_folder_that_is_not_a_dataset_gives_one_problem(tmp_path):
    p = only(validate_dataset(str(tmp_path)))
    assert p.file == META_FILE and "not a dataset" in p.message


def test_every_problem_is_reported_in_one_pass(dataset):
    os.remove(dataset / "JPEGImages" / "v1" / "00002.jpg")
    edit(dataset, MASK_FILE, lambda m: m["b5"].append(None))

    def change(meta):
        meta["videos"]["v1"]["expressions"]["0"].update(exp="", caption_type="solo")
        meta["videos"]["v2"]["expressions"]["0"].update(anno_id=["nope"])

    edit(dataset, META_FILE, change)
    problems = {where(p) for p in validate_dataset(str(dataset))}
    assert problems == {
        ("JPEGImages/v1/00002.jpg", "v1", None, "frames.2"),
        (MASK_FILE, "v2", None, "b5"),
        (META_FILE, "v1", "0", "exp"),
        (META_FILE, "v1", "0", "caption_type"),
        (META_FILE, "v2", "0", "anno_id"),
    }


def test_a_problem_prints_as_one_readable_line():
    p = Problem(file=META_FILE, video="v1", expression="3", field="actor_ids", message="['7'] not among obj_id")
    assert str(p) == "meta_expressions.json: video 'v1', expression '3', field 'actor_ids': ['7'] not among obj_id"
    assert str(Problem(file=MASK_FILE, message="not valid JSON")) == "mask_dict.json: not valid JSON"


def test_plain_mevis_and_authors_release_folders_validate_clean(tmp_path):
    rle = _rle()
    meta = {
        "videos": {
            "bike-1": {
                "vid_id": 3,
                "frames": ["00000"],
                "expressions": {
                    "0": {"exp": "bike", "obj_id": [0], "anno_id": [7]},
                    "1": {"exp": "man", "obj_id": [1], "anno_id": [8], "caption_type": "single"},
                    "2": {
                        "exp": "man riding bike",
                        "obj_id": [1, 0],
                        "anno_id": [8, 7],
                        "caption_type": "unidirectional",
                        "subject/object": {"obj_id": {"subject": [1], "object": [0]}, "anno_id": {"subject": [8], "object": [7]}},
                    },
                },
            }
        }
    }
    (tmp_path / META_FILE).write_text(json.dumps(meta))
    (tmp_path / MASK_FILE).write_text(json.dumps({"7": [rle], "8": [None]}))
    write_frame(str(tmp_path), "bike-1", "00000", np.zeros((H, W, 3), np.uint8))
    assert validate_dataset(str(tmp_path)) == []


def test_refytvos_folder_without_its_mask_folder_is_reported(tmp_path):
    meta = {"videos": {"abc": {"frames": ["00000"], "expressions": {"0": {"exp": "a duck", "obj_id": "1"}}}}}
    (tmp_path / META_FILE).write_text(json.dumps(meta))
    write_frame(str(tmp_path), "abc", "00000", np.zeros((H, W, 3), np.uint8))
    (tmp_path / "Annotations").mkdir()
    p = only(validate_dataset(str(tmp_path)))
    assert where(p) == ("Annotations/abc", "abc", None, None)
    (tmp_path / "Annotations" / "abc").mkdir()
    assert validate_dataset(str(tmp_path)) == []

"""`data.answers=reading`: ReVIOsA's training rows answer each question with the segmentation tokens followed by
the words and position of the object each one segments (train/reading.py), in every mode, and the tokens still
mark the expression slot they segment (seg_expr), so the mask losses see the same states as with the paper's
answers."""

from __future__ import annotations

import re

import numpy as np
import pytest

from interrvos.model.config import load_model_config
from interrvos.train.reviosa import ReviosaTask

ROW = {"source": 0, "video": "push00", "frames": [0, 2, 5], "expressions": ["2", "0"], "seed": 7}


def _answers(ids: np.ndarray, labels: np.ndarray, tokenizer) -> list[str]:
    """The supervised spans of a row, decoded (the answers the LM is trained to give)."""
    spans, current = [], []
    for token, label in zip(ids.tolist(), labels.tolist(), strict=True):
        if label >= 0:
            current.append(token)
        elif current:
            spans.append(tokenizer.decode(current)), current.clear()
    return spans + ([tokenizer.decode(current)] if current else [])


def _row(mode: str, answers: str, dataset: str) -> tuple[dict, object]:
    cfg = load_model_config("tiny", [f"mode={mode}"])
    task = ReviosaTask(cfg, [dataset], answers=answers)
    return task.sample_builder()(ROW), task.processor()


POSITION = r"(top|middle|bottom) (left|centre|right)"


@pytest.mark.parametrize("mode, expected", [
    ("joint", [rf"It is \[SEG_ACT\] red square, {POSITION}, and \[SEG_TAR\] disc, {POSITION}\.",
               rf"It is \[SEG_ACT\] red square, {POSITION}\."]),
    ("single", [rf"It is \[SEG\] red square, {POSITION}\."] * 2),
    ("independent", [rf"It is \[SEG_ACT\] red square, {POSITION}\.", rf"It is \[SEG_TAR\] disc, {POSITION}\.",
                     rf"It is \[SEG_ACT\] red square, {POSITION}\.", r"There is no target\."]),
])  # fmt: skip
def test_reading_answers_name_the_object_each_token_segments(pushing_dataset, mode, expected):
    reading, processor = _row(mode, "reading", pushing_dataset)
    plain, _ = _row(mode, "reviosa", pushing_dataset)
    spans = _answers(reading["input_ids"], reading["labels"], processor.tokenizer)
    spans = [" ".join(s.replace("<|im_end|>", "").split()) for s in spans]
    assert len(spans) == len(expected), spans
    for span, pattern in zip(spans, expected, strict=True):
        assert re.fullmatch(pattern, span), (span, pattern)
    # The same tokens segment the same slots as with the paper's answers; frames and masks are untouched.
    seg = reading["seg_expr"][reading["seg_expr"] >= 0].tolist()
    assert seg == plain["seg_expr"][plain["seg_expr"] >= 0].tolist()
    for key in ("pixel_u8", "sam_u8", "gt_masks", "target_valid"):
        assert np.array_equal(reading[key], plain[key]), key


def test_the_reading_answers_are_a_training_setting():
    from interrvos.config import load_config
    from interrvos.errors import ConfigError
    from interrvos.train.config import TrainConfig

    assert load_config(TrainConfig, None, ["data.answers=reading"]).data.answers == "reading"
    with pytest.raises(ConfigError, match="data.answers"):
        load_config(TrainConfig, None, ["data.answers=words"])

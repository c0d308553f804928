"""Model configs, tokenizers, special tokens and conversation templates."""

from __future__ import annotations

import random

import pytest

from interrvos.data.records import Expression
from interrvos.errors import ConfigError
from interrvos.model.config import PRESETS, load_model_config
from interrvos.model.templates import ANSWERS_ONE, ANSWERS_TWO, inference_questions, training_turns
from interrvos.model.tokens import SEG, SEG_ACT, SEG_TAR, expression_anno_roles


@pytest.mark.parametrize("preset", PRESETS)
def test_presets_load_with_paper_defaults(preset):
    cfg = load_model_config(preset)
    assert cfg.mode == "joint"
    assert cfg.loss.bce_weight == 2.0 and cfg.loss.dice_weight == 0.5 and not cfg.loss.attention.enabled
    assert cfg.inference.num_frames == 5 and cfg.inference.sampling == "first"
    if preset != "tiny":
        assert (cfg.lora.r, cfg.lora.alpha, cfg.lora.dropout) == (128, 256, 0.05)
        assert cfg.sam.image_size == 1024 and "hiera_l" in cfg.sam.config


def test_overrides_are_typed_and_errors_name_the_field(tmp_path):
    cfg = load_model_config("tiny", ["lora.r=4", "mode=single", "inference.sampling=uniform"])
    assert (cfg.lora.r, cfg.mode, cfg.inference.sampling) == (4, "single", "uniform")
    with pytest.raises(ConfigError, match="mode"):
        load_model_config("tiny", ["mode=both"])
    with pytest.raises(ConfigError, match="sam.image_size"):
        load_model_config("tiny", ["sam.image_size=100"])
    with pytest.raises(ConfigError, match="not a preset"):
        load_model_config(str(tmp_path / "missing.yaml"))


def test_bpe_tokenizer_has_chat_image_and_segmentation_tokens(tiny_model):
    tok, ids = tiny_model.tokenizer, tiny_model.ids
    assert set(ids.seg.values()) == {0, 1} and len(tok) == max(ids.seg) + 1
    text = "<|im_start|>user\n<img><IMG_CONTEXT></img>\nPlease segment it. It is [SEG_ACT] and [SEG_TAR].<|im_end|>"
    encoded = tok(text, add_special_tokens=False)["input_ids"]
    for special in (ids.im_start, ids.img_start, ids.img_context, ids.img_end, ids.im_end, *ids.seg):
        assert encoded.count(special) == 1
    assert tok.decode(encoded) == text


def test_qwen_tokenizer_ids_match_internvl25(tmp_path, monkeypatch):
    from interrvos.model.tokenizer import build_tokenizer, resolve_token_ids

    tok = build_tokenizer(load_model_config("1b"))
    ids = resolve_token_ids(tok, "joint")
    assert (ids.img_start, ids.img_end, ids.img_context) == (151665, 151666, 151667)
    assert (ids.im_start, ids.im_end, ids.pad) == (151644, 151645, 151643)
    assert sorted(ids.seg) == [151674, 151675] and len(tok) == 151676
    assert tok("Please segment the dog.", add_special_tokens=False)["input_ids"] == [5501, 10238, 279, 5562, 13]


def test_single_mode_has_one_seg_token(fresh_tiny):
    from interrvos.model.tokenizer import build_tokenizer, resolve_token_ids

    cfg = load_model_config("tiny", ["mode=single"])
    ids = resolve_token_ids(build_tokenizer(cfg), "single")
    assert len(ids.seg) == 1


def test_joint_answers_depend_on_interaction_kind():
    uni = training_turns("dog pushing a toy", True, "joint")
    solo = training_turns("the toy", False, "joint")
    assert len(uni) == len(solo) == 1
    assert SEG_ACT in uni[0].answer and SEG_TAR in uni[0].answer
    assert SEG_ACT in solo[0].answer and SEG_TAR not in solo[0].answer
    assert "actor" in uni[0].question and "dog pushing a toy" in uni[0].question
    rng = random.Random(0)
    wordings = {training_turns("x", True, "joint", rng)[0].answer for _ in range(60)}
    assert len(wordings) == len(ANSWERS_TWO) > 1


def test_independent_mode_asks_for_each_role_separately():
    uni = training_turns("dog pushing a toy", True, "independent")
    solo = training_turns("the toy", False, "independent")
    assert [t.answer.count(SEG_ACT) for t in uni] == [1, 0] and [t.answer.count(SEG_TAR) for t in uni] == [0, 1]
    assert SEG_TAR not in solo[1].answer and SEG_ACT not in solo[1].answer
    assert len(inference_questions("the toy", "independent")) == 2


def test_single_mode_uses_one_token_and_no_role_sentence():
    (turn,) = training_turns("dog pushing a toy", True, "single")
    assert turn.answer == ANSWERS_ONE[0].format(a=SEG) and "actor" not in turn.question


def test_roles_of_expressions():
    uni = Expression(exp="a pushes b", caption_type="interaction", obj_id=["1", "2"], anno_id=["11", "12"],
                     interaction="unidirectional", actor_ids=["1"], target_ids=["2"], actor_anno_id=["11"],
                     target_anno_id=["12"])  # fmt: skip
    bi = Expression(exp="a and b hug", caption_type="interaction", obj_id=["1", "2"], anno_id=["11", "12"],
                    interaction="bidirectional")  # fmt: skip
    solo = Expression(exp="b", caption_type="single_all", obj_id=["2"], anno_id=["12"])
    assert expression_anno_roles(uni) == (["11"], ["12"])
    assert expression_anno_roles(bi) == (["11", "12"], None)
    assert expression_anno_roles(solo) == (["12"], None)

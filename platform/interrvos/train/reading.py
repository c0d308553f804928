"""The reading answers: ReVIOsA's questions answered with each segmentation token followed by the colour word,
shape word and position of the object it segments,

    joint, unidirectional:  It is [SEG_ACT] red star, top left, and [SEG_TAR] blue circle, bottom right.
    joint / single, else:   It is [SEG_ACT] red star, top left.            ([SEG] in single mode)
    independent:            It is [SEG_ACT] red star, top left. / It is [SEG_TAR] blue circle, bottom right.

`interrvos pretrain-text` teaches the tiny MLLM to read the expression with them (probe/text_pretrain.py);
`interrvos train --set data.answers=reading` keeps them as ReVIOsA's answers, so the LM loss on the words goes on
while the masks are learnt from the same token states (with the paper's "Sure, [SEG_ACT]." the only word after
the token is ".", and mask training erodes what the pretraining taught: docs/training.md).
"""

from __future__ import annotations

import random
from collections.abc import Callable

import numpy as np

from interrvos.probe.features import colour_word, shape_word


def where(masks: list[np.ndarray]) -> str:
    """Coarse position of an object over the sample's frames: '<top|middle|bottom> <left|centre|right>'
    of its mean mask centroid, or 'not visible'."""
    ys, xs, h, w = [], [], 1, 1
    for m in masks:
        h, w = m.shape
        yy, xx = np.nonzero(m)
        ys.append(yy), xs.append(xx)
    y, x = np.concatenate(ys), np.concatenate(xs)
    if y.size == 0:
        return "not visible"
    row = ("top", "middle", "bottom")[min(2, int(3 * y.mean() / h))]
    col = ("left", "centre", "right")[min(2, int(3 * x.mean() / w))]
    return f"{row} {col}"


def object_words(text: str | None, objects: list[dict], shape_first: bool = False) -> str:
    """'red star' ('star red' when shape_first): the expression's colour and shape words when `text` is given
    (the actor, which the expression names first), else the object's own from the dataset's object records."""
    first = objects[0] if objects else {}
    colour = (colour_word(text) if text else None) or first.get("colour")
    shape = (shape_word(text) if text else None) or first.get("category") or "object"
    return " ".join(w for w in ((shape, colour) if shape_first else (colour, shape)) if w)


def phrase(token: str, words: str, masks: list[np.ndarray]) -> str:
    """'[SEG_ACT] red star, top left': a segmentation token, its object's words and where the object is."""
    return f"{token} {words}, {where(masks)}"


ORDERS = ("colour_first", "random")


def reading_turns(video, expression_ids, masks_of: Callable[[list[str]], list[np.ndarray]], processor,
                  rng: random.Random | None = None, order: str = "colour_first") -> list:  # fmt: skip
    """(Turn, slot) per question about the expressions of one sample: ReVIOsA's questions for the processor's
    mode (first wordings unless the processor draws them at random and an rng is given), each answer that
    segments something replaced by the reading answer of that role (module docstring), so every segmentation
    token is trained to be emitted and its state to carry the words of the object it segments.
    video: the dataset's Video record; masks_of(anno ids): the object's masks on the sample's frames.
    order "random": colour or shape first at random in each answer (the token's state, which predicts the
    first word, must then carry both)."""
    from interrvos.model.templates import Turn, training_turns
    from interrvos.model.tokens import SEG, SEG_ACT, SEG_TAR, expression_anno_roles

    turns = []
    for slot, exp_id in enumerate(expression_ids):
        e = video.expressions[str(exp_id)]
        actor, target = expression_anno_roles(e)
        wording = rng if processor.random_templates else None
        shape_first = order == "random" and rng is not None and rng.random() < 0.5

        def said(token: str, text: str | None, annos: list[str], obj_ids) -> str:
            objects = [video.objects.get(o, {}) for o in (obj_ids or [])]
            return phrase(token, object_words(text, objects, shape_first), masks_of(annos))

        actor_said = said(SEG if processor.mode == "single" else SEG_ACT, e.exp, actor, e.actor_ids or e.obj_id)
        target_said = said(SEG_TAR, None, target, e.target_ids) if target is not None else None
        for turn in training_turns(e.exp, target is not None, processor.mode, wording):
            if SEG_TAR in turn.answer and SEG_ACT in turn.answer:
                turn = Turn(turn.question, f"It is {actor_said}, and {target_said}.")
            elif SEG_TAR in turn.answer:
                turn = Turn(turn.question, f"It is {target_said}.")
            elif SEG_ACT in turn.answer or SEG in turn.answer:
                turn = Turn(turn.question, f"It is {actor_said}.")
            turns.append((turn, slot))
    return turns

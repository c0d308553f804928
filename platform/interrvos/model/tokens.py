"""Special tokens: the segmentation tokens of each ablation mode, the InternVL image tokens and the
Qwen chat markers, and which ground truth each segmentation token stands for.

[SEG_ACT] segments the actor (the expression's subject; every referred object when the expression
names no roles), [SEG_TAR] the target of a unidirectional interaction. The `single` ablation has one
[SEG] token that segments the actor. (The reference code names them [SEG] / [SEG_OBJ].)
"""

from __future__ import annotations

from dataclasses import dataclass

from interrvos.data.records import Expression

SEG_ACT = "[SEG_ACT]"
SEG_TAR = "[SEG_TAR]"
SEG = "[SEG]"

IMG_START = "<img>"
IMG_END = "</img>"
IMG_CONTEXT = "<IMG_CONTEXT>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
END_OF_TEXT = "<|endoftext|>"

ACTOR, TARGET = 0, 1  # role indices: gt_masks[:, :, ACTOR] / gt_masks[:, :, TARGET]
ROLES = ("actor", "target")


def seg_tokens(mode: str) -> tuple[str, ...]:
    """The tokens added to the vocabulary for an ablation mode (Table 6)."""
    return (SEG,) if mode == "single" else (SEG_ACT, SEG_TAR)


def token_role(token: str) -> int:
    return TARGET if token == SEG_TAR else ACTOR


@dataclass(frozen=True)
class TokenIds:
    """Token ids the model needs, resolved once from its tokenizer."""

    seg: dict[int, int]  # segmentation token id -> role
    img_start: int
    img_end: int
    img_context: int
    im_start: int
    im_end: int
    pad: int
    stop: tuple[int, ...]  # generation stops at any of these

    @property
    def seg_ids(self) -> list[int]:
        return sorted(self.seg)

    def role(self, token_id: int) -> int | None:
        return self.seg.get(int(token_id))


def expression_anno_roles(expr: Expression) -> tuple[list[str], list[str] | None]:
    """(actor anno ids, target anno ids or None): the ground truth of [SEG_ACT] and [SEG_TAR].
    Expressions without roles (single objects, multi-object, bidirectional) have only an actor: every
    object they refer to. Only unidirectional interactions have a target."""
    actor = list(expr.actor_anno_id) or list(expr.anno_id)
    target = list(expr.target_anno_id) if expr.interaction == "unidirectional" and expr.target_anno_id else None
    return actor, target


def is_unidirectional(expr: Expression) -> bool:
    return expression_anno_roles(expr)[1] is not None

"""Question and answer templates (after the paper's Figures A5/A6, in our own words) and the
conversation turns of each ablation mode.

joint (default): one question per expression asking for separate actor and target masks when both
  exist; the answer has [SEG_ACT], plus [SEG_TAR] for unidirectional interactions.
independent: the actor and the target are asked for in two separate questions, each answered with
  one token ([SEG_ACT] / [SEG_TAR], or "no target"); the two are never generated together.
single: one [SEG] token, the question names no roles.
Training draws wordings at random; inference always uses the first wording of each list.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from interrvos.model.tokens import SEG, SEG_ACT, SEG_TAR

QUESTIONS = (
    "Please segment {exp}.",
    "Can you segment {exp}?",
    "Could you segment {exp} in this video?",
    "Please identify and segment {exp}.",
    "What is {exp}? Please answer with segmentation masks.",
    "Where is {exp} in this video? Please output segmentation masks.",
    "Can you highlight {exp} with segmentation masks?",
)
# Appended to every joint-mode question (the model decides whether a target exists).
ROLE_SENTENCES = (
    "If there are both an actor and a target, give a separate mask for each of them.",
    "If the expression has an actor and a target, return one mask for the actor and one for the target.",
    "When both an actor and a target are present, segment the two of them separately.",
    "If someone or something acts on a target, output distinct masks for the actor and the target.",
)
ACTOR_QUESTIONS = (
    "Please segment the actor of: {exp}.",
    "Who or what is acting in: {exp}? Please segment it.",
    "Can you segment the subject of: {exp}?",
)
TARGET_QUESTIONS = (
    "Please segment the target of: {exp}.",
    "Who or what is acted upon in: {exp}? Please segment it.",
    "Can you segment the object of the action in: {exp}?",
)
ANSWERS_ONE = ("It is {a}.", "Sure, {a}.", "Sure, it is {a}.", "Sure, the segmentation result is {a}.", "{a}.")
ANSWERS_TWO = (
    "It is {a} and {t}.",
    "Sure, {a} and {t}.",
    "Sure, it is {a} and {t}.",
    "Sure, the segmentation result is {a} and {t}.",
    "{a} and {t}.",
)
NO_TARGET_ANSWERS = ("There is no target.", "Nothing is acted upon.")


@dataclass(frozen=True)
class Turn:
    question: str
    answer: str | None  # None: to be generated


def clean_expression(text: str) -> str:
    return " ".join(text.split()).rstrip(" .")


def _pick(options: tuple[str, ...], rng: random.Random | None) -> str:
    return options[0] if rng is None else rng.choice(options)


def joint_question(exp: str, rng: random.Random | None = None) -> str:
    return f"{_pick(QUESTIONS, rng).format(exp=clean_expression(exp))} {_pick(ROLE_SENTENCES, rng)}"


def training_turns(exp: str, unidirectional: bool, mode: str, rng: random.Random | None = None) -> list[Turn]:
    """The question/answer turns that teach one expression (rng=None: the first wordings)."""
    if mode == "single":
        return [Turn(_pick(QUESTIONS, rng).format(exp=clean_expression(exp)), _pick(ANSWERS_ONE, rng).format(a=SEG))]
    if mode == "joint":
        answer = (
            _pick(ANSWERS_TWO, rng).format(a=SEG_ACT, t=SEG_TAR)
            if unidirectional
            else _pick(ANSWERS_ONE, rng).format(a=SEG_ACT)
        )
        return [Turn(joint_question(exp, rng), answer)]
    if mode == "independent":
        exp = clean_expression(exp)
        target_answer = _pick(ANSWERS_ONE, rng).format(a=SEG_TAR) if unidirectional else _pick(NO_TARGET_ANSWERS, rng)
        return [
            Turn(_pick(ACTOR_QUESTIONS, rng).format(exp=exp), _pick(ANSWERS_ONE, rng).format(a=SEG_ACT)),
            Turn(_pick(TARGET_QUESTIONS, rng).format(exp=exp), target_answer),
        ]
    raise ValueError(f"unknown token mode {mode!r}; expected joint, independent or single")


def inference_questions(exp: str, mode: str) -> list[str]:
    """The questions asked at inference, each in its own conversation (first wordings)."""
    return [t.question for t in training_turns(exp, unidirectional=False, mode=mode)]

"""Typed answers of the four stages, how to pull them out of a model's text, and the checks every
answer must pass (the paper's self-checks, enforced in code).

`parse_answer(kind, text, valid_ids)` returns the typed answer or raises AnswerProblem with a
`reason` (a short category used in the run summary) and a message that is fed back to the model
on the retry. The JSON schemas sent as `response_format` are written out by hand below: OpenAI's
strict mode wants every property required and no extra keys.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

# Reasons an answer is rejected; the run summary counts quarantined items by these.
REASONS = ("empty", "truncated", "refusal", "too_few_sentences", "invalid_json", "schema", "self_check")
# The reference scripts reject stage-1 answers containing these (case-insensitive substrings).
REFUSAL_MARKERS = ("i'm", "i am unable", "cannot", "can't", "unable", "sorry")
LABEL = re.compile(r"\[(\w+)\]")


class AnswerProblem(Exception):
    """Why an answer cannot be used; `reason` is one of REASONS, the message goes back to the model."""

    def __init__(self, reason: str, message: str):
        assert reason in REASONS, reason
        self.reason, self.message = reason, message
        super().__init__(f"{reason}: {message}")


class Answer(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class DescribeAnswer(Answer):
    """Stage 1: one sentence on appearance, one on motion."""

    appearance: str = Field(min_length=3)
    motion: str = Field(min_length=3)


class ExpressionsAnswer(Answer):
    """Stage 2, one object: three referring expressions."""

    all: str = Field(min_length=2)
    motion: str = Field(min_length=2)
    appearance: str = Field(min_length=2)


class MergeAnswer(Answer):
    """Stage 2, one clip: may several objects share one expression?"""

    merged: Literal["YES", "NO"]
    merged_objects: list[str] | None = None
    merged_caption: str | None = None

    @field_validator("merged", mode="before")
    @classmethod
    def _upper(cls, v):
        return v.strip().upper() if isinstance(v, str) else v

    @field_validator("merged_objects", mode="before")
    @classmethod
    def _ids(cls, v):
        return None if v is None else [normalise_id(x) for x in v] if isinstance(v, list) else v


class Interaction(Answer):
    object_pair: list[str]
    type: Literal["bidirectional", "unidirectional"]
    descriptions: list[str]
    actors: list[str] = Field(default_factory=list)
    targets: list[str] = Field(default_factory=list)

    @field_validator("object_pair", "actors", "targets", mode="before")
    @classmethod
    def _ids(cls, v):
        return [normalise_id(x) for x in v] if isinstance(v, list) else v

    @field_validator("type", mode="before")
    @classmethod
    def _lower(cls, v):
        return v.strip().lower() if isinstance(v, str) else v


class InteractionsAnswer(Answer):
    """Stage 3, one clip: the interactions between its labelled objects."""

    interaction: Literal["YES", "NO"]
    interactions: list[Interaction] = Field(default_factory=list)

    @field_validator("interaction", mode="before")
    @classmethod
    def _upper(cls, v):
        return v.strip().upper() if isinstance(v, str) else v


class InteractionExpressionAnswer(Answer):
    """Stage 4, one interaction seen from one subject."""

    class_level: str = Field(min_length=2)
    appearance_level: str = Field(min_length=2)


def normalise_id(value: Any) -> Any:
    """'[3]', 'Object [3]', '3' and 3 all name object '3'."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        m = LABEL.search(value)
        return m.group(1) if m else value.strip()
    return value


# ---- JSON schemas for structured output -----------------------------------------------------------

def _obj(props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


_STR = {"type": "string"}
_STR_LIST = {"type": "array", "items": _STR}
SCHEMAS: dict[str, dict[str, Any]] = {
    "describe": _obj({"appearance": _STR, "motion": _STR}),
    "expressions": _obj({"all": _STR, "motion": _STR, "appearance": _STR}),
    "merge": _obj({"merged": {"type": "string", "enum": ["YES", "NO"]},
                   "merged_objects": {"type": ["array", "null"], "items": _STR},
                   "merged_caption": {"type": ["string", "null"]}}),
    "interactions": _obj({"interaction": {"type": "string", "enum": ["YES", "NO"]},
                          "interactions": {"type": "array", "items": _obj({
                              "object_pair": _STR_LIST,
                              "type": {"type": "string", "enum": ["bidirectional", "unidirectional"]},
                              "actors": _STR_LIST, "targets": _STR_LIST, "descriptions": _STR_LIST})}}),
    "interaction_expression": _obj({"class_level": _STR, "appearance_level": _STR}),
}
MODELS: dict[str, type[Answer]] = {
    "describe": DescribeAnswer, "expressions": ExpressionsAnswer, "merge": MergeAnswer,
    "interactions": InteractionsAnswer, "interaction_expression": InteractionExpressionAnswer,
}


# ---- Pulling JSON out of text ---------------------------------------------------------------------

def extract_json(text: str) -> Any:
    """The first JSON object in `text` (code fences and chatter around it are ignored)."""
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.S)
    candidates = [fenced.group(1)] if fenced else []
    start = text.find("{")
    if start >= 0:
        candidates.append(_balanced(text, start))
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except (json.JSONDecodeError, TypeError):
            continue
    raise AnswerProblem("invalid_json", "the answer is not a JSON object" if start < 0 else
                        "the JSON object in the answer does not parse (check quotes, commas and brackets)")


def _balanced(text: str, start: int) -> str:
    depth, in_str, escape = 0, False, False
    for i in range(start, len(text)):
        ch = text[i]
        if in_str:
            escape = ch == "\\" and not escape
            if ch == '"' and not escape:
                in_str = False
            continue
        if ch == '"':
            in_str = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start:i + 1]
    return text[start:]


def sentences(text: str) -> list[str]:
    parts = re.split(r"(?<=[.!?])\s+(?=[A-Z\[])", text.strip())
    return [p.strip() for p in parts if len(p.strip().strip(".!?")) > 1]


def refusal_marker(text: str) -> str | None:
    low = text.lower().replace("\u2019", "'")
    return next((m for m in REFUSAL_MARKERS if re.search(rf"(?<![a-z]){re.escape(m)}(?![a-z])", low)), None)


def sentence_subjects(sentence: str) -> list[str]:
    """Labels forming the grammatical subject: those of the leading noun phrase ('Object [1] and
    object [2] are ...' -> ['1', '2']); when the sentence does not start with a label, the first label."""
    tokens = re.findall(r"\[\w+\]|[A-Za-z']+|,", sentence)
    subjects = []
    for tok in tokens:
        if LABEL.fullmatch(tok):
            subjects.append(tok[1:-1])
        elif tok.lower() not in ("object", "objects", "and", ",", "the", "both", "labelled", "labeled"):
            break
    if not subjects:
        first = LABEL.search(sentence)
        subjects = [first.group(1)] if first else []
    return subjects


# ---- Parsing and checking -------------------------------------------------------------------------

def _model(kind: str, data: Any) -> Answer:
    if not isinstance(data, dict):
        raise AnswerProblem("schema", f"expected a JSON object, got {type(data).__name__}")
    try:
        return MODELS[kind].model_validate(data)
    except ValidationError as err:
        fields = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'answer'}: {e['msg']}" for e in err.errors()[:5])
        raise AnswerProblem("schema", f"the JSON does not match the required keys and types ({fields})") from None


def _no_labels(kind: str, fields: Iterable[tuple[str, str]]) -> None:
    for name, text in fields:
        if LABEL.search(text):
            raise AnswerProblem("self_check", f"'{name}' still contains an object label ({text!r}); "
                                              "replace labels with natural phrases")


def parse_describe(text: str) -> DescribeAnswer:
    """Stage 1. JSON {appearance, motion}, or (backends without structured output) two plain sentences."""
    marker = refusal_marker(text)
    if marker:
        raise AnswerProblem("refusal", f"the answer reads as a refusal (it contains {marker!r}); describe the "
                                       "highlighted object as it appears")
    stripped = text.strip()
    if stripped.startswith("{") or "```" in stripped:
        answer = _model("describe", extract_json(stripped))
        found = sentences(answer.appearance) + sentences(answer.motion)
    else:
        found = sentences(stripped)
        if len(found) >= 2:
            answer = DescribeAnswer(appearance=found[0], motion=" ".join(found[1:]))
    if len(found) < 2:
        raise AnswerProblem("too_few_sentences", "give two sentences: one on the appearance, one on the motion")
    return answer


def parse_expressions(text: str) -> ExpressionsAnswer:
    answer = _model("expressions", extract_json(text))
    _no_labels("expressions", [("all", answer.all), ("motion", answer.motion), ("appearance", answer.appearance)])
    for name in ("all", "motion", "appearance"):
        if re.search(r"\b(they|their)\b", getattr(answer, name), re.I):
            raise AnswerProblem("self_check", f"'{name}' uses 'they'/'their'; refer to one object in the singular")
    return answer


def parse_merge(text: str, valid_ids: list[str]) -> MergeAnswer:
    answer = _model("merge", extract_json(text))
    if answer.merged == "NO":
        return MergeAnswer(merged="NO")
    ids = answer.merged_objects or []
    bad = [i for i in ids if i not in valid_ids]
    if bad:
        raise AnswerProblem("self_check", f"merged_objects has ids that are not objects of this video: {bad}; "
                                          f"valid ids: {valid_ids}")
    if len(set(ids)) < 2:
        raise AnswerProblem("self_check", "a merge needs at least two distinct objects in merged_objects")
    if not (answer.merged_caption or "").strip():
        raise AnswerProblem("self_check", "merged is YES but merged_caption is empty")
    return MergeAnswer(merged="YES", merged_objects=sorted(set(ids), key=valid_ids.index),
                       merged_caption=answer.merged_caption)


def check_interaction(inter: Interaction, valid_ids: list[str], where: str) -> None:
    """The paper's self-check (Figure A11), enforced: valid labels only, every label of a sentence in
    object_pair, every object of object_pair the subject of at least one sentence; plus the roles."""
    pair = inter.object_pair
    bad = sorted({i for i in pair + inter.actors + inter.targets if i not in valid_ids})
    if bad:
        raise AnswerProblem("self_check", f"{where} uses labels that are not valid: {['[%s]' % b for b in bad]}; "
                                          f"valid labels: {['[%s]' % v for v in valid_ids]}")
    if len(set(pair)) < 2 or len(set(pair)) != len(pair):
        raise AnswerProblem("self_check", f"{where}: object_pair needs two or more distinct labels, got {pair}")
    if not inter.descriptions:
        raise AnswerProblem("self_check", f"{where}: descriptions is empty")
    subjects: set[str] = set()
    for sentence in inter.descriptions:
        mentioned = set(LABEL.findall(sentence))
        outside = sorted(mentioned - set(pair))
        if outside:
            raise AnswerProblem("self_check", f"{where}: the sentence {sentence!r} mentions {outside} which are not "
                                              f"in object_pair {pair}")
        subjects.update(sentence_subjects(sentence))
    missing = [p for p in pair if p not in subjects]
    if missing:
        raise AnswerProblem("self_check", f"{where}: objects {['[%s]' % m for m in missing]} of object_pair are not "
                                          "the grammatical subject of any sentence; write one sentence per object "
                                          "with that object as the subject")
    if inter.type == "unidirectional":
        if not inter.actors or not inter.targets:
            raise AnswerProblem("self_check", f"{where}: a unidirectional interaction needs actors and targets")
        if set(inter.actors) & set(inter.targets) or set(inter.actors) | set(inter.targets) != set(pair):
            raise AnswerProblem("self_check", f"{where}: actors {inter.actors} and targets {inter.targets} must "
                                              f"split object_pair {pair} with no overlap")
        if len(inter.descriptions) < len(pair):
            raise AnswerProblem("self_check", f"{where}: a unidirectional interaction needs one sentence per object "
                                              f"of object_pair ({len(pair)}), got {len(inter.descriptions)}")


def parse_interactions(text: str, valid_ids: list[str]) -> InteractionsAnswer:
    answer = _model("interactions", extract_json(text))
    if answer.interaction == "NO":
        if answer.interactions:
            raise AnswerProblem("self_check", "interaction is NO but interactions are listed; answer YES or list none")
        return answer
    if not answer.interactions:
        raise AnswerProblem("self_check", "interaction is YES but no interaction is listed")
    for i, inter in enumerate(answer.interactions):
        if inter.type == "bidirectional":
            inter.actors, inter.targets = [], []
        check_interaction(inter, valid_ids, f"interaction {i}")
    return answer


def parse_interaction_expression(text: str) -> InteractionExpressionAnswer:
    answer = _model("interaction_expression", extract_json(text))
    _no_labels("interaction_expression", [("class_level", answer.class_level),
                                          ("appearance_level", answer.appearance_level)])
    return answer


def parse_answer(kind: str, text: str, valid_ids: list[str] | None = None,
                 truncated: bool = False) -> Answer:
    """Dispatch on the answer kind; empty and truncated answers are rejected before parsing."""
    if not text or not text.strip():
        raise AnswerProblem("empty", "the answer is empty")
    if truncated:
        raise AnswerProblem("truncated", "the answer was cut off at the token limit; answer more briefly")
    if kind == "describe":
        return parse_describe(text)
    if "{" not in text and refusal_marker(text):
        raise AnswerProblem("refusal", "the answer is a refusal, not the JSON asked for; answer the task as asked")
    if kind == "expressions":
        return parse_expressions(text)
    if kind == "merge":
        return parse_merge(text, valid_ids or [])
    if kind == "interactions":
        return parse_interactions(text, valid_ids or [])
    if kind == "interaction_expression":
        return parse_interaction_expression(text)
    raise ValueError(f"unknown answer kind {kind!r}")

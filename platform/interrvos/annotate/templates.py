"""The `local` backend's phrasing: measured facts into stage-1 sentences and stage-3 answers, and
(templates mode) stage-1 sentences into stage-2 expressions and stage-3 sentences into stage-4
expressions. Every output has the JSON shape a real model is asked for and is validated alike.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from interrvos.annotate.schemas import LABEL

IRREGULAR_PLURALS = {"person": "people", "child": "children", "fish": "fish", "mouse": "mice", "sheep": "sheep",
                     "man": "men", "woman": "women", "foot": "feet", "tooth": "teeth", "deer": "deer"}
DIRECTION_PHRASES = {"right": "to the right", "left": "to the left", "up": "upward", "down": "downward",
                     "up-right": "up and to the right", "up-left": "up and to the left",
                     "down-right": "down and to the right", "down-left": "down and to the left"}


def plural(noun: str) -> str:
    words = noun.split()
    last = words[-1] if words else noun
    if last in IRREGULAR_PLURALS:
        last = IRREGULAR_PLURALS[last]
    elif re.search(r"(s|x|z|ch|sh)$", last):
        last += "es"
    elif re.search(r"[^aeiou]y$", last):
        last = last[:-1] + "ies"
    else:
        last += "s"
    return " ".join(words[:-1] + [last])


def where(position: str) -> str:
    return f"at the {position} of the frame" if position in ("top", "bottom") else f"in the {position} of the frame"


# ---- Stage 1 from facts ---------------------------------------------------------------------------

def motion_sentence(motion: Mapping) -> str:
    pattern, speed, legs = motion.get("pattern"), motion.get("speed", ""), motion.get("legs", [])
    if pattern == "still":
        return "It stays still throughout the video."
    if pattern == "sways":
        return "It shifts slightly in place without going anywhere."
    if pattern == "circles":
        body = f"circles around {speed}"
    elif pattern == "wanders":
        body = f"wanders around {speed}, changing direction several times"
    else:
        path = ", then ".join(DIRECTION_PHRASES.get(leg, leg) for leg in legs)
        body = f"moves {speed} {path}"
    if motion.get("starts_still"):
        body = f"stays still at first, then {body}"
    if motion.get("stops_at_end"):
        body += ", and then stops"
    return f"It {body}."


def describe_from_facts(facts: Mapping) -> dict[str, str]:
    """Stage 1's two sentences from an object's measured facts."""
    looks = " ".join(w for w in (facts.get("size"), facts.get("colour"), facts["category"]) if w)
    article = "An" if looks[:1].lower() in "aeiou" else "A"
    return {"appearance": f"{article} {looks} {where(facts['position'])}.", "motion": motion_sentence(facts["motion"])}


def interactions_answer(found: Sequence[Mapping]) -> dict:
    """Stage 3's answer from the measured interactions (their stage-3 shaped dicts)."""
    keep = ("object_pair", "type", "actors", "targets", "descriptions")
    return {"interaction": "YES" if found else "NO", "interactions": [{k: i[k] for k in keep} for i in found]}


# ---- Stage 2 from stage-1 sentences -------------------------------------------------------------

_SUBJECT = re.compile(r"^(it|this (?:\w+ )?\w+|the (?:highlighted |same )?(?:object|\w+))\s+", re.I)


def _phrase(sentence: str) -> str:
    """A sentence as a referring phrase: no final period, no leading article, lower-case start."""
    s = sentence.strip().rstrip(".!").strip()
    s = re.sub(r"^(a|an|the)\s+", "", s, flags=re.I)
    return s[:1].lower() + s[1:] if s else s


def _verb_phrase(motion: str) -> str:
    """'It moves to the left, then stops.' -> 'moves to the left, then stops'."""
    s = motion.strip().rstrip(".!").strip()
    return _SUBJECT.sub("", s, count=1) if _SUBJECT.match(s) else s[:1].lower() + s[1:]


def expressions_from_description(appearance: str, motion: str) -> dict[str, str]:
    looks, action = _phrase(appearance), _verb_phrase(motion)
    return {"all": f"{looks} that {action}", "motion": f"object that {action}", "appearance": looks}


def merge_from_facts(facts: Mapping[str, Mapping]) -> dict:
    """Objects of one class moving alike (same path, moving) share one expression; the largest such group."""
    groups: dict[tuple, list[str]] = {}
    for obj_id, f in facts.items():
        motion = f.get("motion", {})
        if motion.get("pattern") in ("travels", "circles") and motion.get("legs"):
            groups.setdefault((f["category"], tuple(motion["legs"][:1]), motion.get("pattern")), []).append(obj_id)
    best = max((g for g in groups.values() if len(g) >= 2), key=len, default=None)
    if not best:
        return {"merged": "NO", "merged_objects": None, "merged_caption": None}
    first = facts[best[0]]
    colours = {facts[o].get("colour") for o in best}
    noun = plural(first["category"])
    if len(colours) == 1 and first.get("colour"):
        noun = f"{first['colour']} {noun}"
    leg = first["motion"]["legs"][0]
    how = "circling around" if first["motion"]["pattern"] == "circles" else f"moving {DIRECTION_PHRASES.get(leg, leg)}"
    return {"merged": "YES", "merged_objects": best, "merged_caption": f"{noun} {how} together"}


# ---- Stage 4 from a stage-3 sentence ------------------------------------------------------------

def _name_objects(sentence: str, names: Mapping[str, str]) -> str:
    """Labels -> names: the subject bare, later mentions with 'the'; 'is'/'are' after the subject dropped."""
    s = sentence.strip().rstrip(".!").strip()
    s = re.sub(r"\b[Oo]bjects?\s+(?=\[)", "", s)
    first = LABEL.search(s)
    subject_end = 0
    if first:
        m = re.match(r"^(?:\[\w+\](?:\s*,\s*|\s+and\s+)?)+", s[first.start():])
        subject_end = first.start() + (m.end() if m else first.end())
    head, tail = s[:subject_end], s[subject_end:]
    head = LABEL.sub(lambda m: names.get(m.group(1), "object"), head)
    tail = re.sub(r"^\s*(is|are)\s+", " ", tail)
    tail = LABEL.sub(lambda m: "the " + names.get(m.group(1), "object"), tail)
    phrase = (head + tail).strip()
    return phrase[:1].lower() + phrase[1:]


def interaction_expressions(description: str, classes: Mapping[str, str], looks: Mapping[str, str]) -> dict[str, str]:
    """class_level and appearance_level referring phrases from one stage-3 sentence."""
    subject_ids = LABEL.findall(description.split(" is ")[0].split(" are ")[0])
    if len(subject_ids) > 1 and len({classes.get(o) for o in subject_ids}) == 1:
        # Several of one class as the subject: 'squares moving together'.
        noun = plural(classes[subject_ids[0]])
        rest = re.sub(r"^.*?\b(is|are)\s+", "", description.strip().rstrip("."), count=1)
        rest = LABEL.sub(lambda m: "the " + classes.get(m.group(1), "object"), rest)
        return {"class_level": f"{noun} {rest}", "appearance_level": _name_objects(description, looks)}
    return {"class_level": _name_objects(description, classes), "appearance_level": _name_objects(description, looks)}


def short_looks(facts: Mapping | None, appearance_expression: str | None, category: str) -> str:
    """A few words that tell an object apart: its colour and class, else the start of its appearance phrase."""
    if facts and facts.get("colour"):
        return f"{facts['colour']} {category}"
    if appearance_expression:
        words = appearance_expression.split()
        cut = next((i for i, w in enumerate(words) if w in ("in", "at", "with", "that", "on")), len(words))
        return " ".join(words[:max(1, min(cut, 5))])
    return category

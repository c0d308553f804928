"""Every prompt text of the four annotation stages, in one place, under one version.

The wording is the project's own and follows the paper's Figures A7-A13: the same tasks, rules
and output keys. Every answer is asked for as JSON (structured output where the backend
supports it). PROMPT_VERSION is part of every cache key and every output record: change it
whenever a text below changes, so that old answers are never reused for new prompts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

PROMPT_VERSION = "interrvos-prompts-v1"

# ---- Stage 1 (vision, per object; Figure A7) ---------------------------------------------------

STAGE1_SYSTEM = """You describe one highlighted object in a video, from a few frames sampled in order.

Rules:
1. Describe only the highlighted object: first what it looks like (colour, shape, texture, size, category), then how it moves or changes position across the frames (direction, speed, stopping, turning).
2. Do not mention other objects, the background or the scene as a whole.
3. Say only what the frames show. Do not guess names, intentions, emotions or anything not visible.
4. Never mention the highlight itself: not the coloured fill, the outline, the contour or the [0] label. They only tell you which object to describe.
5. If the object stays still or barely moves, say so. Do not invent movement from nearby objects.
6. The motion sentence must be about the same object as the appearance sentence.

Answer with JSON only: {"appearance": "<one sentence on its appearance>", "motion": "<one sentence on its motion>"}"""

STAGE1_USER = """The highlighted object is of class "{category}". Other objects of the same class may appear: describe only the highlighted one (filled and labelled [0] on its first clear frame, outlined on the others).
The {num_frames} frames below are sampled uniformly from the video, in order."""

# ---- Stage 2 (text): single-object expressions (Figure A8) ----------------------------------------

STAGE2_SINGLE_SYSTEM = """You turn two descriptions of one object in a video into referring expressions.
You get an appearance description (what it looks like) and a motion description (how it moves).

Write three referring expressions:
- "all": appearance and motion together
- "motion": only the motion (call the object "object" or a word that says nothing about its looks)
- "appearance": only the appearance

Rules:
- Write referring phrases, not full sentences: "red ball rolling to the left", not "The ball is rolling to the left."
- Singular only; never "they" or "their". Do not use the word "figure".
- Keep every detail of the descriptions; do not add anything new.
- Do not start with "The object is" or "This is".

Answer with JSON only: {"all": "...", "motion": "...", "appearance": "..."}"""

STAGE2_SINGLE_USER = """appearance_caption: {appearance}
motion_caption: {motion}
Write the three referring expressions as JSON."""

# ---- Stage 2 (text): multi-instance merge (Figure A9) ---------------------------------------------

STAGE2_MERGE_SYSTEM = """You decide whether several objects of a video can share one referring expression, from their motion captions.
Objects may be grouped only when all of these hold:
1. They are of the same or a very similar class.
2. Their motion is clearly alike (for example all walking the same way, all spinning).
3. Each caption is about the object itself, not about something it touches or holds.
Never group objects that stay still or barely move.

Answer with JSON only: {"merged": "YES" or "NO", "merged_objects": [object ids] or null, "merged_caption": "<referring phrase for the group>" or null}
The merged caption names the class in the plural ("squares moving down side by side"), is a referring phrase rather than a sentence, and never uses "they"."""

STAGE2_MERGE_USER = """obj_captions: {captions}
Decide whether some of these objects can be merged and answer with the JSON."""

# ---- Stage 3 (vision, per clip; Figures A10-A11) --------------------------------------------------

STAGE3_SYSTEM = """You find interactions between labelled objects in a video, from a few frames sampled in order.
Every object is filled with its own colour and labelled with its id, like [1].

For each interaction you see:
- "type" is "bidirectional" when the objects act alike (moving together, colliding, circling each other) and "unidirectional" when one acts on the other (pushing, pulling, hitting, chasing, following, carrying, circling around, approaching).
- "object_pair" lists every object taking part (two or more labels).
- For unidirectional interactions, "actors" lists who starts the action and "targets" who receives it; together they are exactly object_pair.
- "descriptions" has one sentence per object of object_pair with that object as the grammatical subject: active voice for actors ("Object [1] is pushing object [2].") and passive voice for targets ("Object [2] is being pushed by object [1]."). A bidirectional interaction may use one sentence with every object as the subject ("Object [1] and object [2] are moving together.").
- Refer to objects only by their labels. Describe only what the frames show.

Self-check before answering: use only the valid labels; every label in a sentence is in object_pair; every object of object_pair is the subject of at least one sentence.
If there is no interaction, answer {"interaction": "NO", "interactions": []}.

Answer with JSON only: {"interaction": "YES" or "NO", "interactions": [{"object_pair": ["[1]", "[2]"], "type": "unidirectional", "actors": ["[1]"], "targets": ["[2]"], "descriptions": ["Object [1] is pushing object [2].", "Object [2] is being pushed by object [1]."]}]}"""

STAGE3_USER = """Valid labels (use no others): {labels}
Object categories (prior knowledge; decide from what you see): {categories}
The {num_frames} frames below are sampled uniformly from the video, in order."""

# ---- Stage 4 (text, per interaction and subject; Figures A12-A13) ---------------------------------

STAGE4_COMMON = """You write referring expressions for an interaction between objects of a video.
You get obj_captions (object id -> appearance and class) and interaction_description, a sentence that names the objects by labels like [0].

Write two referring expressions for the object named as subject_id:
- "class_level": the objects named by their class only ("square pushing a circle")
- "appearance_level": the objects named by short appearance phrases, just enough to tell them apart ("red striped square pushing a small blue circle")

Rules:
- Replace every label with a natural phrase; no [0]-style label may remain.
- Write referring phrases, not explanatory sentences: "person feeding a rabbit", not "The person is feeding the rabbit."
- Never use "they" or "their". Do not add facts that are not in the inputs.

Answer with JSON only: {"class_level": "...", "appearance_level": "..."}"""

STAGE4_BIDIRECTIONAL = STAGE4_COMMON + """
The interaction is mutual: refer to all its objects together; objects of one class may be named in the plural ("squares moving together")."""

STAGE4_UNIDIRECTIONAL = STAGE4_COMMON + """
The interaction has a direction: the phrase is about subject_id, who relates to object_id as the sentence says. Follow subject_id and object_id, not the word order of the sentence."""

STAGE4_USER = """obj_captions: {captions}
interaction_description: {description}
subject_id: {subject}
object_id: {objects}
Answer with the JSON only."""

# ---- Retries: the error goes back to the model ----------------------------------------------------

RETRY_USER = """Your answer could not be used: {problem}
Answer again, following every rule, with the JSON only."""


def label(obj_id: str) -> str:
    return f"[{obj_id}]"


def stage1_user(category: str, num_frames: int) -> str:
    return STAGE1_USER.format(category=category, num_frames=num_frames)


def stage2_single_user(appearance: str, motion: str) -> str:
    return STAGE2_SINGLE_USER.format(appearance=appearance, motion=motion)


def stage2_merge_user(motion_captions: Mapping[str, str]) -> str:
    return STAGE2_MERGE_USER.format(captions=json.dumps({label(k): v for k, v in motion_captions.items()}))


def stage3_user(categories: Mapping[str, str], num_frames: int) -> str:
    labels = ", ".join(label(o) for o in categories)
    cats = json.dumps({label(k): v for k, v in categories.items()})
    return STAGE3_USER.format(labels=labels, categories=cats, num_frames=num_frames)


def stage4_user(captions: Mapping[str, str], description: str, subject: Sequence[str], objects: Sequence[str]) -> str:
    return STAGE4_USER.format(captions=json.dumps({label(k): v for k, v in captions.items()}), description=description,
                              subject=", ".join(label(s) for s in subject),
                              objects=", ".join(label(o) for o in objects) or "none")


def retry_user(problem: str) -> str:
    return RETRY_USER.format(problem=problem)

"""The local backend's measurements: colours from pixels, motion from mask trajectories, and
interactions (who acts on whom) from contact, approach and co-motion."""

from __future__ import annotations

import numpy as np

from interrvos.annotate.evidence import colour_name, measure_clip, motion_facts
from interrvos.annotate.interactions import find_interactions
from interrvos.annotate.templates import describe_from_facts, interaction_expressions, merge_from_facts
from interrvos.data.rle import encode_mask

H, W = 120, 160


def disc(cx: float, cy: float, r: int = 10) -> dict:
    ys, xs = np.mgrid[0:H, 0:W]
    return encode_mask(((xs - cx) ** 2 + (ys - cy) ** 2 <= r * r).astype(np.uint8))


def test_colour_names_from_pixels():
    assert [colour_name(c) for c in [(220, 40, 40), (40, 90, 225), (245, 245, 245), (30, 30, 30), (50, 170, 60)]] == \
        ["red", "blue", "white", "black", "green"]


def test_motion_facts_of_a_straight_run_and_of_a_still_object():
    frames = np.arange(0, 200, 2)
    xs = np.linspace(0.2, 0.8, len(frames))
    moving = motion_facts(np.stack([xs, np.full_like(xs, 0.4)], axis=1), frames)
    assert moving["pattern"] == "travels" and moving["legs"] == ["right"]
    still = motion_facts(np.tile([[0.5, 0.5]], (len(frames), 1)), frames)
    assert still["pattern"] == "still"
    sentences = describe_from_facts({"category": "ball", "colour": "red", "size": "small", "position": "left",
                                     "motion": moving})
    assert sentences["appearance"] == "A small red ball in the left of the frame."
    assert sentences["motion"].startswith("It moves") and "to the right" in sentences["motion"]


def test_a_push_is_found_with_the_pusher_as_actor():
    """Object 1 comes from the left, touches the still object 2, then both move on to the right."""
    n = 200
    a, b, bystander = [], [], []
    for t in range(n):
        ax = 20 + 0.5 * t if t < 90 else 65 + 0.4 * (t - 90)
        bx = 86 if t < 90 else 86 + 0.4 * (t - 90)
        a.append(disc(ax, 60))
        b.append(disc(bx, 60))
        bystander.append(disc(140, 15, 6))
    m = measure_clip({"1": a, "2": b, "3": bystander}, W, H)
    found = find_interactions(m)
    assert [(i.type, i.actors, i.targets) for i in found] == [("unidirectional", ["1"], ["2"])]
    (push,) = found
    assert push.verb == "pushing" and push.descriptions()[1] == "Object [2] is being pushed by object [1]."


def test_two_objects_moving_side_by_side_move_together_unless_lookalikes():
    n = 200
    a = [disc(20 + 0.5 * t, 40) for t in range(n)]
    b = [disc(20 + 0.5 * t, 64) for t in range(n)]
    m = measure_clip({"1": a, "2": b}, W, H)
    found = find_interactions(m)
    assert [(i.type, i.verb) for i in found] == [("bidirectional", "moving together")]
    facts = {o: {"category": "dog", "colour": "brown", "motion": {"pattern": "travels", "legs": ["right"]}}
             for o in ("1", "2")}
    assert find_interactions(m, facts) == []  # a formation of look-alikes is a group, not an interaction
    merged = merge_from_facts(facts)
    assert merged["merged"] == "YES" and merged["merged_caption"] == "brown dogs moving to the right together"


def test_interaction_sentences_become_referring_phrases():
    classes, looks = {"1": "dog", "2": "ball"}, {"1": "brown dog", "2": "red ball"}
    assert interaction_expressions("Object [2] is being chased by object [1].", classes, looks) == {
        "class_level": "ball being chased by the dog", "appearance_level": "red ball being chased by the brown dog"}

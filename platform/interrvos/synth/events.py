"""Scripted interactions with ground truth. Each script moves its participants so the event is
evident from the masks alone, and returns where in time it happens.

Unidirectional scripts take (actor, target); the actor initiates the motion. Bidirectional
scripts take two participants who act alike. Distances are in `stage.unit` (the frame's shorter
side); `_contact` places two sprites so their masks just overlap, whatever their shapes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from interrvos.synth.paths import Body, Choreography, Path, Stage, perpendicular
from interrvos.synth.sprites import touch_distance

# Verbs whose participants' masks touch during the event, and verbs whose target then moves.
MAKES_CONTACT = frozenset({"push", "pull", "hit", "carry", "chase", "collide", "meet"})
MOVES_TARGET_AFTER_CONTACT = frozenset({"push", "pull", "hit", "carry"})


def _contact(first: Body, second: Body, u: np.ndarray) -> float:
    """Centre distance (second placed from first along u) at which the two visibly touch; 1.5 px
    closer than first touch so that rounding positions to pixels never opens a gap."""
    return max(1.0, touch_distance(first.sprite, second.sprite, u) - 1.5)


def _clearance(a: Body, b: Body, stage: Stage, gap: float) -> float:
    """Centre distance at which two sprites never touch, whatever their pose or direction."""
    return a.sprite.bound + b.sprite.bound + 2.0 + gap * stage.unit


def _uni(verb: str, actor: Body, target: Body, span: tuple[int, int]) -> dict:
    return {"verb": verb, "direction": "unidirectional", "actor_ids": [actor.obj_id],
            "target_ids": [target.obj_id], "start": span[0], "end": span[1]}


def _bi(verb: str, a: Body, b: Body, span: tuple[int, int]) -> dict:
    return {"verb": verb, "direction": "bidirectional", "participant_ids": [a.obj_id, b.obj_id],
            "start": span[0], "end": span[1]}


def _circle(radius: float, angle0: float, turns: float, frames: int) -> np.ndarray:
    angles = angle0 + 2 * np.pi * turns * np.arange(1, frames + 1) / max(frames, 1)
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def push(st: Stage, actor: Body, target: Body) -> Choreography:
    """Actor approaches, touches the target, then both move on with the target ahead."""
    u = st.direction()
    c, (s, e) = _contact(actor, target, u), st.span()
    k = st.split(s, e, 0.4)
    travel = u * 0.35 * st.unit
    a = Path(-u * (c + 0.2 * st.unit)).hold(s).move_to(-u * c, k - s).move_to(-u * c + travel, e - k)
    t = Path((0, 0)).hold(k).move_to(travel, e - k)
    return Choreography({actor.obj_id: a.build(st.frames), target.obj_id: t.build(st.frames)},
                        event=_uni("push", actor, target, (s, e)))


def pull(st: Stage, actor: Body, target: Body) -> Choreography:
    """Actor comes to the target, grabs it, and moves away dragging it behind."""
    u = st.direction()
    c, (s, e) = _contact(target, actor, u), st.span()
    k = st.split(s, e, 0.35)
    k2 = min(e, k + 6)
    travel = u * 0.35 * st.unit
    a = Path(u * (c + 0.2 * st.unit)).hold(s).move_to(u * c, k - s).hold(k2 - k).move_to(u * c + travel, e - k2)
    t = Path((0, 0)).hold(k2).move_to(travel, e - k2)
    return Choreography({actor.obj_id: a.build(st.frames), target.obj_id: t.build(st.frames)},
                        event=_uni("pull", actor, target, (s, e)))


def hit(st: Stage, actor: Body, target: Body) -> Choreography:
    """Actor rushes in and strikes; the target flies off and slows down, the actor recoils."""
    u = st.direction()
    c, (s, e) = _contact(actor, target, u), st.span()
    k = st.split(s, e, 0.2)
    a = Path(-u * (c + 0.3 * st.unit)).hold(s).move_to(-u * c, k - s)
    a.move_to(-u * (c + 0.05 * st.unit), min(10, e - k), "out")
    t = Path((0, 0)).hold(k).move_to(u * 0.45 * st.unit, e - k, "out")
    return Choreography({actor.obj_id: a.build(st.frames), target.obj_id: t.build(st.frames)},
                        event=_uni("hit", actor, target, (s, e)))


def _lagging(st: Stage, s: int, e: int, u: np.ndarray, travel: float, wiggle: float,
             lag_start: float, lag_end: float) -> tuple[np.ndarray, np.ndarray]:
    """Leader and follower on one winding path; the follower is `lag` frames behind on it."""
    dur = max(e - s, 1)
    speed = travel / dur
    across = perpendicular(u)
    turns = float(st.rng.uniform(0.75, 1.5))

    def at(tau: np.ndarray) -> np.ndarray:
        return u * speed * tau[:, None] + across * wiggle * np.sin(2 * np.pi * turns * tau / dur)[:, None]

    frames = np.arange(st.frames, dtype=np.float64)
    tau = np.clip(frames - s, 0, dur)
    lag = lag_start + (lag_end - lag_start) * tau / dur
    return at(tau), at(tau - lag)


def chase(st: Stage, actor: Body, target: Body) -> Choreography:
    """Target runs, actor runs after it faster; the gap shrinks until the actor catches it."""
    u = st.direction()
    c, (s, e) = _contact(actor, target, u), st.span()
    travel = 0.5 * st.unit
    speed = travel / max(e - s, 1)
    lead, chaser = _lagging(st, s, e, u, travel, 0.0, (c + 0.3 * st.unit) / speed, c / speed)
    return Choreography({actor.obj_id: chaser, target.obj_id: lead}, event=_uni("chase", actor, target, (s, e)))


def follow(st: Stage, actor: Body, target: Body) -> Choreography:
    """Actor trails the target along its winding path at a steady distance, never touching."""
    u = st.direction()
    s, e = st.span()
    travel = 0.45 * st.unit
    lag = _clearance(actor, target, st, 0.12) / (travel / max(e - s, 1))
    lead, trail = _lagging(st, s, e, u, travel, 0.1 * st.unit, lag, lag)
    return Choreography({actor.obj_id: trail, target.obj_id: lead}, event=_uni("follow", actor, target, (s, e)))


def carry(st: Stage, actor: Body, target: Body) -> Choreography:
    """The (larger) actor slides under the target, which then rides on its top while it moves."""
    u = st.direction()
    s, e = st.span()
    on_top = np.array([0.0, -0.45 * actor.sprite.radius])
    k = st.split(s, e, 0.35)
    k2 = min(e, k + 5)
    angle = float(st.rng.uniform(-np.pi / 3, np.pi / 3))
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    travel = rot @ u * 0.4 * st.unit
    a = Path(-on_top - u * (_clearance(actor, target, st, 0.05))).hold(s).move_to(-on_top, k - s)
    a.hold(k2 - k).move_to(-on_top + travel, e - k2)
    t = Path((0, 0)).hold(k2).move_to(travel, e - k2)
    return Choreography({actor.obj_id: a.build(st.frames), target.obj_id: t.build(st.frames)},
                        event=_uni("carry", actor, target, (s, e)), front=(target.obj_id,))


def orbit(st: Stage, actor: Body, target: Body) -> Choreography:
    """Actor comes close to the motionless target and circles around it."""
    s, e = st.span()
    radius = _clearance(actor, target, st, 0.06)
    angle0 = float(st.rng.uniform(0, 2 * np.pi))
    turns = float(st.rng.uniform(1.0, 1.5)) * (1 if st.rng.random() < 0.5 else -1)
    k = st.split(s, e, 0.2)
    ray = np.array([np.cos(angle0), np.sin(angle0)])
    a = Path(ray * (radius + 0.2 * st.unit)).hold(s).move_to(ray * radius, k - s)
    a.extend(_circle(radius, angle0, turns, e - k))
    t = Path((0, 0))
    return Choreography({actor.obj_id: a.build(st.frames), target.obj_id: t.build(st.frames)},
                        event=_uni("orbit", actor, target, (s, e)))


def approach(st: Stage, actor: Body, target: Body) -> Choreography:
    """Actor walks up to the motionless target and stops just short of it."""
    u = st.direction()
    s, e = st.span()
    stop = touch_distance(actor.sprite, target.sprite, u, any_pose=True) + 2 + 0.05 * st.unit
    a = Path(-u * (stop + 0.35 * st.unit)).hold(s).move_to(-u * stop, e - s, "out")
    return Choreography({actor.obj_id: a.build(st.frames), target.obj_id: Path((0, 0)).build(st.frames)},
                        event=_uni("approach", actor, target, (s, e)))


def move_together(st: Stage, a: Body, b: Body) -> Choreography:
    """Side by side, same direction and speed."""
    u = st.direction()
    s, e = st.span()
    half = perpendicular(u) * _clearance(a, b, st, 0.02) / 2
    travel = u * 0.45 * st.unit
    pa = Path(-half).hold(s).move_to(travel - half, e - s, "in_out")
    pb = Path(half).hold(s).move_to(travel + half, e - s, "in_out")
    return Choreography({a.obj_id: pa.build(st.frames), b.obj_id: pb.build(st.frames)},
                        event=_bi("move_together", a, b, (s, e)))


def collide(st: Stage, a: Body, b: Body) -> Choreography:
    """Both rush at each other, meet, and bounce apart."""
    u = st.direction()
    c, (s, e) = _contact(a, b, u), st.span()
    k = st.split(s, e, 0.45)
    paths = {}
    for body, sign in ((a, -1.0), (b, 1.0)):
        p = Path(sign * u * (c / 2 + 0.25 * st.unit)).hold(s).move_to(sign * u * c / 2, k - s)
        paths[body.obj_id] = p.move_to(sign * u * (c / 2 + 0.22 * st.unit), e - k, "out").build(st.frames)
    return Choreography(paths, event=_bi("collide", a, b, (s, e)))


def circle_each_other(st: Stage, a: Body, b: Body) -> Choreography:
    """Both go round their common centre, always opposite each other."""
    s, e = st.span()
    radius = _clearance(a, b, st, 0.06) / 2
    angle0 = float(st.rng.uniform(0, 2 * np.pi))
    turns = float(st.rng.uniform(0.75, 1.5)) * (1 if st.rng.random() < 0.5 else -1)
    ring = _circle(radius, angle0, turns, e - s)
    start = radius * np.array([np.cos(angle0), np.sin(angle0)])
    pa = Path(start).hold(s).extend(ring)
    pb = Path(-start).hold(s).extend(-ring)
    return Choreography({a.obj_id: pa.build(st.frames), b.obj_id: pb.build(st.frames)},
                        event=_bi("circle_each_other", a, b, (s, e)))


def meet(st: Stage, a: Body, b: Body) -> Choreography:
    """Both walk towards each other and stop face to face, touching."""
    u = st.direction()
    c, (s, e) = _contact(a, b, u), st.span()
    k = st.split(s, e, 0.8)
    paths = {}
    for body, sign in ((a, -1.0), (b, 1.0)):
        p = Path(sign * u * (c / 2 + 0.3 * st.unit)).hold(s).move_to(sign * u * c / 2, k - s, "out")
        paths[body.obj_id] = p.build(st.frames)
    return Choreography(paths, event=_bi("meet", a, b, (s, e)))


Script = Callable[[Stage, Body, Body], Choreography]
UNIDIRECTIONAL: dict[str, Script] = {
    "push": push, "pull": pull, "hit": hit, "chase": chase,
    "follow": follow, "carry": carry, "orbit": orbit, "approach": approach,
}
BIDIRECTIONAL: dict[str, Script] = {
    "move_together": move_together, "collide": collide, "circle_each_other": circle_each_other, "meet": meet,
}
# Every verb once, with a bidirectional one in any three in a row: videos take their first event
# from here in turn, so a handful of videos already shows both directions and many verbs.
VERB_CYCLE: tuple[str, ...] = ("push", "collide", "pull", "hit", "move_together", "chase",
                               "follow", "meet", "carry", "orbit", "circle_each_other", "approach")
assert sorted(VERB_CYCLE) == sorted({**UNIDIRECTIONAL, **BIDIRECTIONAL})
# Verbs whose target stays put: they also work with a static object as the target.
STILL_TARGET = ("orbit", "approach")

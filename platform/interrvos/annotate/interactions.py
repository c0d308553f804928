"""Interactions from measured evidence (the `local` backend's stage 3): approach, contact,
co-motion and circling between pairs of mask trajectories. Closeness alone is not evidence (in a
crowded frame unrelated things touch and overlap all the time); what is measured is how one
object's motion is organised around the other's:

- heading: an object moves straight at the other for a while and ends next to it (approach; then
  contact and the target set moving: push, pull, hit; a fleeing target caught: chase; both heading
  at each other and touching: meet, collide);
- co-motion: both move the same way at a similar speed for a while: side by side (together), one
  after the other (follow), or as one while touching after one came to the other (carry);
- circling: the distance stays the same while the bearing between them turns (orbit; circling each
  other).

The actor of a unidirectional interaction is the initiator: the object that headed for the other,
the one that came before a carry, or the follower. An object takes part in one interaction at a
time: competing candidates are settled by how evident they are (STRENGTH), then by duration.
Works on `evidence.ClipMeasurements` (units of the frame's shorter side; sampled time axis).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from interrvos.annotate.evidence import MOVING_SPEED, ClipMeasurements, fill_gaps, velocities

HEADING_COS = 0.75       # share of an object's speed aimed at the other to count as heading for it
MIN_HEADING_FRAMES = 36  # clip frames of heading needed
MIN_CHASE_FRAMES = 60    # a chase is a long run after a fleeing target, not a brush in passing
ARRIVAL_GAP = 0.12       # a heading run must end this close (units) to count as an approach
COMOTION_COS = 0.9
COMOTION_GAP = 0.25
MIN_COMOTION_FRAMES = 60
PURSUIT_COS = 0.4        # follower aims at the leader, leader aims away from the follower, by this share
PURSUIT_GAP = 0.32
OVERLAP_GAP = 0.01       # tandems whose masks touch or overlap nearly all along are crossings
CIRCLING_GAP = 0.22
MIN_CIRCLING_FRAMES = 70
CONTACT_GAP = 0.02
CLOSED_GAP = 0.06        # an approach closes at least this much of the gap

PASSIVE = {"pushing": "being pushed by", "pulling": "being pulled by", "hitting": "being hit by",
           "chasing": "being chased by", "following": "being followed by", "circling around": "being circled by",
           "approaching": "being approached by", "carrying": "being carried by",
           "moving along with": "being moved along by"}


@dataclass
class PairInteraction:
    """One interaction found between two objects; `actors`/`targets` empty when bidirectional."""

    object_pair: list[str]
    type: str
    actors: list[str]
    targets: list[str]
    verb: str  # active phrase: "pushing" (uni, the actor as subject) or "moving together" (bi)
    start: int
    end: int

    def descriptions(self) -> list[str]:
        if self.type == "bidirectional":
            a, b = self.object_pair
            return [f"Object [{a}] and object [{b}] are {self.verb}."]
        (a,), (b,) = self.actors, self.targets
        return [f"Object [{a}] is {self.verb} object [{b}].", f"Object [{b}] is {PASSIVE[self.verb]} object [{a}]."]

    def as_answer(self) -> dict:
        return {"object_pair": [f"[{o}]" for o in self.object_pair], "type": self.type,
                "actors": [f"[{o}]" for o in self.actors], "targets": [f"[{o}]" for o in self.targets],
                "descriptions": self.descriptions()}


def runs(mask: np.ndarray, max_hole: int = 0) -> list[tuple[int, int]]:
    """[start, end) runs of True, joining runs separated by at most `max_hole` False samples."""
    out: list[list[int]] = []
    for i in np.flatnonzero(mask):
        if out and i - out[-1][1] <= max_hole:
            out[-1][1] = i + 1
        else:
            out.append([int(i), int(i) + 1])
    return [(s, e) for s, e in out]


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.divide(v, n, out=np.zeros_like(v), where=n > 1e-9)


@dataclass
class PairSeries:
    """Everything about a pair (a, b) on the sampled time axis."""

    a: str
    b: str
    frames: np.ndarray
    pos: dict[str, np.ndarray]
    vel: dict[str, np.ndarray]
    speed: dict[str, np.ndarray]
    gap: np.ndarray
    u: np.ndarray  # unit vector from a to b

    @property
    def stride(self) -> float:
        return float(self.frames[1] - self.frames[0]) if len(self.frames) > 1 else 1.0

    def samples(self, clip_frames: float) -> int:
        return max(1, int(round(clip_frames / self.stride)))

    def aim(self, x: str) -> np.ndarray:
        """Share of x's velocity pointing at the other object (-1: straight away, 1: straight at it)."""
        towards = self.u if x == self.a else -self.u
        return np.einsum("ij,ij->i", self.vel[x], towards) / np.maximum(self.speed[x], 1e-9)

    def heading_share(self, x: str, share: float) -> np.ndarray:
        return (self.speed[x] > MOVING_SPEED) & (self.aim(x) > share)

    def leaving(self, x: str, share: float) -> np.ndarray:
        return (self.speed[x] > MOVING_SPEED) & (self.aim(x) < -share)

    def heading(self, x: str) -> np.ndarray:
        """Samples where x moves at the other one."""
        return self.heading_share(x, HEADING_COS)

    def moving(self, x: str, s: int, e: int) -> bool:
        return bool(np.mean(self.speed[x][s:e] > MOVING_SPEED) > 0.5) if e > s else False

    def other(self, x: str) -> str:
        return self.b if x == self.a else self.a


def approaches(p: PairSeries, x: str) -> list[tuple[int, int]]:
    """Runs where x heads for the other object and ends up next to it."""
    out = []
    for s, e in runs(p.heading(x), max_hole=p.samples(16)):
        if (e - s) * p.stride < MIN_HEADING_FRAMES:
            continue
        after = p.gap[max(s, e - 2):min(len(p.gap), e + p.samples(24))]
        if after.size and float(np.min(after)) <= ARRIVAL_GAP and p.gap[s] - float(np.min(after)) >= CLOSED_GAP:
            out.append((s, e))
    return out


def side_by_side(p: PairSeries) -> list[tuple[int, int]]:
    """Runs where both move the same way at a similar speed, next to each other (not one behind)."""
    va, vb = p.vel[p.a], p.vel[p.b]
    sa, sb = p.speed[p.a], p.speed[p.b]
    both = (sa > MOVING_SPEED) & (sb > MOVING_SPEED)
    cos = np.einsum("ij,ij->i", _unit(va), _unit(vb))
    ratio = np.minimum(sa, sb) / np.maximum(np.maximum(sa, sb), 1e-9)
    along = np.abs(np.einsum("ij,ij->i", p.u, _unit(va + vb)))
    ok = both & (cos > COMOTION_COS) & (ratio > 0.5) & (p.gap < COMOTION_GAP) & (along < 0.5)
    return [(s, e) for s, e in runs(ok, max_hole=p.samples(12)) if (e - s) * p.stride >= MIN_COMOTION_FRAMES]


def pursuits(p: PairSeries, x: str) -> list[tuple[int, int]]:
    """Runs where x keeps moving towards the other while the other keeps moving away from x."""
    y = p.other(x)
    moving = (p.speed[x] > MOVING_SPEED) & (p.speed[y] > MOVING_SPEED)
    ok = moving & p.heading_share(x, PURSUIT_COS) & p.leaving(y, PURSUIT_COS) & (p.gap < PURSUIT_GAP)
    return [(s, e) for s, e in runs(ok, max_hole=p.samples(12)) if (e - s) * p.stride >= MIN_COMOTION_FRAMES]


def carries(p: PairSeries) -> list[tuple[str, int, int]]:
    """(actor, start, end): both move as one while touching, after one came to the other while it
    stood still (carrying; the mover that came is the carrier)."""
    va, vb = p.vel[p.a], p.vel[p.b]
    sa, sb = p.speed[p.a], p.speed[p.b]
    both = (sa > MOVING_SPEED) & (sb > MOVING_SPEED)
    cos = np.einsum("ij,ij->i", _unit(va), _unit(vb))
    ratio = np.minimum(sa, sb) / np.maximum(np.maximum(sa, sb), 1e-9)
    ok = both & (cos > COMOTION_COS) & (ratio > 0.6) & (p.gap <= CONTACT_GAP)
    out = []
    for s, e in runs(ok, max_hole=p.samples(12)):
        if (e - s) * p.stride < MIN_COMOTION_FRAMES:
            continue
        before = max(0, s - p.samples(60))
        movers = [x for x in (p.a, p.b) if p.moving(x, before, s)]
        if len(movers) == 1 and bool(np.any(p.heading(movers[0])[before:s])):
            out.append((movers[0], before, e))
    return out


def circlings(p: PairSeries) -> list[tuple[int, int]]:
    """Runs of steady distance while the bearing from one to the other turns by more than half a turn."""
    dist = np.linalg.norm(p.pos[p.b] - p.pos[p.a], axis=1)
    bearing = np.unwrap(np.arctan2(p.u[:, 1], p.u[:, 0]))
    close = p.gap < CIRCLING_GAP
    out = []
    for s, e in runs(close, max_hole=p.samples(8)):
        if (e - s) * p.stride < MIN_CIRCLING_FRAMES:
            continue
        d = dist[s:e]
        if d.std() < 0.12 * d.mean() and abs(bearing[e - 1] - bearing[s]) > np.pi:
            out.append((s, e))
    return out


def _verb_after_approach(p: PairSeries, actor: str, s: int, e: int) -> str | None:
    """What an approach by `actor` turned into, or None when nothing followed from it (it passed by)."""
    target = p.other(actor)
    reach = min(len(p.gap), e + p.samples(24))
    contact = s + int(np.argmax(p.gap[s:reach] <= CONTACT_GAP)) if np.any(p.gap[s:reach] <= CONTACT_GAP) else None
    touched = contact is not None
    pre_end = contact if touched and contact > s + 1 else e  # before they touched
    late = slice(pre_end, min(len(p.gap), pre_end + p.samples(90)))  # what followed
    away = p.u if actor == p.a else -p.u  # from the actor towards the target
    if p.moving(target, s, pre_end):
        # A chase: the target runs away along the actor's line and the actor catches up with it.
        vt, va = p.vel[target][s:pre_end].mean(axis=0), p.vel[actor][s:pre_end].mean(axis=0)
        fleeing = float(vt @ away[s:pre_end].mean(axis=0)) > 0.5 * np.linalg.norm(vt)
        faster = np.linalg.norm(va) > np.linalg.norm(vt)
        long_enough = (pre_end - s) * p.stride >= MIN_CHASE_FRAMES
        return "chasing" if touched and fleeing and faster and long_enough else None
    if touched and p.moving(target, late.start, late.stop):
        vt = p.vel[target][late].mean(axis=0)
        va = p.vel[actor][late].mean(axis=0)
        pushed_away = float(vt @ away[late].mean(axis=0)) > 0.5 * np.linalg.norm(vt)
        if np.linalg.norm(vt) > 2.0 * np.linalg.norm(va) and pushed_away:
            return "hitting"
        if float(_unit(vt) @ _unit(va)) > 0.7:  # they go on together: pushed ahead or dragged behind
            ahead = float(np.mean(np.einsum("ij,ij->i", p.pos[target][late] - p.pos[actor][late],
                                            _unit(p.vel[target][late]))))
            return "pushing" if ahead > 0 else "pulling"
        return None
    settle = slice(e, min(len(p.gap), e + p.samples(30)))
    if settle.stop - settle.start >= p.samples(12) and not p.moving(actor, settle.start, settle.stop):
        return "approaching"  # it came up to the still target and stopped there
    return None


def _mutual_verb(p: PairSeries, sa: int, ea: int, sb: int, eb: int) -> str | None:
    """Both headed for each other and touched: they met (both stop there) or collided (both turn back);
    otherwise they only crossed or passed."""
    end = max(ea, eb)
    late = slice(end, min(len(p.gap), end + p.samples(60)))
    if float(np.min(p.gap[min(sa, sb):min(len(p.gap), end + p.samples(60))])) > CONTACT_GAP:
        return None
    if late.stop - late.start < p.samples(10):
        return "meeting"
    if not p.moving(p.a, late.start, late.stop) and not p.moving(p.b, late.start, late.stop):
        return "meeting"
    turned = all(float(p.vel[x][late].mean(axis=0) @ p.vel[x][s:e].mean(axis=0)) < 0
                 for x, s, e in ((p.a, sa, ea), (p.b, sb, eb)))
    return "colliding with each other" if turned else None


# How evident each kind of finding is: an object takes part in one interaction at a time, and when
# candidates compete for it the more evident (then the longer) one wins.
STRENGTH = {"meeting": 3.0, "colliding with each other": 3.0, "pushing": 3.0, "pulling": 3.0, "hitting": 3.0,
            "carrying": 3.0,
            "circling around": 2.5, "circling around each other": 2.5, "group": 3.5, "approaching": 2.0,
            "moving together": 2.0, "following": 1.5, "chasing": 1.5}
FOLLOW_UP_FRAMES = 90  # what an approach sets off (a push, a drag) belongs to it for this long


@dataclass
class Candidate:
    interaction: PairInteraction
    busy_until: int  # the objects count as engaged until this frame
    group_only: bool = False  # look-alikes moving in formation: a group for stage 2, not an interaction

    @property
    def strength(self) -> float:
        return STRENGTH["group" if self.group_only else self.interaction.verb]

    def clashes(self, other: Candidate) -> bool:
        if not set(self.interaction.object_pair) & set(other.interaction.object_pair):
            return False
        if self.group_only and other.group_only:
            return False  # a formation of three is three pairs sharing objects
        s1, e1 = self.interaction.start, self.busy_until
        s2, e2 = other.interaction.start, other.busy_until
        return min(e1, e2) - max(s1, s2) > 0.3 * min(e1 - s1, e2 - s2)


def pair_candidates(p: PairSeries, lookalike: bool) -> list[Candidate]:
    """Everything the evidence suggests between one pair, before objects' other partners are considered."""
    out: list[Candidate] = []
    frame = lambda i: int(p.frames[min(i, len(p.frames) - 1)])  # noqa: E731

    def add(inter: PairInteraction, follow_up: int = 0, group_only: bool = False) -> None:
        out.append(Candidate(inter, min(int(p.frames[-1]) + 1, inter.end + follow_up), group_only))

    def uni(actor: str, verb: str, s: int, e: int, follow_up: int = 0) -> None:
        target = p.other(actor)
        add(PairInteraction([actor, target], "unidirectional", [actor], [target], verb, frame(s), frame(e - 1) + 1),
            follow_up)

    def bi(verb: str, s: int, e: int, follow_up: int = 0) -> None:
        add(PairInteraction([p.a, p.b], "bidirectional", [], [], verb, frame(s), frame(e - 1) + 1), follow_up,
            group_only=lookalike)

    heads = {x: approaches(p, x) for x in (p.a, p.b)}
    mutual = set()
    for sa, ea in heads[p.a]:
        for sb, eb in heads[p.b]:
            if min(ea, eb) > max(sa, sb):  # both head for each other at the same time
                mutual.update({(p.a, sa, ea), (p.b, sb, eb)})
                verb = _mutual_verb(p, sa, ea, sb, eb)
                if verb:
                    bi(verb, min(sa, sb), max(ea, eb), FOLLOW_UP_FRAMES)
    for x in (p.a, p.b):
        for s, e in heads[x]:
            verb = _verb_after_approach(p, x, s, e) if (x, s, e) not in mutual else None
            if verb:
                uni(x, verb, s, e, FOLLOW_UP_FRAMES if verb in ("pushing", "pulling", "hitting") else 0)
    for actor, s, e in carries(p):
        uni(actor, "carrying", s, e)
    for s, e in side_by_side(p):
        if float(np.mean(p.gap[s:e])) > OVERLAP_GAP:  # masks overlapping all along: one passes over the other
            bi("moving together", s, e)
    for x in (p.a, p.b):
        for s, e in pursuits(p, x):
            if float(np.mean(p.gap[s:e])) > OVERLAP_GAP and not lookalike:
                uni(x, "following", s, e)
    for s, e in circlings(p):
        movers = [x for x in (p.a, p.b) if p.moving(x, s, e)]
        if len(movers) == 2:
            bi("circling around each other", s, e)
        elif movers:
            uni(movers[0], "circling around", s, e)
    return out


def select_exclusive(candidates: list[Candidate]) -> list[PairInteraction]:
    """Greedy, most evident first: a candidate is kept unless one of its objects is already engaged
    at that time by a kept candidate with another partner (the same pair may relate several ways)."""
    kept: list[Candidate] = []
    order = sorted(candidates, key=lambda c: (-c.strength, c.interaction.start - c.interaction.end))
    for c in order:
        pair = set(c.interaction.object_pair)
        if not any(c.clashes(k) and set(k.interaction.object_pair) != pair for k in kept):
            if not any(c.clashes(k) and set(k.interaction.object_pair) == pair and k.strength > c.strength
                       and k.interaction.type != c.interaction.type for k in kept):
                kept.append(c)
    return [k.interaction for k in kept if not k.group_only]


def find_interactions(m: ClipMeasurements, facts: Mapping[str, Mapping] | None = None) -> list[PairInteraction]:
    """Every interaction between pairs of objects of a clip, in time order, one per (pair, type, actor)."""
    facts = facts or {}
    ids = list(m.centres)
    pos = {o: np.stack([fill_gaps(m.centres[o][:, k]) for k in range(2)], axis=1) for o in ids}
    vel = {o: velocities(m.centres[o], m.frames) for o in ids}
    speed = {o: np.linalg.norm(v, axis=1) for o, v in vel.items()}
    candidates: list[Candidate] = []
    for (a, b), gap in m.gaps.items():
        if np.isnan(pos[a]).all() or np.isnan(pos[b]).all() or len(m.frames) < 3:
            continue
        fa, fb = facts.get(a, {}), facts.get(b, {})
        lookalike = bool(fa) and fa.get("category") == fb.get("category") and fa.get("colour") == fb.get("colour")
        p = PairSeries(a, b, m.frames, pos, vel, speed, np.nan_to_num(fill_gaps(gap), nan=np.inf),
                       _unit(pos[b] - pos[a]))
        candidates += pair_candidates(p, lookalike)
    return _dedupe(sorted(select_exclusive(candidates), key=lambda i: (i.start, i.object_pair)))


def _dedupe(items: list[PairInteraction]) -> list[PairInteraction]:
    out: dict[tuple, PairInteraction] = {}
    for it in items:
        key = (tuple(sorted(it.object_pair)), it.type, tuple(it.actors))
        if key in out:
            out[key].end = max(out[key].end, it.end)
        else:
            out[key] = it
    return list(out.values())

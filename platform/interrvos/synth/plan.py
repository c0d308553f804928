"""Planning a synthetic video: who is in it (the cast), how its time splits into episodes, and in
each episode who does what, where.

The cast persists for the whole video. Static objects never move. A multi-instance group moves in
formation in every episode. The other objects are paired up afresh each episode for scripted
events; an unpaired one only moves, or acts on a static object (orbits or approaches it). Between
episodes the moving objects glide to their next starting places; those glides are no event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from interrvos.config import SynthConfig
from interrvos.synth.appearance import PALETTE, TEXTURES
from interrvos.synth.events import BIDIRECTIONAL, STILL_TARGET, UNIDIRECTIONAL
from interrvos.synth.paths import Body, Choreography, Path, Stage, formation, mover
from interrvos.synth.sprites import CATEGORIES, SIZE_FRACTIONS, Sprite, make_sprite, sprite_radius

SINGLE_EPISODE_MAX = 480  # videos up to this many frames are one episode
EPISODE_FRAMES = (240, 400)  # otherwise episodes last this many frames (so every 1000 have events)
UNIDIRECTIONAL_SHARE = 0.6
CANDIDATE_PLACES = 32  # random placements tried per group; the least overlapping one wins


@dataclass(frozen=True)
class SynthObject:
    obj_id: str
    category: str
    colour: str
    size: str
    texture: str
    static: bool
    sprite: Sprite
    formation: int | None = None  # index of its multi-instance group

    @property
    def body(self) -> Body:
        return Body(self.obj_id, self.sprite)


@dataclass(frozen=True)
class _Placed:
    path: np.ndarray  # (T, 2) or (1, 2) for something that stays put
    bound: float


@dataclass
class Episode:
    start: int  # global frames [start, end)
    end: int
    positions: dict[str, np.ndarray]  # obj_id -> (end - start, 2) sprite centres in pixels
    z_order: list[str]  # back to front
    events: list[dict]  # meta form, global frames; the renderer fills in 'contact_frame'
    multi_instance: list[dict]


def split_episodes(rng: np.random.Generator, num_frames: int) -> list[tuple[int, int]]:
    if num_frames <= SINGLE_EPISODE_MAX:
        return [(0, num_frames)]
    spans, start = [], 0
    lo, hi = EPISODE_FRAMES
    while num_frames - start > SINGLE_EPISODE_MAX:
        length = int(rng.integers(lo, min(hi, num_frames - start - lo) + 1))
        spans.append((start, start + length))
        start += length
    spans.append((start, num_frames))
    return spans


def _pick(rng: np.random.Generator, options) -> str:
    options = list(options)
    return options[int(rng.integers(len(options)))]


def make_cast(rng: np.random.Generator, cfg: SynthConfig) -> list[SynthObject]:
    """Objects '1'..'N' with distinct (category, colour) except the look-alike multi-instance group."""
    n = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
    group = int(rng.integers(2, min(3, n - 2) + 1)) if n >= 4 and rng.random() < 0.55 else 0
    spare = n - group - 2  # keep two free objects so every episode can hold an event
    statics = int(rng.integers(0, min(2, spare) + 1)) if spare > 0 else int(n == 1 and rng.random() < 0.3)
    roles = ["group"] * group + ["static"] * statics + ["free"] * (n - group - statics)
    roles = [roles[i] for i in rng.permutation(len(roles))]
    used: set[tuple[str, str]] = set()
    shared: tuple[str, str, str, str, Sprite] | None = None
    cast = []
    for i, role in enumerate(roles):
        if role == "group" and shared is not None:
            category, colour, size, texture, sprite = shared
        else:
            # Distinct looks keep every object describable on its own: fresh colours while the
            # palette lasts, and never the same (category, colour) twice while there are others.
            fresh = [c for c in PALETTE if c not in {col for _, col in used}] or list(PALETTE)
            for _ in range(100):
                category, colour = _pick(rng, CATEGORIES), _pick(rng, fresh)
                if (category, colour) not in used:
                    break
            size, texture = _pick(rng, SIZE_FRACTIONS), _pick(rng, TEXTURES)
            sprite = make_sprite(category, colour, texture, sprite_radius(size, cfg.width, cfg.height), rng)
            used.add((category, colour))
            if role == "group":
                shared = (category, colour, size, texture, sprite)
        cast.append(SynthObject(str(i + 1), category, colour, size, texture, role == "static", sprite,
                                0 if role == "group" else None))
    return cast


class Director:
    """Plans episodes one after another, remembering where every object stopped."""

    def __init__(self, rng: np.random.Generator, cast: list[SynthObject], width: int, height: int,
                 first_verb: str | None = None):
        self.rng, self.cast, self.size = rng, cast, np.array([width, height], np.float64)
        self.first_verb = first_verb  # the video's first event, so that verbs stay balanced across videos
        self.unit = float(min(width, height))
        self.by_id = {o.obj_id: o for o in cast}
        self.pos: dict[str, np.ndarray] = {}
        self.statics: list[_Placed] = []
        self.planned = 0  # episodes so far
        for o in cast:  # statics first: later scripts are laid out around them
            if o.static:
                b = o.sprite.bound
                here = self._place({o.obj_id: np.zeros((1, 2))}, self.statics)
                self.pos[o.obj_id] = here
                self.statics.append(_Placed(here[None], b))

    def plan(self, start: int, end: int) -> Episode:
        rng = self.rng
        glide = min(max(12, (end - start) // 8), 40) if self.planned else 0  # the first starts in place
        self.planned += 1
        frames = end - start - glide
        groups: list[tuple[Choreography, np.ndarray | None]] = []
        free = [o for o in self.cast if not o.static and o.formation is None]
        free = [free[i] for i in rng.permutation(len(free))]
        pairs = int(rng.integers(1, len(free) // 2 + 1)) if len(free) >= 2 else 0
        verb, self.first_verb = self.first_verb, None
        if verb == "carry" and pairs:  # a carrier must be bigger than what it carries
            bigger = [o for o in free[1:] if o.sprite.radius != free[0].sprite.radius]
            if bigger:
                free.remove(bigger[0])
                free.insert(1, bigger[0])
        for i in range(pairs):
            groups.append((self._event(frames, free[2 * i], free[2 * i + 1], verb if i == 0 else None), None))
        spare_statics = [o for o in self.cast if o.static]
        for o in free[2 * pairs :]:
            groups.append(self._solo(frames, o, spare_statics))
        members = [o.body for o in self.cast if o.formation is not None]
        if members:
            groups.append((self._fit(lambda st: formation(st, members), frames), None))

        offsets = self._layout(groups)
        positions = {oid: np.repeat(p[None], end - start, axis=0) for oid, p in self.pos.items()
                     if self.by_id[oid].static}
        events, multi = [], []
        for (choreo, _), offset in zip(groups, offsets):
            for oid, local in choreo.paths.items():
                if self.by_id[oid].static:
                    continue
                placed = local + offset
                lead_in = Path(self.pos.get(oid, placed[0])).move_to(placed[0], glide, "in_out").build(glide)
                positions[oid] = np.concatenate([lead_in, placed])
            shift = start + glide
            if choreo.event:
                events.append(_to_global(choreo.event, shift) | {"contact_frame": None})
            if choreo.formation:
                f = choreo.formation
                multi.append({"object_ids": f["object_ids"], "category": self.by_id[f["object_ids"][0]].category,
                              "motion": f["motion"], "start_frame": f["start"] + shift, "end_frame": f["end"] + shift})
        for oid, p in positions.items():
            self.pos[oid] = p[-1]
        return Episode(start, end, positions, self._z_order(groups), events, multi)

    def _event(self, frames: int, a: SynthObject, b: SynthObject, verb: str | None = None) -> Choreography:
        rng = self.rng
        if verb is None:
            verb = _pick(rng, UNIDIRECTIONAL if rng.random() < UNIDIRECTIONAL_SHARE else BIDIRECTIONAL)
        if verb in UNIDIRECTIONAL:
            if verb == "carry":
                if a.sprite.radius == b.sprite.radius:  # only a bigger object can carry a smaller one
                    verb = _pick(rng, [v for v in UNIDIRECTIONAL if v != "carry"])
                elif a.sprite.radius < b.sprite.radius:
                    a, b = b, a
            script = UNIDIRECTIONAL[verb]
        else:
            script = BIDIRECTIONAL[verb]
        return self._fit(lambda st: script(st, a.body, b.body), frames)

    def _solo(self, frames: int, o: SynthObject, statics: list[SynthObject]) -> tuple[Choreography, np.ndarray | None]:
        """An unpaired object: acts on a static object when one is free and there is room, else only moves."""
        if statics and self.rng.random() < 0.5:
            target = statics.pop(int(self.rng.integers(len(statics))))
            script = UNIDIRECTIONAL[_pick(self.rng, STILL_TARGET)]
            anchor = self.pos[target.obj_id]
            choreo = self._fit(lambda st: script(st, o.body, target.body), frames, anchor)
            if choreo is not None:
                return choreo, anchor
        return self._fit(lambda st: mover(st, o.body), frames), None

    def _extent(self, choreo: Choreography) -> tuple[np.ndarray, np.ndarray]:
        lo = np.min([p.min(axis=0) - self.by_id[o].sprite.bound for o, p in choreo.paths.items()], axis=0)
        hi = np.max([p.max(axis=0) + self.by_id[o].sprite.bound for o, p in choreo.paths.items()], axis=0)
        return lo, hi

    def _fit(self, make: Callable[[Stage], Choreography], frames: int, anchor: np.ndarray | None = None):
        """A script's motion that fits the frame: new random draws, then a smaller unit, until it does.
        With an anchor the group's origin is fixed there (None when it cannot fit); without one, a
        script that never fits is used anyway and its objects partly leave the frame."""
        unit = self.unit
        choreo = None
        for attempt in range(9):
            choreo = make(Stage(self.rng, frames, unit))
            lo, hi = self._extent(choreo)
            if anchor is None and np.all(hi - lo <= self.size):
                return choreo
            if anchor is not None and np.all(anchor + lo >= 0) and np.all(anchor + hi <= self.size):
                return choreo
            if attempt % 3 == 2:
                unit *= 0.8
        return None if anchor is not None else choreo

    def _place(self, paths: dict[str, np.ndarray], placed: list[_Placed]) -> np.ndarray:
        """An offset that keeps the group inside the frame and, frame by frame, away from the
        objects already placed (least total overlap of bounding circles over time wins)."""
        lo, hi = self._extent(Choreography(paths))
        low, high = -lo, self.size - hi
        centre = (self.size - lo - hi) / 2
        low, high = np.where(low <= high, low, centre), np.where(low <= high, high, centre)
        candidates = low + (high - low) * self.rng.random((CANDIDATE_PLACES, 2))  # (K, 2)
        cost = np.zeros(CANDIDATE_PLACES)
        for oid, path in paths.items():
            bound = self.by_id[oid].sprite.bound
            for other in placed:
                gap = np.linalg.norm(path[None] + candidates[:, None] - other.path[None], axis=2)  # (K, T)
                cost += np.clip(bound + other.bound + 2 - gap, 0, None).sum(axis=1)
        return candidates[int(np.argmin(cost))]

    def _layout(self, groups: list[tuple[Choreography, np.ndarray | None]]) -> list[np.ndarray]:
        """Offsets of the groups: anchored ones stay put; events get room first, then the rest."""
        placed = list(self.statics)
        offsets: list[np.ndarray | None] = [anchor for _, anchor in groups]
        for (choreo, anchor) in groups:
            if anchor is not None:
                placed += [_Placed(p + anchor, self.by_id[o].sprite.bound) for o, p in choreo.paths.items()]
        order = sorted(range(len(groups)), key=lambda i: groups[i][0].event is None)
        for i in order:
            if offsets[i] is None:
                paths = groups[i][0].paths
                offsets[i] = self._place(paths, placed)
                placed += [_Placed(p + offsets[i], self.by_id[o].sprite.bound) for o, p in paths.items()]
        return offsets  # type: ignore[return-value]

    def _z_order(self, groups: list[tuple[Choreography, np.ndarray | None]]) -> list[str]:
        """Statics at the back, then objects that only move, then event groups (their `front` last)."""
        rng = self.rng
        back = [o.obj_id for o in self.cast if o.static]
        middle = [oid for c, _ in groups if c.event is None for oid in c.paths]
        middle = [middle[i] for i in rng.permutation(len(middle))]
        top: list[str] = []
        event_groups = [c for c, _ in groups if c.event is not None]
        for gi in rng.permutation(len(event_groups)):
            c = event_groups[gi]
            rest = [o for o in c.paths if o not in c.front and o not in back]
            top += [rest[i] for i in rng.permutation(len(rest))] + list(c.front)
        return back + middle + top


def _to_global(event: dict, shift: int) -> dict:
    out = {k: v for k, v in event.items() if k not in ("start", "end")}
    out["start_frame"], out["end_frame"] = event["start"] + shift, event["end"] + shift
    return out

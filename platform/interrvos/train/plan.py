"""The sample plan: which frames and expressions of which video every (step, rank, micro-batch, slot)
of a run trains on. Pure and deterministic in (seed, epoch), so a resumed run sees exactly the samples
an uninterrupted one would, and every ZeRO stage sees the same batches.

A sample is T frames of one video (random, in order) and up to E of its expressions asked in one
conversation, at least one of them a unidirectional interaction when the video has one (the paper's
recipe). An epoch covers every expression of each source once (its "natural" samples: the video's
expressions shuffled into groups of E); sources are mixed by `ratio` (a source's share of an epoch's
samples; a source with fewer natural samples than its share is cycled, reshuffled each time).
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from interrvos.data.mevis import Dataset
from interrvos.errors import ConfigError
from interrvos.model.tokens import is_unidirectional


@dataclass(frozen=True)
class VideoInfo:
    """What planning needs of a video: its frame count and its expressions (id, unidirectional)."""

    video: str
    num_frames: int
    expressions: tuple[tuple[str, bool], ...]


@dataclass(frozen=True)
class SourceInfo:
    path: str
    ratio: float
    videos: tuple[VideoInfo, ...]

    @property
    def num_expressions(self) -> int:
        return sum(len(v.expressions) for v in self.videos)


def source_info(ds: Dataset, ratio: float, videos: Sequence[str] | None = None) -> SourceInfo:
    """A loaded dataset as planning input (videos without expressions or frames are left out)."""
    wanted = set(videos) if videos is not None else None
    infos = []
    for vid, v in ds.videos.items():
        if (wanted is not None and vid not in wanted) or not v.expressions or not v.frames:
            continue
        exps = tuple((exp_id, is_unidirectional(e)) for exp_id, e in v.expressions.items())
        infos.append(VideoInfo(vid, len(v.frames), exps))
    return SourceInfo(ds.root, ratio, tuple(infos))


def group_expressions(v: VideoInfo, per_sample: int, rng: random.Random) -> list[tuple[str, ...]]:
    """The video's expressions shuffled into groups of `per_sample` (each has min(E, n) distinct
    expressions; the last group is topped up with others), each with a unidirectional one if the video
    has any (the rule wins over covering every expression in the rare case both cannot hold)."""
    ids = [e for e, _ in v.expressions]
    uni = [e for e, u in v.expressions if u]
    rng.shuffle(ids)
    size = min(per_sample, len(ids))
    groups = [ids[i:i + size] for i in range(0, len(ids), size)]
    last = groups[-1]
    if len(last) < size:
        last += rng.sample([e for e in ids if e not in last], size - len(last))
    uni_set = set(uni)
    for g in groups if uni else []:
        if uni_set & set(g):
            continue
        # Swap with a group holding two unidirectional ones, else overwrite a duplicate (a top-up), else any.
        donor = next((h for h in groups if len(uni_set & set(h)) >= 2), None)
        swappable = [x for x in g if donor is not None and x not in donor]
        if swappable:
            u, x = rng.choice(sorted(uni_set & set(donor))), rng.choice(swappable)
            donor[donor.index(u)], g[g.index(x)] = x, u
            continue
        counts = Counter(e for h in groups for e in h)
        dups = [i for i, e in enumerate(g) if counts[e] > 1]
        g[rng.choice(dups) if dups else rng.randrange(len(g))] = rng.choice([u for u in uni if u not in g])
    return [tuple(g) for g in groups]


def pick_frames(num_frames: int, count: int, rng: random.Random) -> tuple[int, ...]:
    """`count` random frame indices in order (with repeats only when the video is shorter)."""
    if num_frames >= count:
        return tuple(sorted(rng.sample(range(num_frames), count)))
    return tuple(sorted(rng.choices(range(num_frames), k=count)))


def apportion(total: int, ratios: Sequence[float]) -> list[int]:
    """Split `total` by `ratios` (largest remainders, ties to the earlier source)."""
    exact = [total * r / sum(ratios) for r in ratios]
    counts = [math.floor(x) for x in exact]
    order = sorted(range(len(ratios)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _natural(src: SourceInfo, per_sample: int, rng: random.Random) -> list[tuple[str, tuple[str, ...]]]:
    return [(v.video, g) for v in src.videos for g in group_expressions(v, per_sample, rng)]


def natural_count(src: SourceInfo, per_sample: int) -> int:
    return sum(math.ceil(len(v.expressions) / min(per_sample, len(v.expressions))) for v in src.videos)


@dataclass(frozen=True)
class Sample:
    source: int
    video: str
    frames: tuple[int, ...]
    expressions: tuple[str, ...]
    seed: int  # the sample's own randomness (question wordings, augmentation)


class SamplePlan:
    """Samples of every epoch, and their placement into steps, ranks, micro-batches and slots."""

    def __init__(self, sources: Sequence[SourceInfo], *, frames: int, expressions: int, samples_per_epoch: int | None,
                 batch_size: int, grad_accum: int, world_size: int, seed: int):  # fmt: skip
        empty = [s.path for s in sources if not s.videos]
        if empty:
            raise ConfigError(f"data.sources: no video with expressions in {', '.join(empty)} "
                              "(annotate the dataset first, or check the `videos` filter)")  # fmt: skip
        self.sources, self.frames, self.expressions, self.seed = list(sources), frames, expressions, seed
        self.batch_size, self.grad_accum, self.world_size = batch_size, grad_accum, world_size
        self.epoch_size = samples_per_epoch or sum(natural_count(s, expressions) for s in sources)
        self.global_batch = batch_size * grad_accum * world_size
        self.steps_per_epoch = self.epoch_size // self.global_batch
        if self.steps_per_epoch < 1:
            raise ConfigError(
                f"an epoch has {self.epoch_size} samples, fewer than one optimizer step needs ({self.global_batch} = "
                f"batch_size {batch_size} x grad_accum {grad_accum} x {world_size} workers); lower them or set "
                "data.samples_per_epoch")  # fmt: skip
        self._cache: dict[int, list[Sample]] = {}

    def epoch(self, epoch: int) -> list[Sample]:
        """The epoch's samples in training order."""
        if epoch in self._cache:
            return self._cache[epoch]
        counts = apportion(self.epoch_size, [s.ratio for s in self.sources])
        picked: list[tuple[int, str, tuple[str, ...]]] = []
        for i, (src, count) in enumerate(zip(self.sources, counts, strict=True)):
            cycle = 0
            while count > 0:
                rng = random.Random(f"{self.seed}/{epoch}/{i}/{cycle}")
                natural = _natural(src, self.expressions, rng)
                rng.shuffle(natural)
                picked += [(i, vid, g) for vid, g in natural[:count]]
                count -= len(natural[:count])
                cycle += 1
        random.Random(f"{self.seed}/{epoch}/mix").shuffle(picked)
        frames_of = [{v.video: v.num_frames for v in s.videos} for s in self.sources]
        out = []
        for k, (i, vid, g) in enumerate(picked):
            rng = random.Random(f"{self.seed}/{epoch}/{k}")
            out.append(Sample(i, vid, pick_frames(frames_of[i][vid], self.frames, rng), g, rng.getrandbits(31)))
        self._cache = {epoch: out}  # one epoch at a time
        return out

    def rows(self, rank: int, start_step: int, total_steps: int) -> Iterator[dict]:
        """Rank's rows for steps [start_step, total_steps), ordered by (step, micro, slot)."""
        per_rank = self.batch_size * self.grad_accum
        for step in range(start_step, total_steps):
            epoch, index = divmod(step, self.steps_per_epoch)
            samples = self.epoch(epoch)
            first = index * self.global_batch + rank * per_rank
            for j, s in enumerate(samples[first:first + per_rank]):
                micro, slot = divmod(j, self.batch_size)
                yield {"step": step, "micro": micro, "slot": slot, "epoch": epoch, "source": s.source,
                       "video": s.video, "frames": list(s.frames), "expressions": list(s.expressions), "seed": s.seed}

    def total_steps(self, epochs: int, max_steps: int | None) -> int:
        return max_steps or epochs * self.steps_per_epoch

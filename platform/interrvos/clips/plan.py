"""The clip rule and object filters of the paper's data pipeline, as pure functions.

REFERENCE.md ("Source data and clip rule"): split a video into non-overlapping bins, drop short
bins, keep the first and the last remaining bin, and cut each kept bin's first frames into a clip.
Then drop objects that are barely visible in the clip, and, in crowded clips, small objects and
objects the LLM stages would hardly see on the sampled frames.
"""

from __future__ import annotations

from dataclasses import dataclass

from interrvos.config import ClipRuleConfig
from interrvos.data.rle import RLE, rle_area


@dataclass(frozen=True)
class ClipSpan:
    index: int  # position among the video's kept bins -> clip id suffix
    start: int  # first frame (inclusive) in the source video
    end: int  # last frame (exclusive)

    @property
    def num_frames(self) -> int:
        return self.end - self.start


def clip_id(video_id: str, index: int) -> str:
    return f"{video_id}_clip{index:03d}"


def plan_clips(num_frames: int, rule: ClipRuleConfig) -> list[ClipSpan]:
    """Clips of a video with `num_frames` frames under `rule` (empty when no bin is long enough)."""
    bins = [(s, min(s + rule.bin_frames, num_frames)) for s in range(0, num_frames, rule.bin_frames)]
    kept = [(s, e) for s, e in bins if e - s >= rule.min_bin_frames]
    if rule.keep_bins == "first_last" and len(kept) > 2:
        kept = [kept[0], kept[-1]]
    return [ClipSpan(i, s, min(s + rule.clip_frames, e)) for i, (s, e) in enumerate(kept)]


def sample_frames(num_frames: int, count: int) -> list[int]:
    """`count` frame indices at the midpoints of equal segments of a clip (fewer if the clip is shorter)."""
    return sorted({int((i + 0.5) * num_frames / count) for i in range(count)})


def _visible(mask: RLE | None) -> bool:
    return mask is not None and rle_area(mask) > 0


def filter_objects(
    tracks: dict[str, list[RLE | None]],
    sampled: list[int],
    frame_area: int,
    rule: ClipRuleConfig,
) -> tuple[list[str], dict[str, str]]:
    """Apply the object filters to a clip's per-object mask tracks (already cut to the clip).

    Returns (kept object ids in input order, {dropped object id: filter name}).
    """
    dropped: dict[str, str] = {}
    remaining = []
    for obj_id, masks in tracks.items():
        if sum(_visible(m) for m in masks) <= rule.max_hidden_visible_frames:
            dropped[obj_id] = "few_visible_frames"
        else:
            remaining.append(obj_id)
    if len(remaining) > rule.crowd_size:
        for obj_id in list(remaining):
            masks = tracks[obj_id]
            largest = max((rle_area(m) for m in masks if m is not None), default=0)
            if largest <= rule.min_area_fraction * frame_area:
                dropped[obj_id] = "small_in_crowded_clip"
            elif sum(_visible(masks[i]) for i in sampled) <= rule.min_sampled_appearances:
                dropped[obj_id] = "rarely_sampled_in_crowded_clip"
        remaining = [o for o in remaining if o not in dropped]
    return remaining, dropped

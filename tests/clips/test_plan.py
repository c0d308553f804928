"""The clip rule and object filters, on the edge cases the paper's numbers create."""

from __future__ import annotations

import numpy as np
import pytest

from interrvos.clips.plan import clip_id, filter_objects, plan_clips, sample_frames
from interrvos.config import ClipRuleConfig
from interrvos.data.rle import encode_mask

RULE = ClipRuleConfig()


@pytest.mark.parametrize(
    ("num_frames", "expected"),
    [
        (150, []),
        (199, []),
        (200, [(0, 200)]),
        (500, [(0, 500)]),
        (999, [(0, 500)]),
        (1000, [(0, 500)]),
        (1001, [(0, 500)]),  # the 1-frame second bin is dropped
        (1199, [(0, 500)]),  # 199-frame second bin is dropped
        (1200, [(0, 500), (1000, 1200)]),  # 200-frame second bin is kept, shorter than 500
        (2000, [(0, 500), (1000, 1500)]),
        (2500, [(0, 500), (2000, 2500)]),  # first and last of three bins
        (5000, [(0, 500), (4000, 4500)]),
    ],
)
def test_plan_clips_follows_the_paper_rule(num_frames, expected):
    spans = plan_clips(num_frames, RULE)
    assert [(s.start, s.end) for s in spans] == expected
    assert [s.index for s in spans] == list(range(len(expected)))


def test_plan_clips_all_bins_when_configured():
    spans = plan_clips(3500, RULE.model_copy(update={"keep_bins": "all"}))
    assert [(s.start, s.end) for s in spans] == [(0, 500), (1000, 1500), (2000, 2500), (3000, 3500)]


def test_plan_clips_every_number_comes_from_config():
    rule = ClipRuleConfig(bin_frames=100, min_bin_frames=30, clip_frames=40)
    assert [(s.start, s.end) for s in plan_clips(330, rule)] == [(0, 40), (300, 330)]
    assert [(s.start, s.end) for s in plan_clips(329, rule)] == [(0, 40), (200, 240)]  # 29-frame tail dropped
    assert plan_clips(29, rule) == []


def test_clip_ids_are_zero_padded():
    assert clip_id("vid", 0) == "vid_clip000"
    assert clip_id("vid", 12) == "vid_clip012"


def test_sample_frames_are_segment_midpoints():
    assert sample_frames(500, 16) == [int((i + 0.5) * 500 / 16) for i in range(16)]
    assert sample_frames(160, 16) == list(range(5, 160, 10))
    assert sample_frames(8, 16) == list(range(8))  # short clip: every frame once
    assert all(0 <= f < 37 for f in sample_frames(37, 16))


H, W = 100, 100
FRAMES = 50
SAMPLED = sample_frames(FRAMES, 16)


def _track(visible: list[int], size: int = 20) -> list:
    """A square of `size` px visible on the given frames."""
    m = np.zeros((H, W), np.uint8)
    m[:size, :size] = 1
    rle = encode_mask(m)
    return [rle if i in visible else None for i in range(FRAMES)]


def test_objects_visible_in_ten_frames_or_fewer_are_dropped():
    tracks = {"1": _track(list(range(10))), "2": _track(list(range(11))), "3": _track([])}
    kept, dropped = filter_objects(tracks, SAMPLED, H * W, RULE)
    assert kept == ["2"]
    assert dropped == {"1": "few_visible_frames", "3": "few_visible_frames"}


def test_object_appearing_only_outside_the_clip_is_dropped():
    # Masks are cut to the clip before filtering: an object seen only before the clip has no mask in it.
    full = _track(list(range(FRAMES)))
    video_track = full + [None] * FRAMES  # visible in frames 0..49 of the video only
    clip_part = video_track[FRAMES:]  # the clip is frames 50..99
    kept, dropped = filter_objects({"7": clip_part}, SAMPLED, H * W, RULE)
    assert kept == [] and dropped == {"7": "few_visible_frames"}


def test_empty_masks_do_not_count_as_visible():
    empty = encode_mask(np.zeros((H, W), np.uint8))
    kept, dropped = filter_objects({"1": [empty] * FRAMES}, SAMPLED, H * W, RULE)
    assert dropped == {"1": "few_visible_frames"}


def test_crowd_filters_apply_only_with_more_than_three_objects():
    every = list(range(FRAMES))
    tiny = _track(every, size=10)  # 100 px = exactly 1% of the frame: dropped when crowded
    unsampled = _track([f for f in every if f not in SAMPLED[2:]])  # in only 2 sampled frames
    three = {"1": _track(every), "2": tiny, "3": unsampled}
    assert filter_objects(three, SAMPLED, H * W, RULE) == (["1", "2", "3"], {})

    four = {**three, "4": _track(every)}
    kept, dropped = filter_objects(four, SAMPLED, H * W, RULE)
    assert kept == ["1", "4"]
    assert dropped == {"2": "small_in_crowded_clip", "3": "rarely_sampled_in_crowded_clip"}


def test_crowd_counts_objects_remaining_after_the_visibility_filter():
    every = list(range(FRAMES))
    tracks = {"1": _track(every), "2": _track(every), "3": _track(every, size=10), "4": _track([1, 2])}
    kept, dropped = filter_objects(tracks, SAMPLED, H * W, RULE)
    assert kept == ["1", "2", "3"]  # only three remain after dropping "4", so "3" (small) stays
    assert dropped == {"4": "few_visible_frames"}


def test_object_slightly_above_one_percent_is_kept_in_a_crowd():
    every = list(range(FRAMES))
    tracks = {str(i): _track(every) for i in range(1, 5)}
    tracks["5"] = _track(every, size=11)  # 121 px > 1%
    kept, _ = filter_objects(tracks, SAMPLED, H * W, RULE)
    assert "5" in kept

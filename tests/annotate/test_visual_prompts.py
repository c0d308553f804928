"""The highlighted frames the vision model sees (REFERENCE.md 'Visual prompts')."""

from __future__ import annotations

import numpy as np

from interrvos.annotate.visual_prompts import (SINGLE_COLOUR, downscale_tall, first_clear_frame, object_colours,
                                               render_multi_object, render_single_object)


def square(h, w, y, x, size):
    m = np.zeros((h, w), bool)
    m[y:y + size, x:x + size] = True
    return m


def test_single_object_fill_and_label_on_the_first_clear_frame_outline_elsewhere():
    h, w = 100, 100
    frames = [np.full((h, w, 3), 100, np.uint8) for _ in range(3)]
    masks = [square(h, w, 10, 10, 5), square(h, w, 20, 20, 30), square(h, w, 30, 30, 30)]  # 0.25% then 9%
    assert first_clear_frame(masks, 0.005) == 1
    out = render_single_object(frames, masks)
    inside = out[1][30, 22]  # filled pixel away from the label: 70% frame + 30% red
    assert tuple(inside) == (int(100 * 0.7 + 255 * 0.3), 70, 70)
    assert (out[1][21:49, 21:49] == 0).all(axis=-1).any()  # the [0] label's black box
    # Other frames: interior untouched, the 2 px outline red.
    assert tuple(out[2][45, 45]) == (100, 100, 100) and tuple(out[2][30, 45]) == SINGLE_COLOUR
    assert tuple(out[0][12, 12]) == (100, 100, 100)  # too small to be the labelled frame: outline only


def test_multi_object_distinct_named_colours_and_labels():
    h, w = 120, 160
    frames = [np.full((h, w, 3), 90, np.uint8)]
    masks = {"1": [square(h, w, 10, 10, 40)], "7": [square(h, w, 60, 90, 40)]}
    colours = object_colours(list(masks))
    assert colours["1"][0] != colours["7"][0]
    (img,) = render_multi_object(frames, masks)
    expected = (np.array([90, 90, 90]) * 0.7 + np.array(colours["7"][1]) * 0.3).astype(np.uint8)
    assert tuple(img[65, 95]) == tuple(expected)
    centre = img[78:83, 105:115]
    assert (centre == 0).all(axis=-1).any() and (centre > 200).all(axis=-1).any()  # white text on black box


def test_tall_frames_are_halved_others_kept():
    assert downscale_tall(np.zeros((1200, 700, 3), np.uint8)).shape == (600, 350, 3)
    assert downscale_tall(np.zeros((720, 1280, 3), np.uint8)).shape == (720, 1280, 3)
    assert downscale_tall(np.zeros((900, 500, 3), np.uint8)).shape == (900, 500, 3)

"""The held-out linear probe (real torch, no mocks): it reads a label from a feature that carries it, stays at
the floor on one that does not, and never scores a video it was fitted on; the expression words it probes."""

from __future__ import annotations

import torch

from interrvos.probe.features import colour_word, shape_word, source_video
from interrvos.probe.probe import fit_probe, grouped_folds, heldout_accuracy


def _rows(n_videos: int = 20, per_video: int = 6, classes: int = 4, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    labels = [f"c{int(i)}" for i in torch.randint(classes, (n_videos * per_video,), generator=gen)]
    groups = [f"v{i // per_video:02d}_clip000" for i in range(len(labels))]
    return labels, [source_video(g) for g in groups], gen


def test_probe_reads_a_feature_that_carries_the_label_and_not_one_that_does_not():
    labels, groups, gen = _rows()
    d = 16
    directions = torch.randn(4, d, generator=gen)
    carrying = torch.stack([directions[int(y[1:])] for y in labels]) + 0.5 * torch.randn(len(labels), d, generator=gen)
    blind = torch.randn(len(labels), d, generator=gen)
    good = heldout_accuracy(carrying, labels, groups, folds=5)
    bad = heldout_accuracy(blind, labels, groups, folds=5)
    assert good.rows == bad.rows == len(labels) and good.classes == 4
    assert good.accuracy > 0.9, good
    assert bad.accuracy < good.majority + 0.15, bad  # chance is 0.25, the majority class ~0.3


def test_a_video_specific_feature_does_not_pass_the_grouped_split():
    # Each video's rows share one random code and one label: a probe fitted on the same videos would read the
    # label off the code; held out by video it cannot.
    labels, groups, gen = _rows(n_videos=30, per_video=4)
    labels = [labels[i - i % 4] for i in range(len(labels))]  # one label per video
    codes = {g: torch.randn(32, generator=gen) for g in set(groups)}
    x = torch.stack([codes[g] for g in groups])
    same_videos = fit_probe(x, labels).predict(x.double())
    assert sum(p == y for p, y in zip(same_videos, labels, strict=True)) / len(labels) > 0.95
    assert heldout_accuracy(x, labels, groups, folds=5).accuracy < 0.5


def test_grouped_folds_keep_each_video_in_one_fold_and_cover_every_row():
    groups = [f"v{i % 7}" for i in range(50)]
    folds = grouped_folds(groups, 5, seed=3)
    assert sorted(i for f in folds for i in f) == list(range(50))
    assert all(len({groups[i] for i in f} & {groups[i] for i in g}) == 0
               for a, f in enumerate(folds) for b, g in enumerate(folds) if a != b)  # fmt: skip


def test_rows_without_the_word_are_left_out_and_expression_words_are_found():
    assert colour_word("The small Red star pushing a blue circle") == "red"
    assert shape_word("two orange triangles moving up") == "triangle"
    assert colour_word("the object moving left") is None and shape_word("the red one") is None
    assert source_video("synth_s1_00003_clip001") == "synth_s1_00003"
    labels, groups, gen = _rows()
    labels[:10] = [None] * 10
    assert heldout_accuracy(torch.randn(len(labels), 4, generator=gen), labels, groups).rows == len(labels) - 10

"""`interrvos demo` end to end on a smaller embedded default (the session's local Ray)."""

from __future__ import annotations

import re

import pytest

from interrvos.config import ClipRuleConfig, DemoConfig, DemoTrainingConfig, SynthConfig
from interrvos.demo import run_demo


@pytest.mark.slow
def test_demo_writes_a_report_with_tables_and_pictures(ray_cluster, tmp_path):
    training = DemoTrainingConfig(synth=SynthConfig(num_videos=4, num_frames=100, width=96, height=72, seed=3),
                                  clip=ClipRuleConfig(min_bin_frames=100), val_fraction=0.5, max_steps=6)
    cfg = DemoConfig(out=str(tmp_path / "demo"), include_real_videos=False,
                     synth=SynthConfig(num_videos=1, num_frames=1250, width=128, height=96),
                     clip=ClipRuleConfig(clip_frames=120), training=training)
    report = run_demo(cfg)
    text = open(report).read()
    assert "The dataset folders are valid" in text
    assert "| synth_00000_clip001 | synth_00000 | 1000-1119 |" in text  # the last bin's clip
    assert "| oracle | 100.0 |" in text  # the baseline table checks the harness
    assert "## Annotation (four LLM stages)" in text and "Stage 3 against the synthetic ground truth" in text
    assert "## Training: the tiny ReVIOsA learns" in text and "ran 6 optimizer steps on 2 CPU workers" in text
    assert re.search(r"\| ReVIOsA-tiny trained \(6 steps\) \|", text) and "| baseline: empty |" in text
    assert "Cross-expression mask IoU of the trained model" in text and "| baseline: largest_object | " in text
    assert "### The sweep: trained and untrained x K, J&F x100 with 95% intervals" in text  # interrvos.sweep
    assert re.search(r"\| untrained K=2 \| c[0-9a-f]{10} \| [0-9.]+ \[[0-9.]+, [0-9.]+\]", text) and "jf_vs_K" in text
    assert "## Serving: the trained checkpoint on Ray Serve" in text and "served_overlay.png" in text
    assert "equal to `interrvos evaluate` on the same file." in text and "interrvos serve all --set" in text
    # Every picture the report links exists.
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert any("loss_curve" in p for p in links) and any("visual_prompts" in p or "annotate/" in p for p in links)
    for rel in links:
        assert (tmp_path / "demo" / rel).stat().st_size > 1000, rel

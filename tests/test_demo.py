"""`interrvos demo` end to end on a smaller embedded default (the session's local Ray)."""

from __future__ import annotations

import pytest

from interrvos.config import ClipRuleConfig, DemoConfig, SynthConfig
from interrvos.demo import run_demo


@pytest.mark.slow
def test_demo_writes_a_report_with_tables_and_a_contact_sheet(ray_cluster, tmp_path):
    cfg = DemoConfig(out=str(tmp_path / "demo"), include_real_videos=False,
                     synth=SynthConfig(num_videos=2, num_frames=1250, width=128, height=96),
                     clip=ClipRuleConfig(clip_frames=120))
    report = run_demo(cfg)
    text = open(report).read()
    assert "The dataset folder is valid" in text
    assert "| synth_00000_clip001 | synth_00000 | 1000-1119 |" in text  # the last bin's clip
    assert "| oracle | 100.0 |" in text  # the baseline table checks the harness
    png = tmp_path / "demo" / "report" / "contact_sheet.png"
    assert png.stat().st_size > 10_000 and "![contact sheet](report/contact_sheet.png)" in text

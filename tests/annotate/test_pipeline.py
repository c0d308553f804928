"""`interrvos annotate` end to end on the session's local Ray: synth -> extract -> annotate -> validate,
with the local backend and with the openai backend against the stand-in server; resume."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from interrvos.annotate.config import AnnotateConfig, LLMPoolConfig, PoolsConfig
from interrvos.annotate.pipeline import run_annotate
from interrvos.annotate.report import annotate_for_demo, report_section
from interrvos.data import storage
from interrvos.data.mevis import load_dataset
from interrvos.data.validate import validate_dataset

SMALL = LLMPoolConfig(min_size=1, max_size=1, clips_in_flight=4)


def config(extracted, out, **over) -> AnnotateConfig:
    fields = {"dataset": extracted["dataset"], "out": str(out), "ground_truth": extracted["synth"],
              "pools": PoolsConfig(stage1=SMALL, stage2=SMALL, stage3=SMALL, stage4=SMALL),
              "split": {"val_fraction": 0.34}, **over}
    return AnnotateConfig.model_validate(fields)


def meta_bytes(out: Path) -> dict[str, bytes]:
    return {s: (out / s / f).read_bytes() for s in ("train", "valid") for f in ("meta_expressions.json", "mask_dict.json")}


@pytest.mark.slow
def test_local_backend_end_to_end_validates_and_resumes(extracted, tmp_path):
    """What the demo runs (annotate_for_demo: local backend, templates), then its report section."""
    out = tmp_path / "run" / "annotated"
    summary = annotate_for_demo(extracted["dataset"], str(out), ground_truth=extracted["synth"])
    data, run = summary["dataset"], summary["run"]
    real_clip = next(c for c in data["clips_without_objects"])
    assert data["clips"] == 4 and len(data["clips_without_objects"]) == 1 and not real_clip.startswith("synth")
    assert data["clips_unfinished"] == [] and run["errors"] == []
    assert data["caption_types"]["single_all"] >= 3 and data["caption_types"].get("interaction", 0) >= 2
    assert run["stages"]["stage1"]["llm_calls"] == run["stages"]["stage1"]["items"] > 0
    for split in ("train", "valid"):
        assert validate_dataset(str(out / split)) == [], split
    train, valid = load_dataset(str(out / "train")), load_dataset(str(out / "valid"))
    assert set(train.videos).isdisjoint(valid.videos) and valid.videos  # disjoint by source video
    assert real_clip not in train.videos and real_clip not in valid.videos
    uni = [e for _, _, e in train.all_expressions() + valid.all_expressions() if e.interaction == "unidirectional"]
    assert uni and all(len(e.actor_ids) == 1 and e.target_ids and e.actor_anno_id for e in uni)
    stats = storage.read_json(str(out / "stats" / "stats.json"))
    assert stats["train"]["videos"] == len(train.videos) and (out / "stats" / "stats.png").stat().st_size > 0
    assert 0 <= summary["quality"]["precision"] <= 1 and data["visual_prompt_samples"]
    assert (out / data["visual_prompt_samples"][0]["png"]).exists()

    markdown = report_section(str(out), str(tmp_path / "run" / "report"))
    links = re.findall(r"!\[[^]]*\]\(([^)]+)\)", markdown)
    assert links and all((tmp_path / "run" / link).exists() for link in links)
    assert "## Annotation" in markdown and "interaction" in markdown and real_clip in markdown

    before = meta_bytes(out)
    again = annotate_for_demo(extracted["dataset"], str(out), ground_truth=extracted["synth"])
    assert again["run"]["clips"] == {"done": 4} and again["run"]["total"]["llm_calls"] == 0
    assert meta_bytes(out) == before


@pytest.mark.slow
def test_openai_backend_against_the_stand_in_server(extracted, tmp_path, stand_in):
    stand_in.plan = {"expressions": ["malformed", "ok"], "merge": ["refusal"]}
    out = tmp_path / "openai"
    cfg = config(extracted, out, backend="openai",
                 openai={"base_url": stand_in.base_url, "backoff_initial_s": 0.01, "max_http_retries": 1})
    summary = run_annotate(cfg)
    run, data = summary["run"], summary["dataset"]
    assert run["errors"] == [] and data["clips_unfinished"] == []
    assert run["total"]["llm_calls"] == stand_in.requests_for()  # every call accounted for
    s2 = run["stages"]["stage2"]
    merges = sum(1 for e in stand_in.log if e.kind == "merge") // 3
    assert s2["quarantined"] == {"refusal": merges} and s2["answer_retries"] == s2["ok"] + 2 * merges
    assert run["total"]["prompt_tokens"] > 0 and run["stages"]["stage1"]["cost_usd"] > 0
    bad = storage.read_json(str(out / "quarantine.json"))
    assert len(bad) == merges and all(b["reason"] == "refusal" and len(b["raw"]) == 3 for b in bad)
    for split in ("train", "valid"):
        assert validate_dataset(str(out / split)) == [], split
    exps = [e for _, _, e in load_dataset(str(out / "train")).all_expressions()]
    assert any(e.exp.startswith("plain") for e in exps)  # the server's answers made it into the dataset
    # Re-running asks nothing again: tests/annotate/test_resume.py (also after a kill).

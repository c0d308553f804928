"""The proof's pretraining steps: each loads its job's YAML (+ the step's overrides), points it at the
proof's data and run folder, runs it (a finished run is reused), and returns its summary with
`train_overrides`, the ReVIOsA model overrides that start training from what it wrote, and `figures`,
its own measurements for the report.

- sam (`interrvos pretrain-sam`): SAM2 on masks of its own synthetic videos (not the proof's held-out ones).
- text (`interrvos pretrain-text`): the tiny MLLM reads the expressions of the proof's training split.
"""

from __future__ import annotations

import os
from typing import Any

from interrvos.config import REPO_ROOT, RayConfig, load_config
from interrvos.data import storage
from interrvos.proof.config import PretrainStep


def _yaml(step: PretrainStep) -> str:
    return step.config if os.path.isabs(step.config) else str(REPO_ROOT / step.config)


def pretrain_sam(step: PretrainStep, out: str, data: dict[str, Any], ray_cfg: RayConfig) -> dict[str, Any]:
    from interrvos.pretrain.config import PretrainConfig
    from interrvos.pretrain.run import run_pretrain

    cfg = load_config(PretrainConfig, _yaml(step), [f"storage={out}", f"data.synth.out={storage.join(out, 'synth')}",
                                                    f"data.cache={storage.join(out, 'cache')}", "log.progress=false",
                                                    *step.set])  # fmt: skip
    summary = run_pretrain(cfg.model_copy(update={"ray": ray_cfg}))
    held = summary["heldout"]
    figures = {f"held-out {k} IoU, {when}": round(v, 3) for when in ("untrained", "trained")
               for k, v in held[when].items() if k.endswith("_iou")}  # fmt: skip
    figures |= {"steps": summary["steps"], "s/step": summary["s_per_step"], "trunk": summary["trunk"]}
    return {**summary, "figures": figures, "report": summary.get("pretrain_report")}


def pretrain_text(step: PretrainStep, out: str, data: dict[str, Any], ray_cfg: RayConfig) -> dict[str, Any]:
    from interrvos.probe.text_pretrain import run_pretrain_text
    from interrvos.train.config import TrainConfig

    train = storage.join(data["annotated"], "train")
    cfg = load_config(TrainConfig, _yaml(step), [f"data.sources=[{train}]", f"storage={out}", "log.progress=false",
                                                 *step.set])  # fmt: skip
    summary = run_pretrain_text(cfg.model_copy(update={"ray": ray_cfg}))
    last = summary.get("final_metrics") or {}
    figures = {"steps": summary["steps"], **{k: round(v, 4) for k, v in last.items() if k.startswith("loss")}}
    return {**summary, "figures": figures}


PRETRAINERS = {"sam": pretrain_sam, "text": pretrain_text}


def run_pretraining(kind: str, step: PretrainStep, out: str, data: dict[str, Any], ray_cfg: RayConfig) -> dict[str, Any]:
    return PRETRAINERS[kind](step, out, data, ray_cfg)

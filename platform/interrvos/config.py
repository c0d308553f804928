"""Typed job configs: YAML files plus dotted `key=value` overrides, validated by pydantic.

Defaults are the paper's numbers. A validation error names the dotted field that is wrong.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from interrvos import run_logs
from interrvos.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_VIDEOS = REPO_ROOT.parent / "shared" / "data" / "videos"


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class RayConfig(StrictModel):
    """Where to run. No address: a small local Ray started in-process (the embedded default)."""

    address: str | None = Field(default=None, description="ray://, auto, or host:port; None starts a local Ray")
    num_cpus: int | None = Field(default=None, ge=1, description="CPUs of the local Ray (None: all)")
    object_store_mb: int = Field(default=512, ge=64)
    include_dashboard: bool = False
    log_to_driver: bool = Field(default=False, description="also copy the workers' output (and Ray's per-worker "
                                "warnings) onto this console; by default it stays in the workers' log files, linked "
                                "from <run folder>/logs/ray (interrvos.run_logs)")


class ActorPoolConfig(StrictModel):
    """An autoscaling Ray Data actor pool and what each of its actors reserves (interrvos.stages)."""

    min_size: int = Field(default=1, ge=1)
    max_size: int = Field(default=2, ge=1)
    num_cpus: float = Field(default=1.0, gt=0)
    num_gpus: float = Field(default=0.0, ge=0)
    memory_mb: int | None = Field(default=None, ge=1, description="memory each actor reserves (Ray's `memory` "
                                                                  "resource; None: no reservation)")
    resources: dict[str, float] = Field(default_factory=dict, description="custom Ray resources each actor reserves, "
                                        "e.g. {annot: 0.25}: only nodes offering `annot` run it (a node type)")

    @model_validator(mode="after")
    def _min_le_max(self) -> ActorPoolConfig:
        if self.min_size > self.max_size:
            raise ValueError(f"min_size ({self.min_size}) must be <= max_size ({self.max_size})")
        return self


class TaskPoolConfig(StrictModel):
    """A Ray Data stage run as tasks (no actors) and what each task reserves (interrvos.stages)."""

    num_cpus: float = Field(default=1.0, ge=0)
    concurrency: int | None = Field(default=None, ge=1, description="tasks in flight at most (None: as many as fit)")
    memory_mb: int | None = Field(default=None, ge=1, description="memory each task reserves (None: no reservation)")


class SynthConfig(StrictModel):
    out: str = "runs/synth"
    num_videos: int = Field(default=4, ge=1)
    num_frames: int = Field(default=240, ge=2)
    width: int = Field(default=320, ge=32)
    height: int = Field(default=240, ge=32)
    fps: float = Field(default=24.0, gt=0)
    seed: int = 0
    min_objects: int = Field(default=3, ge=1)
    max_objects: int = Field(default=6, ge=1)
    ray: RayConfig = Field(default_factory=RayConfig)

    @model_validator(mode="after")
    def _objects_range(self) -> SynthConfig:
        if self.min_objects > self.max_objects:
            raise ValueError(f"min_objects ({self.min_objects}) must be <= max_objects ({self.max_objects})")
        return self


class ClipRuleConfig(StrictModel):
    """The paper's clip rule and object filters (REFERENCE.md, 'Source data and clip rule')."""

    bin_frames: int = Field(default=1000, ge=1, description="non-overlapping bin length")
    min_bin_frames: int = Field(default=200, ge=1, description="bins with fewer frames are dropped")
    clip_frames: int = Field(default=500, ge=1, description="each kept bin's first N frames form a clip")
    keep_bins: Literal["first_last", "all"] = "first_last"
    max_hidden_visible_frames: int = Field(default=10, ge=0, description="objects visible in <= N frames are dropped")
    crowd_size: int = Field(default=3, ge=0, description="extra filters apply when more objects remain")
    min_area_fraction: float = Field(default=0.01, ge=0, le=1, description="crowded: drop if largest area <= this")
    min_sampled_appearances: int = Field(default=2, ge=0, description="crowded: drop if in <= N sampled frames")
    num_sampled_frames: int = Field(default=16, ge=1)


class ExtractConfig(StrictModel):
    videos: list[str] = Field(default=["runs/synth"],
                              description="folders/URIs of videos (+ optional <stem>.masks.json), or video files")
    out: str = "runs/dataset"
    clip: ClipRuleConfig = Field(default_factory=ClipRuleConfig)
    jpeg_quality: int = Field(default=90, ge=1, le=100)
    # Planning only reads container headers. It reserves no CPU so that a writer pool which fills the
    # cluster (min_size = CPUs) cannot starve it of input and deadlock the pipeline.
    planners: TaskPoolConfig = Field(default_factory=lambda: TaskPoolConfig(num_cpus=0))
    writers: ActorPoolConfig = Field(default_factory=ActorPoolConfig)
    ray: RayConfig = Field(default_factory=RayConfig)


    @field_validator("videos", mode="before")
    @classmethod
    def _one_or_many(cls, v):
        return [v] if isinstance(v, str) else v


class DemoTrainingConfig(StrictModel):
    """The demo's training proof runs on its own short-clip synthetic set: prediction runs SAM2 through
    every frame, so the paper-length clips of the main dataset would take most of the demo's budget."""

    enabled: bool = True
    synth: SynthConfig = Field(default_factory=lambda: SynthConfig(num_videos=24, num_frames=120, width=160,
                                                                   height=120, seed=1))  # fmt: skip
    clip: ClipRuleConfig = Field(default_factory=lambda: ClipRuleConfig(min_bin_frames=100))
    val_fraction: float = Field(default=0.25, gt=0, lt=1, description="share of videos held out for evaluation")
    max_steps: int = Field(default=300, ge=1, description="optimizer steps of the tiny model (2 CPU workers)")


class DemoConfig(StrictModel):
    out: str = "runs/demo"
    # Videos just long enough for the paper's rule to cut two clips each ([0, 500) and [1000, 1300)).
    synth: SynthConfig = Field(default_factory=lambda: SynthConfig(num_videos=4, num_frames=1300, width=256, height=192))
    clip: ClipRuleConfig = Field(default_factory=ClipRuleConfig)
    include_real_videos: bool = Field(default=True, description="also cut clips from ../shared/data/videos when present")
    writers: ActorPoolConfig = Field(default_factory=ActorPoolConfig)
    annotate: bool = Field(default=True, description="annotate the clips with the offline (local) backend")
    training: DemoTrainingConfig = Field(default_factory=DemoTrainingConfig)
    ray: RayConfig = Field(default_factory=lambda: RayConfig(num_cpus=2))


M = TypeVar("M", bound=BaseModel)


def _set_dotted(tree: dict, dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = tree
    for key in keys[:-1]:
        child = node.get(key)
        if child is None:
            child = node[key] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"--set {dotted}: '{key}' is a value, not a section")
        node = child
    node[keys[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    """'a.b=3' -> ('a.b', 3); the value is read as YAML so numbers, bools and lists keep their type."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override '{text}' must look like key.sub=value")
    return key.strip(), yaml.safe_load(raw) if raw.strip() else None


def format_validation_error(err: ValidationError, source: str) -> str:
    lines = [f"invalid configuration ({source}):"]
    for e in err.errors():
        field = ".".join(str(p) for p in e["loc"]) or "<root>"
        lines.append(f"  {field}: {e['msg']}" + (f" (got {e['input']!r})" if e["type"] != "missing" else ""))
    return "\n".join(lines)


def _with_section_defaults(model: type[BaseModel], tree: dict[str, Any]) -> dict[str, Any]:
    """`tree` with every section it gives only in part completed from that section's default: a section
    whose default is built by a factory with its own values (e.g. `pools.prepare` = 1-2 actors x 0.5 CPU)
    keeps them when a file or `--set pools.prepare.memory_mb=512` names only some keys, instead of falling
    back to the section class's generic defaults."""
    out = dict(tree)
    for name, field in model.model_fields.items():
        key = field.alias or name
        given = out.get(key)
        if not isinstance(given, dict):
            continue
        default = field.get_default(call_default_factory=True) if field.default_factory else field.default
        section = type(default) if isinstance(default, BaseModel) else field.annotation
        if not (isinstance(section, type) and issubclass(section, BaseModel)):
            continue
        if isinstance(default, BaseModel):
            given = _deep_merge(default.model_dump(exclude_unset=True), given)
        out[key] = _with_section_defaults(section, given)
    return out


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        merged[key] = _deep_merge(merged[key], value) if isinstance(value, dict) and isinstance(
            merged.get(key), dict) else value
    return merged


def load_config(model: type[M], path: str | os.PathLike | None = None, overrides: list[str] | None = None) -> M:
    """Build `model` from an optional YAML file and dotted overrides; raise ConfigError naming fields."""
    tree: dict[str, Any] = {}
    source = "defaults"
    if path:
        source = str(path)
        try:
            loaded = yaml.safe_load(Path(path).read_text()) or {}
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {path} is not valid YAML: {e}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping at the top level")
        tree = loaded
    for text in overrides or []:
        _set_dotted(tree, *parse_override(text))
    if overrides:
        source += " + --set " + " ".join(overrides)
    try:
        cfg = model.model_validate(_with_section_defaults(model, tree))
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, source)) from None
    run_logs.note_config(cfg)  # inside an `interrvos` command: the first job config names the run folder
    return cfg

"""`interrvos sweep` configuration: checkpoints x datasets x named axes of prediction settings.

    checkpoints:                        # ids default to the folder's name
      - {id: untrained, path: runs/demo/training/proof/untrained/model}
      - {glob: "runs/train/demo/step_*"}    # a training run's checkpoints (exported once, cached)
    datasets:
      - {id: valid, path: runs/demo/training/annotated/valid, caption_types: [interaction]}
    axes:                               # name: {field, values}; or field: [values]
      K: {field: inference.num_frames, values: [2, 5]}
      inference.sampling: [first, uniform]

An axis field is anything `interrvos predict` takes that changes predictions: `inference.<field>`
(over each checkpoint's own inference settings), `device`, `dtype`, or `model.<field>` (a setting of
the checkpoint's model config that keeps its weights, e.g. `model.sam.image_size`). Every value is
checked here, so a bad grid fails naming the field (`axes.K.values[1]`) before anything runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from interrvos.config import RayConfig, StrictModel, load_config
from interrvos.data.records import CaptionType
from interrvos.model.config import InferenceSettings, ModelConfig, PredictConfig, PredictWorkers

PREDICT_FIELDS = ("device", "dtype")  # PredictConfig fields an axis may vary besides inference.*
SLICES = ("caption_type", "interaction", "num_objects", "clip_length")


class CheckpointEntry(StrictModel):
    """One checkpoint (`path`: a folder or URI) or every folder a `glob` matches (sorted)."""

    id: str | None = Field(default=None, description="label in tables (default: the folder's name); with glob a "
                                                     "prefix of each match's folder name")
    path: str | None = None
    glob: str | None = Field(default=None, description="e.g. runs/train/demo/step_*: model checkpoints, or training "
                                                       "checkpoints (step_*/) exported once into the cache")

    @model_validator(mode="after")
    def _one_source(self) -> CheckpointEntry:
        if (self.path is None) == (self.glob is None):
            raise ValueError("give exactly one of path and glob")
        return self


class DatasetEntry(StrictModel):
    """A dataset folder or URI and the evaluation filter: which of its expressions the cells score."""

    id: str | None = Field(default=None, description="label in tables (default: the folder's name)")
    path: str
    videos: list[str] | None = Field(default=None, description="only these videos")
    caption_types: list[CaptionType] | None = Field(default=None, description="only these caption types")
    limit: int | None = Field(default=None, ge=1, description="the first N expressions left (smoke runs)")

    def filter_spec(self) -> dict[str, Any]:
        return {"videos": self.videos, "caption_types": self.caption_types, "limit": self.limit}


class Axis(StrictModel):
    field: str = Field(description="inference.<field>, device, dtype or model.<field>")
    values: list[Any] = Field(min_length=1)

    @model_validator(mode="after")
    def _values_fit_the_field(self) -> Axis:
        for i, value in enumerate(self.values):
            problem = axis_value_problem(self.field, value)
            if problem:
                raise ValueError(f"values[{i}] ({self.field}={value!r}): {problem}")
        if len({repr(x) for x in self.values}) != len(self.values):
            raise ValueError("values: a value appears twice")
        return self


class PredictSettings(StrictModel):
    """What every cell predicts with (axes vary it) and the actor pool that runs a checkpoint."""

    inference: dict[str, Any] = Field(default_factory=dict, description="inference settings over each checkpoint's own")
    model_overrides: list[str] = Field(default_factory=list, description="dotted model-config settings, e.g. "
                                                                         "sam.image_size=256")
    batch_size: int = Field(default=8, ge=1, description="expressions per actor call (a video's share one model "
                                                         "call and its frame encoding)")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    workers: PredictWorkers = Field(default_factory=lambda: PredictWorkers(min_size=1, max_size=2),
                                    description="per checkpoint: a pool that grows when another one is done")

    @field_validator("inference")
    @classmethod
    def _known_inference(cls, v: dict[str, Any]) -> dict[str, Any]:
        InferenceSettings.model_validate(v)  # a wrong key or value names itself
        return v

    @field_validator("model_overrides")
    @classmethod
    def _known_model_fields(cls, v: list[str]) -> list[str]:
        from interrvos.config import parse_override

        for i, text in enumerate(v):
            problem = model_value_problem(*parse_override(text))
            if problem:
                raise ValueError(f"[{i}] {text!r}: {problem}")
        return v


class ScoringSettings(StrictModel):
    """How cells are scored (`interrvos evaluate`'s protocol); changing it re-scores from the cache."""

    frame_averaging: Literal["mevis", "davis"] = "mevis"
    unpaired_interactions: Literal["referring", "actor_target"] = "referring"
    sensitivity_pairs: int = Field(default=32, ge=0, description="cross-expression IoU pairs per video (0: off)")
    executor: Literal["auto", "task", "local"] = Field(
        default="auto", description="task: one Ray task per cell, beside the predictions; local: in this process; "
        "auto: task, unless nothing needs predicting and no Ray runs or is addressed (a re-score starts no Ray)")
    num_cpus: float = Field(default=1.0, gt=0, description="CPUs a scoring task reserves")


class StatsSettings(StrictModel):
    samples: int = Field(default=2000, ge=100, description="bootstrap resamples (of videos)")
    confidence: float = Field(default=0.95, gt=0.5, lt=1)
    seed: int = 0


class Comparison(StrictModel):
    """A paired comparison: cells named by id or label (on the same dataset)."""

    a: str
    b: str


class ReportSettings(StrictModel):
    plots: bool = True
    pair_plots: int = Field(default=4, ge=0, description="paired scatter + difference histogram for this many pairs")
    slices: list[Literal["caption_type", "interaction", "num_objects", "clip_length"]] = Field(
        default_factory=lambda: list(SLICES))
    keep_predictions: bool = Field(default=True, description="write each cell's predictions.jsonl under cells/")


class LeaderboardSettings(StrictModel):
    """Send every finished cell's predictions to a running evaluation app (serving), for its leaderboard."""

    url: str | None = Field(default=None, description="the evaluation app, e.g. http://127.0.0.1:8000/eval; None: off")
    datasets: dict[str, str] = Field(default_factory=dict, description="sweep dataset id -> the app's dataset name "
                                                                       "(default: the same id)")
    token_env: str = Field(default="INTERRVOS_API_TOKEN", description="environment variable holding the app's token")


class SweepConfig(StrictModel):
    name: str = "sweep"
    out: str = Field(default="runs/sweep", description="results and report (folder or URI)")
    cache: str = Field(default="runs/sweep_cache", description="local folder of the prediction cache (shared by sweeps)")
    code_version: str = Field(default="auto", description="auto: a hash of the prediction code and library versions")
    checkpoints: list[CheckpointEntry] = Field(min_length=1)
    datasets: list[DatasetEntry] = Field(min_length=1)
    axes: dict[str, Axis] = Field(default_factory=dict)
    predict: PredictSettings = Field(default_factory=PredictSettings)
    scoring: ScoringSettings = Field(default_factory=ScoringSettings)
    stats: StatsSettings = Field(default_factory=StatsSettings)
    compare: list[Comparison] | None = Field(default=None, description="pairs to compare (None: each cell against the "
                                                                       "first value of every axis it differs in)")
    max_concurrent_groups: int | None = Field(default=None, ge=1, description="checkpoints predicted at once (None: as "
                                                                              "many actor pools as the cluster fits)")
    report: ReportSettings = Field(default_factory=ReportSettings)
    leaderboard: LeaderboardSettings = Field(default_factory=LeaderboardSettings)
    ray: RayConfig = Field(default_factory=RayConfig)

    @field_validator("axes", mode="before")
    @classmethod
    def _shorthand(cls, v: Any) -> Any:
        if isinstance(v, dict):  # `inference.num_frames: [2, 4]` names the axis after its field
            return {name: {"field": name, "values": a} if isinstance(a, list) else a for name, a in v.items()}
        return v

    @field_validator("axes")
    @classmethod
    def _one_axis_per_field(cls, v: dict[str, Axis]) -> dict[str, Axis]:
        fields = [a.field for a in v.values()]
        twice = sorted({f for f in fields if fields.count(f) > 1})
        if twice:
            raise ValueError(f"field(s) {twice} set by more than one axis")
        return v

    @model_validator(mode="after")
    def _unique_ids(self) -> SweepConfig:
        ids = [d.id or _base(d.path) for d in self.datasets]
        if len(set(ids)) != len(ids):
            raise ValueError(f"datasets: ids must be unique (got {ids}); give each an id")
        if self.leaderboard.url and not self.report.keep_predictions:
            raise ValueError("leaderboard.url sends each cell's predictions.jsonl: it needs report.keep_predictions")
        return self


def _base(path: str) -> str:
    return str(path).rstrip("/").rsplit("/", 1)[-1]


def _first_error(err: ValidationError) -> str:
    e = err.errors()[0]
    return f"{'.'.join(map(str, e['loc']))}: {e['msg']}"


def model_value_problem(dotted: str, value: Any) -> str | None:
    """Why `model.<dotted>=value` cannot apply to a model config (None: it can)."""
    tree: Any = ModelConfig().model_dump(mode="json")
    keys = dotted.split(".")
    node = tree
    for key in keys[:-1]:
        if not isinstance(node, dict) or key not in node:
            return f"the model config has no field {dotted!r}"
        node = node[key]
    if not isinstance(node, dict) or keys[-1] not in node:
        return f"the model config has no field {dotted!r}"
    if keys[0] == "inference":
        return "vary inference settings with inference.<field>"
    node[keys[-1]] = value
    try:
        ModelConfig.model_validate(tree)
    except ValidationError as err:
        return _first_error(err)
    return None


def axis_value_problem(field: str, value: Any) -> str | None:
    """Why an axis cannot take `value` (None: it can)."""
    head, _, rest = field.partition(".")
    try:
        if head == "inference" and rest:
            if rest not in InferenceSettings.model_fields:
                return f"inference settings have no field {rest!r} ({', '.join(InferenceSettings.model_fields)})"
            InferenceSettings.model_validate({rest: value})
        elif head == "model" and rest:
            return model_value_problem(rest, value)
        elif field in PREDICT_FIELDS:
            PredictConfig.model_validate({field: value})
        else:
            return ("not a prediction setting: use inference.<field>, model.<field>, "
                    + " or ".join(PREDICT_FIELDS))
    except ValidationError as err:
        return _first_error(err)
    return None


def load_sweep_config(path: str | Path | None, overrides: list[str] | None = None) -> SweepConfig:
    """A sweep YAML plus dotted overrides; ConfigError naming the field when it is wrong."""
    return load_config(SweepConfig, path, overrides)

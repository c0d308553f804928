"""Typed records that flow between jobs: videos, clips, object tracks and expressions."""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from interrvos.data.rle import RLE

CaptionType = Literal["single_all", "single_appearance", "single_motion", "multi", "interaction"]
InteractionKind = Literal["unidirectional", "bidirectional", "none"]
CAPTION_TYPES: tuple[str, ...] = CaptionType.__args__  # type: ignore[attr-defined]


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VideoRecord(Record):
    """A source video and what decoding it told us."""

    video_id: str
    path: str
    num_frames: int = Field(ge=0)
    fps: float = Field(gt=0)
    width: int = Field(gt=0)
    height: int = Field(gt=0)


class ObjectTrack(Record):
    """One object's per-frame masks (None where it is not visible) over a video or a clip."""

    obj_id: str
    category: str
    masks: list[RLE | None]

    def visible_frames(self) -> list[int]:
        return [i for i, m in enumerate(self.masks) if m is not None]


class ClipRecord(Record):
    """One clip cut from a source video: frames [start_frame, end_frame) of it."""

    clip_id: str
    video_id: str
    source_path: str
    start_frame: int = Field(ge=0)
    end_frame: int
    fps: float = Field(gt=0)
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    sampled_frames: list[int] = Field(description="indices relative to the clip, for the LLM stages")
    object_ids: list[str] = Field(default_factory=list, description="objects kept by the filters")

    @property
    def num_frames(self) -> int:
        return self.end_frame - self.start_frame

    @model_validator(mode="after")
    def _range_is_valid(self) -> ClipRecord:
        if self.end_frame <= self.start_frame:
            raise ValueError(f"end_frame ({self.end_frame}) must be > start_frame ({self.start_frame})")
        bad = [i for i in self.sampled_frames if not 0 <= i < self.num_frames]
        if bad:
            raise ValueError(f"sampled_frames outside the clip's {self.num_frames} frames: {bad}")
        return self


class Expression(Record):
    """A referring expression. Interaction expressions name their actor(s) and target(s) explicitly;
    `anno_id` covers every object the expression refers to (the MeViS field)."""

    exp: str = Field(min_length=1)
    caption_type: CaptionType
    obj_id: list[str]
    anno_id: list[str]
    interaction: InteractionKind = "none"
    actor_ids: list[str] = Field(default_factory=list)
    target_ids: list[str] = Field(default_factory=list)
    actor_anno_id: list[str] = Field(default_factory=list)
    target_anno_id: list[str] = Field(default_factory=list)

    @field_validator("obj_id", "anno_id", "actor_ids", "target_ids", "actor_anno_id", "target_anno_id", mode="before")
    @classmethod
    def _ids_as_str_list(cls, v):
        # MeViS stores ints, Ref-YouTube-VOS a single str: normalise to a list of str.
        if v is None:
            return []
        if isinstance(v, (str, numbers.Integral)):
            v = [v]
        if isinstance(v, (dict, bytes)) or not isinstance(v, Iterable):
            return v  # pydantic then names the wrong type
        # Only ints (numpy's too) become str: anything else is left for pydantic to name the wrong type.
        return [str(int(x)) if isinstance(x, numbers.Integral) and not isinstance(x, bool) else x for x in v]

    @model_validator(mode="after")
    def _roles_are_consistent(self) -> Expression:
        if self.interaction == "unidirectional" and not (self.actor_ids and self.target_ids):
            raise ValueError("a unidirectional interaction needs actor_ids and target_ids")
        if self.caption_type == "interaction" and self.interaction == "none":
            raise ValueError("caption_type 'interaction' needs interaction unidirectional|bidirectional")
        return self


class VideoEntry(Record):
    """One video of a dataset (a clip, for datasets built by this platform)."""

    vid_id: str
    frames: list[str]
    expressions: dict[str, Expression] = Field(default_factory=dict)
    # Extension: the kept objects of the clip and the anno id of each one's mask track.
    objects: dict[str, dict[str, str]] = Field(default_factory=dict)

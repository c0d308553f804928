"""Where extraction puts things inside a dataset folder (local path or URI)."""

from __future__ import annotations

from dataclasses import dataclass

from interrvos.data.storage import join


@dataclass(frozen=True)
class DatasetLayout:
    root: str

    def frames_dir(self, clip_id: str) -> str:
        return join(self.root, "JPEGImages", clip_id)

    def tracks(self, clip_id: str) -> str:
        return join(self.root, "tracks", f"{clip_id}.json")

    @property
    def markers_dir(self) -> str:
        return join(self.root, "clips_done")

    def marker(self, clip_id: str) -> str:
        return join(self.markers_dir, f"{clip_id}.json")

    @property
    def clips_table(self) -> str:
        return join(self.root, "clips.parquet")

    @property
    def summary(self) -> str:
        return join(self.root, "extract_summary.json")


def anno_id(clip_id: str, obj_id: str) -> str:
    """The mask_dict key of one object's track in one clip."""
    return f"{clip_id}:{obj_id}"

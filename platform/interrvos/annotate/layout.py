"""Where `interrvos annotate` puts things inside its output folder (local path or URI)."""

from __future__ import annotations

from dataclasses import dataclass

from interrvos.data.storage import join

SPLITS = ("train", "valid")


@dataclass(frozen=True)
class AnnotateLayout:
    root: str

    @property
    def records_dir(self) -> str:
        return join(self.root, "annotations")

    def record(self, clip_id: str) -> str:
        """A finished clip: every stage's outcomes, written last (the clip's done marker)."""
        return join(self.records_dir, f"{clip_id}.json")

    def split(self, name: str) -> str:
        """A MeViS-format dataset folder: train (training) or valid (evaluation, filtered)."""
        return join(self.root, name)

    @property
    def stats_dir(self) -> str:
        return join(self.root, "stats")

    @property
    def report_dir(self) -> str:
        return join(self.root, "report")

    @property
    def quarantine(self) -> str:
        return join(self.root, "quarantine.json")

    @property
    def summary(self) -> str:
        return join(self.root, "annotate_summary.json")

"""What every Ray Data stage of the jobs reserves, declared from config in one place.

A job lists its stages as `Stage` objects built from its config (`stage_plan(cfg)` in each job's
module) and builds its `ds.map(...)` calls from `Stage.ray_args()`, so the plan that
`interrvos <job> --show-plan` prints is exactly what runs: per stage, an autoscaling actor pool
(min..max actors) or tasks (at most `concurrency` at once), and what each actor or task reserves
(CPUs, GPUs, memory). On a cluster these reservations are what the autoscaler sizes nodes for.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from interrvos.config import ActorPoolConfig, TaskPoolConfig

StageKind = Literal["actor-pool", "tasks", "vllm", "driver"]
MB = 1024 * 1024


@dataclass
class Stage:
    """One stage. `vllm` stages are Ray Data LLM processors (they size their own engine actors from the
    vLLM config; shown for the plan only); `driver` stages run in the job's own process (no Ray)."""

    name: str
    kind: StageKind
    num_cpus: float | None = None
    num_gpus: float = 0.0
    memory_mb: int | None = None
    resources: Mapping[str, float] = field(default_factory=dict)  # custom Ray resources (a node type's marker)
    min_size: int | None = None  # actors (actor pools, vLLM engine replicas)
    max_size: int | None = None
    concurrency: int | None = None  # tasks in flight at most (None: as many as the resources allow)
    pool_options: Mapping[str, Any] = field(default_factory=dict)  # further ActorPoolStrategy arguments
    note: str = ""

    @classmethod
    def actor_pool(cls, name: str, pool: ActorPoolConfig, note: str = "", **pool_options: Any) -> Stage:
        return cls(name, "actor-pool", num_cpus=pool.num_cpus, num_gpus=pool.num_gpus, memory_mb=pool.memory_mb,
                   resources=pool.resources, min_size=pool.min_size, max_size=pool.max_size,
                   pool_options=pool_options, note=note)

    @classmethod
    def tasks(cls, name: str, pool: TaskPoolConfig, note: str = "") -> Stage:
        return cls(name, "tasks", num_cpus=pool.num_cpus, memory_mb=pool.memory_mb, concurrency=pool.concurrency,
                   note=note)

    def ray_args(self) -> dict[str, Any]:
        """Keyword arguments of `Dataset.map` / `map_batches` / `flat_map` for this stage."""
        import ray.data

        if self.kind == "actor-pool":
            args: dict[str, Any] = {"compute": ray.data.ActorPoolStrategy(
                min_size=self.min_size, max_size=self.max_size, **self.pool_options)}
        elif self.kind == "tasks":
            args = {} if self.concurrency is None else {"compute": ray.data.TaskPoolStrategy(size=self.concurrency)}
        else:
            raise ValueError(f"stage {self.name!r} is a {self.kind} stage, not a Ray Data map")
        args["num_cpus"] = self.num_cpus
        if self.num_gpus:
            args["num_gpus"] = self.num_gpus
        if self.memory_mb:
            args["memory"] = self.memory_mb * MB
        if self.resources:
            args["resources"] = dict(self.resources)
        return args

    def describe(self) -> dict[str, Any]:
        """The plan's row: name, kind, min, max (actors, or tasks in flight), cpus, gpus, memory_mb,
        resources (custom, as "name=amount"), note."""
        low, high = (self.min_size, self.max_size) if self.kind != "tasks" else (None, self.concurrency)
        custom = ",".join(f"{k}={v:g}" for k, v in sorted(self.resources.items()))
        return {"name": self.name, "kind": self.kind, "min": low, "max": high, "cpus": self.num_cpus,
                "gpus": self.num_gpus, "memory_mb": self.memory_mb, "resources": custom, "note": self.note}


def plan_rows(stages: Iterable[Stage]) -> list[dict[str, Any]]:
    return [s.describe() for s in stages]


def format_plan(job: str, rows: list[dict[str, Any]]) -> str:
    """The plan as a plain-text table (each actor's or task's reservation; '-' where none applies)."""
    header = ["stage", "kind", "min", "max", "cpus", "gpus", "memory_mb", "resources", "note"]
    keys = ("name", "kind", "min", "max", "cpus", "gpus", "memory_mb", "resources", "note")
    cells = [[_cell(r[k]) for k in keys] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(header)]
    lines = [f"stage plan of `interrvos {job}` (resources per actor or task):",
             "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)

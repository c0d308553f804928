"""Console output is for people: Ray's own log lines (the driver's Ray Data / Train / Serve loggers,
library warnings repeated per worker) go to files under the run folder instead of the console, and
the console says where they are.

    logs = route_ray_logs("runs/demo")   # before Ray starts; returns runs/demo/logs
    ...                                  # after ensure_ray(RayConfig(log_to_driver=False)):
    link_worker_logs(logs)               # runs/demo/logs/ray -> this Ray session's worker logs
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

# Loggers that print per-step internals of Ray and the libraries the workers load.
NOISY_LOGGERS = ("ray", "ray.data", "ray.train", "ray.serve", "ray.tune", "ray.util", "deepspeed", "DeepSpeed",
                 "py.warnings", "torch.distributed", "transformers", "peft", "filelock", "urllib3")  # fmt: skip


_handlers: dict[Path, logging.Handler] = {}


def route_ray_logs(run_dir: str | os.PathLike, name: str = "driver.log") -> Path:
    """Send the noisy loggers and Python warnings of this process to `<run_dir>/logs/<name>`. Call it
    again after `ray.init` (which sets up Ray's loggers anew); the same file handler is reused."""
    folder = Path(run_dir) / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    path = (folder / name).resolve()
    handler = _handlers.get(path)
    if handler is None:
        handler = _handlers[path] = logging.FileHandler(path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for logger_name in NOISY_LOGGERS:
        logger = logging.getLogger(logger_name)
        logger.handlers = [handler]
        logger.propagate = False
    logging.captureWarnings(True)
    return folder


def link_worker_logs(folder: Path) -> Path | None:
    """`<folder>/ray`: a link to the running Ray session's log folder (the workers' stdout and stderr)."""
    import ray

    if not ray.is_initialized():
        return None
    try:
        session = Path(ray._private.worker._global_node.get_session_dir_path())  # noqa: SLF001 - no public API
    except AttributeError:
        return None
    link = folder / "ray"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(session / "logs", target_is_directory=True)
    return link

"""Connecting to Ray: an existing cluster when an address is given (or RAY_ADDRESS is set, as under
`ray job submit`), otherwise a small local Ray started in-process (the embedded default)."""

from __future__ import annotations

import logging
import os
import sys

from interrvos.config import RayConfig

log = logging.getLogger(__name__)


def ensure_ray(cfg: RayConfig | None = None) -> None:
    import ray

    if ray.is_initialized():
        return
    cfg = cfg or RayConfig()
    address = cfg.address or os.environ.get("RAY_ADDRESS")
    # Auth tokens are for shared clusters; a private in-process Ray needs none.
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    if address:
        ray.init(address=address, log_to_driver=True)
    else:
        ray.init(
            num_cpus=cfg.num_cpus,
            object_store_memory=cfg.object_store_mb * 2**20,
            include_dashboard=cfg.include_dashboard,
            log_to_driver=True,
        )
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = sys.stderr.isatty()
    ctx.print_on_execution_start = False

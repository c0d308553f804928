"""The plain-torchrun side of bench/bench_train.py: the same task, sample plan, DeepSpeed engine and
steps as `interrvos train`, without Ray (a torch DataLoader with one worker process decodes samples).

    torchrun --nproc_per_node 2 bench/torchrun_train.py CONFIG.json OUT.json
"""

from __future__ import annotations

import json
import os
import sys
import time

import torch
from torch.utils.data import DataLoader

from interrvos.train.config import TrainConfig
from interrvos.train.data import load_sources, make_plan
from interrvos.train.loop import build_engine, setup_process
from interrvos.train.run import default_task


class Samples(torch.utils.data.Dataset):
    def __init__(self, task, rows):
        self.task, self.rows, self.build = task, rows, None

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        if self.build is None:  # in the DataLoader worker
            self.build = self.task.sample_builder()
        return self.build(self.rows[i])


def main() -> None:
    cfg = TrainConfig.model_validate_json(open(sys.argv[1]).read())
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    setup_process(False, cfg.workers.torch_threads or 1)
    torch.distributed.init_process_group("gloo")
    task = default_task(cfg)
    plan = make_plan(cfg, load_sources(cfg), world)
    total = plan.total_steps(cfg.optim.epochs, cfg.optim.max_steps)
    rows = list(plan.rows(rank, 0, total))
    loader = DataLoader(Samples(task, rows), batch_size=cfg.optim.batch_size, num_workers=1,
                        collate_fn=task.collate, prefetch_factor=cfg.data.prefetch_batches or 1)  # fmt: skip
    torch.manual_seed(cfg.seed + rank)
    engine, _ = build_engine(cfg, task.build_model(), world, False, total)
    times, losses = [], []
    it = iter(loader)
    started = time.perf_counter()
    for _ in range(total):
        for _ in range(cfg.optim.grad_accum):
            out = engine(next(it))
            engine.backward(out["loss"])
            engine.step()
        loss = torch.tensor([float(out["loss"].detach())], dtype=torch.float64)
        torch.distributed.all_reduce(loss)  # as the Ray loop does for its metrics
        now = time.perf_counter()
        times.append(now - started)
        losses.append(loss.item() / world)
        started = now
    torch.distributed.barrier()
    if rank == 0:
        with open(sys.argv[2], "w") as f:
            json.dump({"step_time_s": times, "loss": losses}, f)
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()

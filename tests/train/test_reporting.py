"""What the loop does at each optimizer step: a metrics row every `log.every_n_steps` (one all-reduce, no Ray
call), `ray.train.report` only with checkpoints unless `log.report_every_n_steps` asks for more (each report
is a cross-rank sync and waits for the controller's poll: the cost bench/bench_train.py measured), the
throttled progress file and the per-run poll interval."""

from __future__ import annotations

import os
import socket

import pytest
import torch

from interrvos.train.config import TrainConfig
from interrvos.train.loop import reduce_over_ranks, reporting_steps
from interrvos.train.observe import PROGRESS_FILE, ProgressWriter
from interrvos.train.run import POLL_ENV, poll_interval


def _plan(total: int, **log) -> dict[str, list[int]]:
    cfg = TrainConfig.model_validate({"checkpoint": {"every_n_steps": 4}, "log": log})
    out: dict[str, list[int]] = {"log": [], "report": [], "checkpoint": []}
    for step in range(1, total + 1):
        for name, due in zip(("log", "report", "checkpoint"), reporting_steps(step, total, cfg), strict=True):
            if due:
                out[name].append(step)
    return out


def test_every_step_is_logged_but_only_checkpoints_and_the_end_reach_ray_train_by_default():
    plan = _plan(10)
    assert plan["log"] == list(range(1, 11))
    assert plan["report"] == plan["checkpoint"] == [4, 8, 10]


def test_a_report_interval_adds_metrics_only_reports_and_every_report_is_logged():
    plan = _plan(10, every_n_steps=5, report_every_n_steps=3)
    assert plan["checkpoint"] == [4, 8, 10]
    assert plan["report"] == [3, 4, 6, 8, 9, 10]
    assert plan["log"] == [3, 4, 5, 6, 8, 9, 10]  # every 5th step, and whatever is reported


def test_metrics_reduce_in_one_call_from_device_tensors_and_floats_on_one_rank():
    means, sums = reduce_over_ranks({"loss": torch.tensor(0.25, dtype=torch.float64), "data_wait_s": 0.5},
                                    {"samples": 2, "tokens": 7}, torch.device("cpu"))  # fmt: skip
    assert means == {"data_wait_s": 0.5, "loss": 0.25} and sums == {"samples": 2.0, "tokens": 7.0}


def _reduce_on_rank(rank: int, port: int, out) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        out.put((rank, reduce_over_ranks({"loss": torch.tensor(1.0 + rank, dtype=torch.float64)},
                                         {"samples": 1 + rank}, torch.device("cpu"))))  # fmt: skip
    finally:
        dist.destroy_process_group()


def test_metrics_are_means_and_totals_over_two_gloo_ranks():  # two forked processes, ~1 s
    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("fork")  # spawn re-imports torch: ~30 s on 2 busy cores
    out = ctx.Queue()
    procs = [ctx.Process(target=_reduce_on_rank, args=(r, port, out)) for r in (0, 1)]
    for p in procs:
        p.start()
    got = dict(out.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(timeout=30)
    assert got[0] == got[1] == ({"loss": 1.5}, {"samples": 3.0})


def test_progress_is_written_at_most_once_a_second_except_the_last_and_forced_steps(tmp_path, monkeypatch):
    clock = [100.0]
    monkeypatch.setattr("interrvos.train.observe.time.monotonic", lambda: clock[0])
    writer = ProgressWriter(str(tmp_path), total_steps=5, min_interval_s=1.0)
    written = []
    for step, at, force in ((1, 100.0, False), (2, 100.4, False), (3, 100.8, True), (4, 101.0, False),
                            (5, 101.1, False)):  # fmt: skip
        clock[0] = at
        if writer.write({"step": step}, force=force):
            written.append(step)
    assert written == [1, 3, 5]
    assert (tmp_path / PROGRESS_FILE).exists()


def test_the_poll_interval_is_set_for_one_run_only_and_an_exported_value_wins(monkeypatch):
    monkeypatch.delenv(POLL_ENV, raising=False)
    with poll_interval(0.5):
        assert os.environ[POLL_ENV] == "0.5"
    assert POLL_ENV not in os.environ
    monkeypatch.setenv(POLL_ENV, "0.1")
    with poll_interval(2.0):
        assert os.environ[POLL_ENV] == "0.1"
    assert os.environ[POLL_ENV] == "0.1"


@pytest.mark.parametrize("every", [0, -1])
def test_a_report_interval_must_be_positive(every):
    with pytest.raises(ValueError, match="report_every_n_steps"):
        TrainConfig.model_validate({"log": {"report_every_n_steps": every}})

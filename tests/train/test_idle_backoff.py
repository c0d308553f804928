"""The executor back-off (train/idle_backoff.py): Ray Data's scheduling thread inside a training worker sleeps
after each round in proportion to the CPU the round used, so it can take at most a fifth of a core."""

from __future__ import annotations

from interrvos.train.idle_backoff import IDLE_RATIO, IDLE_SLEEP_S, MAX_SLEEP_S, backoff_s, install_idle_backoff


def test_the_sleep_grows_with_the_rounds_cpu_within_bounds():
    assert backoff_s(0.0) == IDLE_SLEEP_S  # a cheap round still yields the CPU
    assert backoff_s(0.005) == IDLE_RATIO * 0.005  # the thread's share stays 1 / (1 + ratio)
    assert backoff_s(1.0) == MAX_SLEEP_S  # never so long that the prefetch queue runs dry


def test_install_patches_the_streaming_executor_once():
    from ray.data._internal.execution.streaming_executor import StreamingExecutor

    assert install_idle_backoff()
    patched = StreamingExecutor._scheduling_loop_step
    assert patched._interrvos_idle_backoff
    assert install_idle_backoff() and StreamingExecutor._scheduling_loop_step is patched  # not wrapped twice

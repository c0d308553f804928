"""A short sleep after each round of Ray Data's streaming-executor loop, so that it cannot spin.

Ray 2.60's executor thread (`StreamingExecutor.run`) calls `_scheduling_loop_step` back to back; a step
blocks in `ray.wait(timeout=0.1)` only on tasks that are still running. When the prefetch queue is full
(the training step is the bottleneck, the normal case) no task is active, or the finished ones wait under
output backpressure and `ray.wait` returns at once: the loop spins and holds the GIL (py-spy: the
executor thread "active+gil" beside the training thread). In a training worker with one CPU the step
then ran up to 4x slower (SAM2 pretraining on one pinned core: 4.1 s/step through Ray Train against 0.5 s
in a plain loop). A 10 ms sleep after every scheduling round gives the CPU back; a training data
pipeline needs a few rounds a second, not thousands.
"""

from __future__ import annotations

import time

IDLE_SLEEP_S = 0.01
# The executor thread may use at most 1 / (1 + IDLE_RATIO) of a core: after a round that took c seconds of
# its CPU, it sleeps IDLE_RATIO * c (at least IDLE_SLEEP_S, at most MAX_SLEEP_S). A fixed 10 ms was not
# enough where a round itself costs several ms (a slower or busier machine: the round walks every operator's
# resource budget), and the thread's own CPU time, unlike wall time, does not count ray.wait's blocking.
IDLE_RATIO = 4.0
MAX_SLEEP_S = 0.1


def backoff_s(round_cpu_s: float, sleep_s: float = IDLE_SLEEP_S) -> float:
    """How long the executor thread sleeps after a round that used `round_cpu_s` of its CPU."""
    return min(MAX_SLEEP_S, max(sleep_s, IDLE_RATIO * round_cpu_s))


def install_idle_backoff(sleep_s: float = IDLE_SLEEP_S) -> bool:
    """Patch this process's StreamingExecutor (idempotent); False when Ray's internals moved on."""
    try:
        from ray.data._internal.execution.streaming_executor import StreamingExecutor
    except ImportError:
        return False
    original = getattr(StreamingExecutor, "_scheduling_loop_step", None)
    if original is None:
        return False
    if getattr(original, "_interrvos_idle_backoff", False):
        return True

    def scheduling_loop_step(self, topology) -> bool:
        started = time.thread_time()
        more = original(self, topology)
        if more:  # a few rounds a second feed a training step; thousands only take the CPU from it
            time.sleep(backoff_s(time.thread_time() - started, sleep_s))
        return more

    scheduling_loop_step._interrvos_idle_backoff = True  # type: ignore[attr-defined]
    StreamingExecutor._scheduling_loop_step = scheduling_loop_step
    return True

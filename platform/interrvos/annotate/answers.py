"""Asking a backend until the answer is usable: the same loop for every backend.

Each answer is parsed into its typed schema and checked (schemas.parse_answer). An empty,
truncated, refused, malformed or self-check-failing answer is retried up to `max_retries` times
with the problem stated back to the model; then the item is quarantined with its raw answers and
the reason. A transport failure (the backend gave up on 429/5xx/timeouts) leaves the item failed:
not cached, asked again by the next run. Nothing raises out of here for a bad answer.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, Literal

from pydantic import BaseModel, Field

from interrvos.annotate.backends.base import ChatRequest, ChatResponse, TransportError
from interrvos.annotate.prompts import PROMPT_VERSION, retry_user
from interrvos.annotate.schemas import AnswerProblem, parse_answer

Status = Literal["ok", "quarantined", "failed"]


class Outcome(BaseModel):
    """What became of one item: its typed answer, or why there is none. Cached as JSON."""

    key: str
    stage: str
    kind: str
    clip_id: str
    item: str  # "object 2", "clip", "interaction 0 subject 1"
    status: Status
    answer: dict[str, Any] | None = None
    reason: str | None = None  # the last problem's category (quarantined) or the transport error (failed)
    problems: list[str] = Field(default_factory=list)  # every rejected attempt's message
    raw: list[str] = Field(default_factory=list)  # every attempt's raw answer
    attempts: int = 0
    http_retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    model: str = ""
    prompt_version: str = PROMPT_VERSION
    seconds: float = 0.0
    cached: bool = False  # served from the cache in this run (no call made)


def judge(request: ChatRequest, response: ChatResponse) -> dict[str, Any]:
    """The typed answer as a dict, or AnswerProblem."""
    if response.refusal:
        raise AnswerProblem("refusal", f"the model refused ({response.refusal[:120]!r}); answer the task as asked")
    return parse_answer(request.kind, response.text, request.valid_ids, truncated=response.truncated).model_dump()


class Attempts:
    """The running record of one item's attempts (`ask` below; the vLLM stage's rounds, across processes)."""

    def __init__(self, request: ChatRequest, model: str, cost: Callable[[int, int], float], clip_id: str, item: str):
        self.request, self.model, self.cost, self.clip_id, self.item = request, model, cost, clip_id, item
        self.raw: list[str] = []
        self.problems: list[str] = []
        self.reasons: list[str] = []
        self.http_retries = self.prompt_tokens = self.completion_tokens = 0
        self.started = time.perf_counter()

    def outcome(self, status: Status, answer: dict | None = None, reason: str | None = None) -> Outcome:
        return Outcome(key=self.request.key, stage=self.request.stage, kind=self.request.kind, clip_id=self.clip_id,
                       item=self.item, status=status, answer=answer, reason=reason, problems=self.problems,
                       raw=self.raw, attempts=len(self.raw), http_retries=self.http_retries,
                       prompt_tokens=self.prompt_tokens, completion_tokens=self.completion_tokens,
                       cost_usd=round(self.cost(self.prompt_tokens, self.completion_tokens), 8), model=self.model,
                       seconds=round(time.perf_counter() - self.started, 3))

    def record(self, response: ChatResponse) -> Outcome | None:
        """Take one answer: the finished outcome when it is usable, else None and the retry turn queued."""
        self.http_retries += response.http_retries
        self.prompt_tokens += response.prompt_tokens
        self.completion_tokens += response.completion_tokens
        self.raw.append(response.refusal or response.text)
        try:
            return self.outcome("ok", judge(self.request, response))
        except AnswerProblem as problem:
            self.reasons.append(problem.reason)
            self.problems.append(problem.message)
            history = self.request.history + [{"role": "assistant", "content": response.text or ""},
                                               {"role": "user", "content": retry_user(problem.message)}]
            self.request = replace(self.request, history=history)
            return None

    def give_up(self) -> Outcome:
        return self.outcome("quarantined", reason=self.reasons[-1] if self.reasons else "empty")


async def ask(complete: Callable[[ChatRequest], Awaitable[ChatResponse]], request: ChatRequest, *, model: str,
              cost: Callable[[int, int], float], max_retries: int, clip_id: str, item: str) -> Outcome:
    """One item through an async backend, retrying invalid answers with the problem fed back."""
    attempts = Attempts(request, model, cost, clip_id, item)
    for _ in range(max_retries + 1):
        try:
            response = await complete(attempts.request)
        except TransportError as err:
            attempts.http_retries += err.retries
            return attempts.outcome("failed", reason=f"transport: {err.reason}")
        except Exception as err:  # a backend bug must not take the job down: the item fails, the run goes on
            return attempts.outcome("failed", reason=f"backend error: {type(err).__name__}: {err}")
        done = attempts.record(response)
        if done is not None:
            return done
    return attempts.give_up()


# ---- Accounting -----------------------------------------------------------------------------------

def empty_stats() -> dict[str, Any]:
    return {"items": 0, "cache_hits": 0, "llm_calls": 0, "answer_retries": 0, "http_retries": 0, "ok": 0,
            "quarantined": {}, "failed": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0,
            "busy_s": 0.0}


def tally(stats: dict[str, Any], outcome: Outcome) -> None:
    """Add one item to a stage's counters (cached items count as items and cache hits, no calls)."""
    stats["items"] += 1
    if outcome.cached:
        stats["cache_hits"] += 1
    else:
        stats["llm_calls"] += outcome.attempts
        stats["answer_retries"] += max(0, outcome.attempts - 1)
        stats["http_retries"] += outcome.http_retries
        stats["prompt_tokens"] += outcome.prompt_tokens
        stats["completion_tokens"] += outcome.completion_tokens
        stats["cost_usd"] = round(stats["cost_usd"] + outcome.cost_usd, 8)
    if outcome.status == "ok":
        stats["ok"] += 1
    elif outcome.status == "quarantined":
        stats["quarantined"][outcome.reason] = stats["quarantined"].get(outcome.reason, 0) + 1
    else:
        stats["failed"] += 1


def merge_stats(total: dict[str, Any], part: dict[str, Any]) -> None:
    for k, v in part.items():
        if k == "quarantined":
            total[k] = dict(Counter(total.get(k, {})) + Counter(v))
        elif isinstance(v, (int, float)):
            total[k] = round(total.get(k, 0) + v, 8)

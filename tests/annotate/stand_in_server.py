"""An OpenAI-compatible stand-in chat server for tests and benchmarks: a real HTTP server on
127.0.0.1 (FastAPI + uvicorn in a thread) that answers /v1/chat/completions.

It recognises the stage from the system prompt and answers validly by default (deterministically,
from what the prompt says), or misbehaves as planned per answer kind: `plan[kind]` is a list of
behaviours for a key's 1st, 2nd, ... request (the last one repeats):
    ok | malformed | refusal | truncated | rate_limited (429 + Retry-After) | error (500) | slow |
    bad_labels (stage 3 with an invalid label) | no_subject (stage 3 breaking the subject rule)
Requests are counted per key (the X-InterRVOS-Key header) and logged with timing, and the server
can emulate an endpoint of fixed latency and capacity (at most `slots` answered at once; the rest
wait), as the benchmark needs.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from interrvos.annotate import prompts

KINDS = {prompts.STAGE1_SYSTEM: "describe", prompts.STAGE2_SINGLE_SYSTEM: "expressions",
         prompts.STAGE2_MERGE_SYSTEM: "merge", prompts.STAGE3_SYSTEM: "interactions",
         prompts.STAGE4_BIDIRECTIONAL: "interaction_expression", prompts.STAGE4_UNIDIRECTIONAL: "interaction_expression"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _text(content) -> str:
    if isinstance(content, str):
        return content
    return " ".join(p.get("text", "") for p in content if p.get("type") == "text")


def valid_answer(kind: str, user: str) -> dict:
    """A correct answer for the prompt, derived only from its text (deterministic)."""
    if kind == "describe":
        category = (re.search(r'class "([^"]+)"', user) or [None, "object"])[1]
        return {"appearance": f"A plain {category} with a smooth surface.", "motion": "It drifts slowly across the frame."}
    if kind == "expressions":
        app = re.search(r"appearance_caption: (.*)", user)[1].strip().rstrip(".")
        return {"all": f"{app.lower()} drifting slowly", "motion": "object drifting slowly", "appearance": app.lower()}
    if kind == "merge":
        return {"merged": "NO", "merged_objects": None, "merged_caption": None}
    if kind == "interactions":
        labels = re.findall(r"\[\w+\]", user.split("\n")[0])
        a, b = labels[0], labels[1]
        return {"interaction": "YES", "interactions": [{
            "object_pair": [a, b], "type": "unidirectional", "actors": [a], "targets": [b],
            "descriptions": [f"Object {a} is nudging object {b}.", f"Object {b} is being nudged by object {a}."]}]}
    if kind == "interaction_expression":
        description = re.search(r"interaction_description: (.*)", user)[1]
        phrase = re.sub(r"[Oo]bject \[\w+\]", "thing", description).rstrip(".").replace(" is ", " ")
        return {"class_level": phrase.lower(), "appearance_level": f"plain {phrase.lower()}"}
    raise ValueError(kind)


@dataclass
class Logged:
    key: str
    kind: str
    behaviour: str
    start: float  # when answering began (a free slot)
    end: float = 0.0
    status: int = 200
    arrived: float = 0.0


@dataclass
class StandInServer:
    latency_s: float = 0.0
    slots: int = 0  # 0: unlimited
    retry_after: str = "1"
    slow_s: float = 2.0
    plan: dict[str, list[str]] = field(default_factory=dict)
    log: list[Logged] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)

    def __post_init__(self):
        self.port = free_port()
        self._lock = threading.Lock()
        self.app = FastAPI()
        self.app.post("/v1/chat/completions")(self._chat)
        self.app.get("/_log")(self._get_log)
        self.app.post("/_reset")(self._reset)
        self._server: uvicorn.Server | None = None
        self._slots: asyncio.Semaphore | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def requests_for(self, key_part: str = "") -> int:
        with self._lock:
            return sum(n for k, n in self.counts.items() if key_part in k)

    def reset(self) -> None:
        with self._lock:
            self.log.clear()
            self.counts.clear()

    def _behaviour(self, kind: str, n: int) -> str:
        steps = self.plan.get(kind) or ["ok"]
        return steps[min(n, len(steps) - 1)]

    async def _get_log(self):
        with self._lock:
            return [vars(e) for e in self.log]

    async def _reset(self):
        self.reset()
        return {"ok": True}

    async def _chat(self, request: Request):
        body = await request.json()
        key = request.headers.get("x-interrvos-key", "")
        system = _text(body["messages"][0]["content"])
        user = _text(body["messages"][1]["content"])
        kind = KINDS.get(system, "unknown")
        with self._lock:
            n = self.counts[key]
            self.counts[key] += 1
            now = time.monotonic()
            entry = Logged(key, kind, self._behaviour(kind, n), now, arrived=now)
            self.log.append(entry)
        if self.slots and self._slots is None:
            self._slots = asyncio.Semaphore(self.slots)
        if self._slots is not None:
            async with self._slots:
                entry.start = time.monotonic()  # service starts when a slot frees up
                response = await self._respond(entry, body, kind, user)
        else:
            response = await self._respond(entry, body, kind, user)
        entry.end = time.monotonic()
        entry.status = response.status_code
        return response

    async def _respond(self, entry: Logged, body: dict, kind: str, user: str) -> JSONResponse:
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        b = entry.behaviour
        if b == "rate_limited":
            return JSONResponse({"error": {"message": "rate limited", "type": "rate_limit"}}, status_code=429,
                                headers={"Retry-After": self.retry_after})
        if b == "error":
            return JSONResponse({"error": {"message": "internal error", "type": "server_error"}}, status_code=500)
        if b == "slow":
            await asyncio.sleep(self.slow_s)
        finish = "stop"
        answer = valid_answer(kind, user) if kind != "unknown" else {"text": "?"}
        text = json.dumps(answer)
        if b == "malformed":
            text = text[: len(text) // 2] + " ,,}"
        elif b == "refusal":
            text = "I'm sorry, I cannot help with identifying objects in this video."
        elif b == "truncated":
            text, finish = text[: len(text) // 3], "length"
        elif b == "bad_labels" and kind == "interactions":
            answer["interactions"][0]["object_pair"][1] = "[99]"
            text = json.dumps(answer)
        elif b == "no_subject" and kind == "interactions":
            answer["interactions"][0]["descriptions"] = answer["interactions"][0]["descriptions"][:1]
            text = json.dumps(answer)
        prompt_tokens = sum(len(json.dumps(m["content"])) for m in body["messages"]) // 4
        return JSONResponse({
            "id": "chatcmpl-standin", "object": "chat.completion", "created": int(time.time()), "model": body["model"],
            "choices": [{"index": 0, "finish_reason": finish, "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(text) // 4,
                      "total_tokens": prompt_tokens + len(text) // 4}})

    def start(self) -> StandInServer:
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", loop="asyncio",
                                access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True, name="stand-in-llm")
        self._thread.start()
        deadline = time.time() + 20
        while not self._server.started:
            if time.time() > deadline:
                raise RuntimeError("stand-in server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)

    def mean_outstanding(self) -> float:
        """Requests arrived and not yet answered, averaged over the active window (queued ones included)."""
        done = [e for e in self.log if e.end]
        if not done:
            return 0.0
        window = max(e.end for e in done) - min(e.arrived for e in done)
        return sum(e.end - e.arrived for e in done) / window if window > 0 else 0.0

    def busy_fraction(self) -> float:
        return busy_fraction(self.log, self.slots)


def busy_fraction(log: list[Logged], slots: int) -> float:
    """Share of an endpoint's capacity (slots x its active window) spent answering."""
    done = [e for e in log if e.end]
    if not done or not slots:
        return 0.0
    window = max(e.end for e in done) - min(e.start for e in done)
    return sum(e.end - e.start for e in done) / (slots * window) if window > 0 else 0.0


if __name__ == "__main__":  # a stand-alone endpoint in its own process (the benchmark uses this)
    import argparse

    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--latency", type=float, default=0.2)
    p.add_argument("--slots", type=int, default=16)
    args = p.parse_args()
    server = StandInServer(latency_s=args.latency, slots=args.slots)
    server.port = args.port
    uvicorn.run(server.app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


def by_kind(log: list[Logged]) -> dict[str, list[Logged]]:
    out: dict[str, list[Logged]] = defaultdict(list)
    for e in log:
        out[e.kind].append(e)
    return out

"""The durable answer cache: one JSON file per answered item, written atomically through storage.

Key = (clip, object(s), stage and answer kind, prompt version, model, digest of the prompt text):
`<stage>/<clip>/<kind>-<objects>-<hash>`. Several actors write different keys concurrently; a file
appears whole or not at all (temp + rename locally, one PUT on object stores), so a run killed at
any moment leaves only finished answers behind, and a re-run asks again only for the rest.
Quarantined answers are final outcomes too and are cached (re-asked only with retry_quarantined);
transport failures are not cached.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from typing import Any

from interrvos.data import storage


def text_digest(*parts: str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()[:16]


def cache_key(stage: str, kind: str, clip_id: str, objects: Sequence[str], prompt_version: str, model: str,
              prompt_digest: str) -> str:
    fields = json.dumps([stage, kind, clip_id, list(objects), prompt_version, model, prompt_digest])
    slug = re.sub(r"[^A-Za-z0-9_.-]", "_", "_".join(objects) or "clip")[:60]
    return f"{stage}/{clip_id}/{kind}-{slug}-{hashlib.sha256(fields.encode()).hexdigest()[:20]}"


class AnswerCache:
    def __init__(self, out: str):
        self.root = storage.join(out, "cache")

    def path(self, key: str) -> str:
        return storage.join(self.root, *key.split("/")) + ".json"

    def get(self, key: str) -> dict[str, Any] | None:
        path = self.path(key)
        if not storage.exists(path):
            return None
        try:
            return storage.read_json(path)
        except (json.JSONDecodeError, UnicodeDecodeError, OSError):
            return None  # unreadable: ask again (atomic writes make this a foreign file, not ours)

    def put(self, outcome: dict[str, Any]) -> None:
        storage.write_json(self.path(outcome["key"]), outcome)

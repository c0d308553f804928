"""A held-out linear probe: multinomial logistic regression (torch, L-BFGS, L2) fitted on the states of some
videos and scored on the states of OTHER videos (grouped folds), so a probe cannot pass by recognising a
clip it was fitted on. The floor to beat is the majority class of the fitting folds, scored the same way.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass
class LinearProbe:
    classes: list[str]
    mean: torch.Tensor  # (d,) standardisation from the fitting rows
    std: torch.Tensor
    weight: torch.Tensor  # (C, d)
    bias: torch.Tensor  # (C,)

    def predict(self, x: torch.Tensor) -> list[str]:
        logits = ((x - self.mean) / self.std) @ self.weight.T + self.bias
        return [self.classes[i] for i in logits.argmax(1).tolist()]


def fit_probe(x: torch.Tensor, labels: Sequence[str], l2: float = 1e-2, max_iter: int = 200) -> LinearProbe:
    """Logistic regression on standardised features (x (N, d) float), deterministic (full batch L-BFGS)."""
    classes = sorted(set(labels))
    x = x.double()
    mean, std = x.mean(0), x.std(0, unbiased=False).clamp_min(1e-6)
    z = (x - mean) / std
    y = torch.tensor([classes.index(c) for c in labels])
    weight = torch.zeros(len(classes), x.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(len(classes), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(z @ weight.T + bias, y) + l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    if len(classes) > 1:
        opt.step(closure)
    return LinearProbe(classes, mean, std, weight.detach(), bias.detach())


def grouped_folds(groups: Sequence[str], k: int, seed: int = 0) -> list[list[int]]:
    """Row indices of k folds; every group (source video) lies in exactly one fold."""
    names = sorted(set(groups))
    random.Random(seed).shuffle(names)
    fold_of = {g: i % k for i, g in enumerate(names)}
    return [[i for i, g in enumerate(groups) if fold_of[g] == f] for f in range(min(k, len(names)))]


@dataclass
class ProbeScore:
    accuracy: float  # held-out, pooled over folds, in [0, 1]
    majority: float  # the fitting folds' most common class, scored on the same held-out rows
    rows: int
    classes: int

    def as_dict(self) -> dict:
        return {"accuracy": round(100 * self.accuracy, 1), "majority": round(100 * self.majority, 1),
                "rows": self.rows, "classes": self.classes}  # fmt: skip


def heldout_accuracy(x: torch.Tensor, labels: Sequence[str | None], groups: Sequence[str], folds: int = 5,
                     seed: int = 0, l2: float = 1e-2) -> ProbeScore:  # fmt: skip
    """Fit on k-1 folds of videos, score on the k-th, for every fold; rows without a label are left out."""
    keep = [i for i, y in enumerate(labels) if y is not None]
    x, labels, groups = x[keep], [labels[i] for i in keep], [groups[i] for i in keep]
    correct = majority_correct = scored = 0
    for test in grouped_folds(groups, folds, seed):
        test_set = set(test)
        fit = [i for i in range(len(labels)) if i not in test_set]
        if not fit or not test:
            continue
        probe = fit_probe(x[fit], [labels[i] for i in fit], l2=l2)
        predicted = probe.predict(x[test].double())
        correct += sum(p == labels[i] for p, i in zip(predicted, test, strict=True))
        common = Counter(labels[i] for i in fit).most_common(1)[0][0]
        majority_correct += sum(labels[i] == common for i in test)
        scored += len(test)
    return ProbeScore(correct / max(scored, 1), majority_correct / max(scored, 1), scored, len(set(labels)))

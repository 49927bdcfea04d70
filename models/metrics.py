"""The paper's metric and its companions (definitions in docs/TASKS.md), on masked steps only."""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor

LN2 = math.log(2.0)
# what sequence_metrics gives for every task, and with n-grams' optimal estimator beside them: the
# names logged as `train/<name>`, `val/<name>`, `test/<label>/<name>` (the one list of them)
METRICS = ("cost_bits", "bit_errors", "seq_acc", "bit_acc")
ALL_METRICS = (*METRICS, "optimal_cost_bits")


def sequence_costs(logits: Tensor, targets: Tensor, mask: Tensor) -> Tensor:
    """Binary cross-entropy summed over each sequence's masked bits, in nats: (B,), or (S, B) for
    a population's (S, B, T, O) logits."""
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")  # (..., B, T, O)
    return (bce * mask.unsqueeze(-1)).sum(dim=(-2, -1))


def sequence_metrics(logits: Tensor, targets: Tensor, mask: Tensor,
                     costs: Tensor | None = None) -> dict[str, Tensor]:
    """cost_bits, bit_errors, seq_acc, bit_acc, each averaged over the batch's sequences: scalars,
    or (S,) per member for a population's (S, B, T, O) logits. `costs`: `sequence_costs` of the
    same arguments, where the caller has it already (the loss)."""
    if costs is None:
        costs = sequence_costs(logits, targets, mask)  # (..., B)
    wrong = ((logits > 0) != (targets > 0.5)) & mask.unsqueeze(-1)  # p > 0.5  <=>  logit > 0
    errors = wrong.sum(dim=(-2, -1)).float()  # (..., B)
    scored_bits = mask.sum(dim=(-2, -1)) * targets.shape[-1]  # (...)
    return {
        "cost_bits": costs.mean(-1) / LN2,
        "bit_errors": errors.mean(-1),
        "seq_acc": (errors == 0).float().mean(-1),
        "bit_acc": 1.0 - errors.sum(-1) / scored_bits.clamp(min=1),
    }


def optimal_cost_bits(optimal: Tensor, targets: Tensor, mask: Tensor) -> Tensor:
    """The cost per sequence of the Bayesian optimal N-gram estimator, in bits (per member for
    a population's (S, B, T, 1))."""
    p = optimal.clamp(1e-12, 1 - 1e-12)
    bce = -(targets * p.log() + (1 - targets) * (1 - p).log())  # (..., B, T, 1)
    return (bce * mask.unsqueeze(-1)).sum(dim=(-2, -1)).mean(-1) / LN2

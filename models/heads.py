"""Head parameters (paper section 3.3): one Linear maps the controller output to every head's
parameters at once, then splits and squashes them into the paper's named quantities.

For H = Hr + Hw heads (read heads first, then write heads), memory width M and shift range S:

    key   k      (B, H, M)       linear
    beta  beta   (B, H, 1)       softplus, >= 0
    gate  g      (B, H, 1)       sigmoid, in (0, 1)
    shift s      (B, H, 2S+1)    softmax over offsets -S..S
    gamma gamma  (B, H, 1)       1 + softplus, >= 1
    erase e      (B, Hw, M)      sigmoid (write heads only)
    add   a      (B, Hw, M)      tanh (write heads only)
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Heads(NamedTuple):
    key: Tensor  # (B, H, M)
    beta: Tensor  # (B, H, 1)
    gate: Tensor  # (B, H, 1)
    shift: Tensor  # (B, H, 2S+1)
    gamma: Tensor  # (B, H, 1)
    erase: Tensor  # (B, Hw, M)
    add: Tensor  # (B, Hw, M)


# How the head layer's bias starts (the paper does not say; NTMConfig.head_init):
#   "default": torch's Linear init (small uniform biases): every head's parameters start near the
#              middle of their ranges (gate about 0.5, shift about uniform over -S..S)
#   "forward": the write heads start writing row after row: gate FORWARD_GATE (mostly the
#              previous weighting, not content) and shift +1 with probability FORWARD_SHIFT, so each
#              step writes a row of its own; the read heads as "default"
HEAD_INITS = ("default", "forward")
FORWARD_GATE = 0.1
FORWARD_SHIFT = 0.9


class HeadParams(nn.Module):
    """Controller output (B, C) -> `Heads` for `read_heads` read and `write_heads` write heads."""

    def __init__(
        self,
        in_features: int,
        read_heads: int,
        write_heads: int,
        memory_width: int,
        shift_range: int,
        head_init: str = "default",
    ) -> None:
        super().__init__()
        self.heads, self.write_heads = read_heads + write_heads, write_heads
        self.memory_width = memory_width
        # key, beta, gate, shift, gamma: the addressing parameters every head emits
        self.address_sizes = [memory_width, 1, 1, 2 * shift_range + 1, 1]
        self.address_width = sum(self.address_sizes)
        out = self.heads * self.address_width + write_heads * 2 * memory_width
        self.linear = nn.Linear(in_features, out)
        if head_init == "forward":
            self._start_forward(read_heads, shift_range)

    @torch.no_grad()
    def _start_forward(self, read_heads: int, shift_range: int) -> None:
        """Set the write heads' gate and shift biases for head_init="forward" (HEAD_INITS)."""
        M, S = self.memory_width, shift_range
        bias = self.linear.bias[: self.heads * self.address_width]
        bias = bias.view(self.heads, self.address_width)[read_heads:]  # (Hw, M + 2S + 4)
        bias[:, M + 1] = math.log(FORWARD_GATE / (1 - FORWARD_GATE))  # sigmoid -> FORWARD_GATE
        shift = bias[:, M + 2 : M + 3 + 2 * S]  # (Hw, 2S+1): offsets -S..S; S >= 1 (NTMConfig)
        rest = (1 - FORWARD_SHIFT) / (2 * S)  # the other offsets' share each
        shift.zero_()
        shift[:, S + 1] = math.log(FORWARD_SHIFT / rest)  # softmax -> FORWARD_SHIFT at +1

    def forward(self, h: Tensor) -> Heads:
        return activate(self.linear(h), self.heads, self.write_heads, self.memory_width,
                        self.address_sizes[3])


def activate(raw: Tensor, heads: int, write_heads: int, memory_width: int, shift_width: int) -> Heads:
    """The linear layer's output (B, P) split per head and squashed into the paper's ranges."""
    B, H, Hw, M = raw.shape[0], heads, write_heads, memory_width
    address_width = M + shift_width + 3
    addressing, access = raw.split([H * address_width, Hw * 2 * M], dim=-1)
    addressing = addressing.reshape(B, H, address_width)  # (B, H, M + 2S + 4)
    k, beta, g, s, gamma = addressing.split([M, 1, 1, shift_width, 1], dim=-1)
    e, a = access.reshape(B, Hw, 2 * M).split([M, M], dim=-1)  # (B, Hw, 2M) -> 2 x (B, Hw, M)
    return Heads(
        key=k,
        beta=F.softplus(beta),
        gate=torch.sigmoid(g),
        shift=torch.softmax(s, dim=-1),
        gamma=1 + F.softplus(gamma),
        erase=torch.sigmoid(e),
        add=torch.tanh(a),
    )


def activate_backward(grad: Heads, heads: Heads, raw: Tensor) -> Tensor:
    """The gradient of `activate` with respect to `raw` (B, P), given the gradient of each output
    (`grad`, laid out as `Heads`) and the forward outputs (`heads`)."""
    B, H, M = raw.shape[0], heads.key.shape[1], heads.key.shape[2]
    Hw, K = heads.erase.shape[1], heads.shift.shape[-1]
    address_width = M + K + 3
    addressing = raw[:, : H * address_width].reshape(B, H, address_width)
    # d softplus(x) / dx = sigmoid(x); torch's softplus is x itself above x = 20, where sigmoid
    # differs from its slope 1 by exp(-20) = 2e-9
    grad_beta = grad.beta * torch.sigmoid(addressing[..., M : M + 1])
    grad_gamma = grad.gamma * torch.sigmoid(addressing[..., M + K + 2 :])
    shift_grad = heads.shift * (grad.shift - (grad.shift * heads.shift).sum(-1, keepdim=True))
    d_addressing = torch.cat([
        grad.key,
        grad_beta,
        grad.gate * heads.gate * (1 - heads.gate),
        shift_grad,
        grad_gamma,
    ], dim=-1)  # (B, H, M + 2S + 4)
    d_access = torch.cat([
        grad.erase * heads.erase * (1 - heads.erase),
        grad.add * (1 - heads.add * heads.add),
    ], dim=-1)  # (B, Hw, 2M)
    return torch.cat([d_addressing.reshape(B, H * address_width), d_access.reshape(B, Hw * 2 * M)], -1)

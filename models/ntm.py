"""The Neural Turing Machine (paper section 3): a controller, heads, and an N x M memory.

One step, for input x_t (B, I) and state (M_{t-1}, r_{t-1}, w_{t-1}, controller state):

    h_t   = controller([x_t, r_{t-1}])              # (B, C)
    heads = HeadParams(h_t)                          # k, beta, g, s, gamma, e, a
    w_t   = address(M_{t-1}, w_{t-1}, ...)          # all Hr + Hw heads at once
    r_t   = read(M_{t-1}, w_t[read heads])          # read from the previous memory ...
    M_t   = write(M_{t-1}, w_t[write heads], e, a)  # ... then write the new one
    y_t   = Linear([h_t, r_t])                      # logits (B, O)

The paper does not fix the order of reading and writing inside a step; here reads see M_{t-1}, so a
value written at step t can be read from step t+1 on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn

from .addressing import address, read, write
from .config import check_choice, check_int
from .controller import CONTROLLERS
from .heads import HeadParams

MEMORY_INITS = ("constant", "learned", "random")
CONSTANT_MEMORY = 1e-6  # Collier & Beel (2018): a small constant initial memory trains best


@dataclass
class NTMConfig:
    heads: int = 1  # read/write head pairs; read_heads / write_heads override each side
    read_heads: int | None = None
    write_heads: int | None = None
    memory_size: int = 128  # N
    memory_width: int = 20  # M
    controller: str = "lstm"  # "lstm" or "ff" (feedforward)
    controller_size: int = 100
    controller_layers: int = 1
    shift_range: int = 1  # S: shifts -S..S
    # "constant": every cell 1e-6; "learned": an N x M parameter; "random": a fixed buffer drawn
    # once at construction from N(0, sigma^2), sigma = 1 / sqrt(N + M) (as in pytorch-ntm)
    memory_init: str = "constant"

    def __post_init__(self) -> None:
        check_int("heads", self.heads, 1)
        check_int("read_heads", self.read_heads, 1, allow_none=True)
        check_int("write_heads", self.write_heads, 1, allow_none=True)
        check_int("memory_size", self.memory_size, 1)
        check_int("memory_width", self.memory_width, 1)
        check_choice("controller", self.controller, CONTROLLERS)
        check_int("controller_size", self.controller_size, 1)
        check_int("controller_layers", self.controller_layers, 1)
        # 2S + 1 shifts must fit in the N rows, else offsets would wrap onto each other
        check_int("shift_range", self.shift_range, 0, (self.memory_size - 1) // 2)
        check_choice("memory_init", self.memory_init, MEMORY_INITS)

    @property
    def n_read(self) -> int:
        return self.heads if self.read_heads is None else self.read_heads

    @property
    def n_write(self) -> int:
        return self.heads if self.write_heads is None else self.write_heads


class NTMState(NamedTuple):
    memory: Tensor  # (B, N, M)   M_t
    reads: Tensor  # (B, Hr, M)  r_t
    read_weights: Tensor  # (B, Hr, N)
    write_weights: Tensor  # (B, Hw, N)
    controller: tuple  # the controller's own state; () for the feedforward controller


class NTM(nn.Module):
    def __init__(self, input_size: int, output_size: int, config: NTMConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or NTMConfig()
        Hr, Hw, N, M = c.n_read, c.n_write, c.memory_size, c.memory_width
        controller_cls = CONTROLLERS[c.controller]
        controller_in = input_size + Hr * M
        self.controller = controller_cls(controller_in, c.controller_size, c.controller_layers)
        self.heads = HeadParams(c.controller_size, Hr, Hw, M, c.shift_range)
        self.output = nn.Linear(c.controller_size + Hr * M, output_size)
        # Learned initial read vectors r_0 and weightings w_0 = softmax(logits). The logits start
        # with 90% of each head's weight on row 0: uniform weights on an all-equal (constant)
        # memory would write the same vector to every row forever, and no head could tell the rows
        # apart.
        self.read0 = nn.Parameter(0.1 * torch.randn(Hr, M))  # (Hr, M)
        logits = torch.zeros(Hr + Hw, N)  # (H, N)
        if N > 1:
            logits[:, 0] = math.log(9 * (N - 1))
        self.weight_logits0 = nn.Parameter(logits)
        if c.memory_init != "constant":
            memory0 = torch.randn(N, M) / math.sqrt(N + M)  # (N, M)
            if c.memory_init == "learned":
                self.memory0 = nn.Parameter(memory0)
            else:
                self.register_buffer("memory0", memory0)

    def init_state(self, batch: int, like: Tensor) -> NTMState:
        """The state before the first step, on `like`'s device and (constant memory) dtype."""
        c = self.config
        if c.memory_init == "constant":
            shape = (batch, c.memory_size, c.memory_width)
            memory = like.new_full(shape, CONSTANT_MEMORY)  # (B, N, M)
        else:
            memory = self.memory0.expand(batch, -1, -1)  # (B, N, M)
        weights = torch.softmax(self.weight_logits0, dim=-1).expand(batch, -1, -1)  # (B, H, N)
        read_weights, write_weights = weights.split([c.n_read, c.n_write], dim=1)
        reads = self.read0.expand(batch, -1, -1)  # (B, Hr, M)
        controller = self.controller.init_state(batch, like)
        return NTMState(memory, reads, read_weights, write_weights, controller)

    def step(self, x: Tensor, state: NTMState) -> tuple[Tensor, NTMState]:
        """One time step: x (B, I) -> logits (B, O) and the next state."""
        controller_in = torch.cat([x, state.reads.flatten(1)], dim=-1)  # (B, I + Hr*M)
        h, controller = self.controller.step(controller_in, state.controller)  # (B, C)
        p = self.heads(h)
        w_prev = torch.cat([state.read_weights, state.write_weights], dim=1)  # (B, H, N)
        w = address(state.memory, w_prev, p.key, p.beta, p.gate, p.shift, p.gamma)  # (B, H, N)
        read_weights, write_weights = w.split([self.config.n_read, self.config.n_write], dim=1)
        reads = read(state.memory, read_weights)  # (B, Hr, M), from M_{t-1}
        memory = write(state.memory, write_weights, p.erase, p.add)  # (B, N, M), M_t
        logits = self.output(torch.cat([h, reads.flatten(1)], dim=-1))  # (B, C + Hr*M) -> (B, O)
        return logits, NTMState(memory, reads, read_weights, write_weights, controller)

    def forward(
        self, inputs: Tensor, return_weights: bool = False
    ) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
        """inputs (B, T, I) -> logits (B, T, O).

        With return_weights, also every head's w_t: {"read": (B, T, Hr, N), "write": (B, T, Hw, N)}.
        """
        state = self.init_state(inputs.shape[0], inputs)
        outputs, read_weights, write_weights = [], [], []
        for t in range(inputs.shape[1]):
            y, state = self.step(inputs[:, t], state)
            outputs.append(y)
            read_weights.append(state.read_weights)
            write_weights.append(state.write_weights)
        logits = torch.stack(outputs, dim=1)  # (B, T, O)
        if not return_weights:
            return logits
        read_weights = torch.stack(read_weights, dim=1)  # (B, T, Hr, N)
        write_weights = torch.stack(write_weights, dim=1)  # (B, T, Hw, N)
        return logits, {"read": read_weights, "write": write_weights}

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

Speed (`NTMConfig.fused`, never a change of the math): `step` above is the readable definition, and
`fused="off"` runs it under autograd, one small op at a time. The default runs the same math as one
autograd node for the whole sequence (`FusedSequence`): inputs are projected for all steps at once,
the output layer runs once on all steps, each step runs without autograd, and the backward pass
walks back through time with the hand-derived gradients in addressing.py, heads.py and
controller.py, computing weight gradients as one matrix product per weight. `fused="compile"` also
hands the step and its backward to torch.compile. tests/test_fast_step.py checks every path against
a plain reference step, values and gradients.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from .addressing import (
    _bmm, address, address_backward, address_forward, read, write, write_backward, write_forward,
)
from .config import OptionError, check_choice, check_int
from .controller import CONTROLLERS, controller_backward, controller_forward
from .heads import HEAD_INITS, HeadParams, Heads, activate, activate_backward
from .members import (
    addmatmul, join, linear, linear_steps, looped, matmul_steps, member_rows, members, outer,
    per_row, template_of, total, total_rows,
)

MEMORY_INITS = ("constant", "learned", "random")
CONSTANT_MEMORY = 1e-6  # Collier & Beel (2018): a small constant initial memory trains best
# "off": the readable step under autograd; "eager": the fused sequence; "compile": the fused
# sequence with its step under torch.compile; "auto": eager, then compiled once a model has run
# AUTO_COMPILE_AFTER training passes (compiling costs 20-40 s on a cold cache, 5 s on a warm
# one, on 2 CPU cores: it pays only over a long run; inference stays eager)
FUSED = ("auto", "compile", "eager", "off")
AUTO_COMPILE_AFTER = 100


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
    # how the heads' parameters start: "default" (torch's) or "forward" (write heads start
    # writing row after row; models/heads.py, HEAD_INITS)
    head_init: str = "default"
    # how forward runs, never what it computes (see the module docstring and FUSED)
    fused: str = "auto"
    # a population's members step only while their own sequences run, longest first, as a
    # PackedSequence does (forward's `lengths`); off by default: on a CPU, batch 32, it measured
    # 1.2x per step once compiled, against one compiled graph more per count of members still
    # running (~5-12 s each), so it pays only in long runs (docs/populations.md)
    packed: bool = False

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
        check_choice("head_init", self.head_init, HEAD_INITS)
        if self.head_init == "forward" and self.shift_range < 1:  # no +1 shift to start on
            raise OptionError(f"head_init=forward needs shift_range >= 1 (got {self.shift_range}); "
                              "raise shift_range or use head_init=default")
        check_choice("fused", self.fused, FUSED)

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
    # a population of NTMs runs every member in one batched pass (the fused step, members.py)
    BATCHED_MEMBERS = True

    def __init__(self, input_size: int, output_size: int, config: NTMConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or NTMConfig()
        self._sizes = (input_size, output_size)
        Hr, Hw, N, M = c.n_read, c.n_write, c.memory_size, c.memory_width
        controller_cls = CONTROLLERS[c.controller]
        controller_in = input_size + Hr * M
        self.controller = controller_cls(controller_in, c.controller_size, c.controller_layers)
        self.heads = HeadParams(c.controller_size, Hr, Hw, M, c.shift_range, c.head_init)
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
        # the names of `forward`'s parameters, in order: the fused backward returns gradients by
        # name, so it holds even where the tensors are swapped in (a population's stacked
        # weights, torch.func.functional_call)
        self.parameter_names = tuple(name for name, _ in self.named_parameters())
        # training passes run so far, for fused="auto" (a path choice only, never the math); the
        # Lightning system sets it from the global step, so a resumed run switches where an
        # uninterrupted one did
        self.training_passes = 0

    @property
    def members(self) -> int | None:
        """S for a population (models/members.py: every parameter stacked (S, ...)), else None."""
        return members(self.read0, 2)

    def init_state(self, batch: int, like: Tensor) -> NTMState:
        """The state before the first step, on `like`'s device and (constant memory) dtype. For
        a population `batch` counts the rows of all members, S*B, member-major."""
        c, S = self.config, self.members
        if c.memory_init == "constant":
            shape = (batch, c.memory_size, c.memory_width)
            memory = like.new_full(shape, CONSTANT_MEMORY)  # (B, N, M)
        else:
            memory = per_row(self.memory0, S, batch)  # (B, N, M)
        weights = per_row(torch.softmax(self.weight_logits0, dim=-1), S, batch)  # (B, H, N)
        read_weights, write_weights = weights.split([c.n_read, c.n_write], dim=1)
        reads = per_row(self.read0, S, batch)  # (B, Hr, M)
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
        self, inputs: Tensor, return_weights: bool = False, lengths: Sequence[int] | None = None,
        path: str | None = None,
    ) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
        """inputs (B, T, I) -> logits (B, T, O); for a population (S, B, T, I) -> (S, B, T, O).

        With return_weights, also every head's w_t: {"read": (B, T, Hr, N), "write": (B, T, Hw, N)}
        (a population's with the leading S).

        `lengths` (a population's): the steps each member needs; member s is computed on its
        first lengths[s] steps only, as it would be alone. With `packed`, the members come
        longest first (members.Population sorts them) and a member's rows drop out after its
        last step, as a PackedSequence's do, so a batch padded to the longest member costs what
        its members' own lengths cost. A member's later logits are the output layer's bias alone
        (never scored) and its weightings zero.

        `path`: "off", "eager" or "compile" for this call; None: the one `fused_mode` chooses.
        """
        mode = path or self.fused_mode(inputs.device, torch.is_grad_enabled())
        if self.members is not None:
            return self._population_forward(inputs, return_weights, mode, lengths)
        if mode != "off":
            params = tuple(self.parameters())
            out = FusedSequence.apply(self, fused_steps(mode), return_weights, None, None, inputs,
                                      *params)
            if not return_weights:
                return out
            logits, read_weights, write_weights = out
            return logits, {"read": read_weights, "write": write_weights}
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

    def _population_forward(self, inputs: Tensor, return_weights: bool, mode: str,
                            lengths: Sequence[int] | None):
        """The members at once: the fused sequence on (S*B, T, I) rows with member-stacked
        weights, each member's weight gradients summed over its own `lengths` steps (the rest
        is padding); "off" runs each member's readable step on every step (the reference the
        fused path is tested against).

        Eager, the members run one after another, each as a population of one: ATen's
        vectorized kernels compute a tensor's last few elements (its tail) with scalar code that
        rounds exp, tanh and sigmoid differently, and a member's rows would fall in the tail or
        not depending on the other members. The compiled step has no such tail (its kernels are
        specialized on the shape and run single-threaded, `_compiled`), so there the members
        run as one batch. Either way member s computes what it would compute alone."""
        S, B, T = inputs.shape[:3]
        lengths = [T] * S if lengths is None else [min(int(n), T) for n in lengths]
        if len(lengths) != S or min(lengths) < 1:
            raise ValueError(f"lengths: one per member, each >= 1 (got {lengths})")
        if mode == "off":
            solo = template_of(self, lambda: NTM(*self._sizes, dataclasses.replace(
                self.config, fused="off")).to(self.read0.device))
            return looped(self, solo, inputs, return_weights=return_weights)
        if mode == "eager" and S > 1:
            tensors = {**dict(self.named_parameters()), **dict(self.named_buffers())}
            outs = [torch.func.functional_call(
                self, {name: t[s : s + 1] for name, t in tensors.items()}, (inputs[s : s + 1],),
                {"return_weights": return_weights, "lengths": lengths[s : s + 1], "path": mode})
                for s in range(S)]
            return join(outs)  # (S, B, T, O), as the batched path's
        running, steps = None, max(lengths)  # no member needs the steps after the longest's
        if self.packs and min(lengths) < steps:
            if lengths != sorted(lengths, reverse=True):
                raise ValueError(f"lengths of a packed population: longest first (got {lengths})")
            # rows still running at step t: a prefix, the members sorted
            running = tuple(B * sum(n > t for n in lengths) for t in range(steps))
        rows = inputs[:, :, :steps].reshape(S * B, steps, -1)  # (S*B, T', I), member-major
        params = tuple(self.parameters())
        out = FusedSequence.apply(self, fused_steps(mode), return_weights, running, tuple(lengths),
                                  rows, *params)
        logits, weightings = (out, []) if not return_weights else (out[0], out[1:])
        logits = logits.view(S, B, steps, -1)  # (S, B, T', O)
        if steps < T:  # the steps no member needs: the output layer's bias alone
            tail = self.output.bias.view(S, 1, 1, -1).expand(S, B, T - steps, logits.shape[-1])
            logits = torch.cat([logits, tail], dim=2)  # (S, B, T, O)
        if not return_weights:
            return logits
        read_weights, write_weights = (
            torch.cat([w, w.new_zeros(w.shape[0], T - steps, *w.shape[2:])], 1).view(S, B, T, *w.shape[2:])
            for w in weightings)  # (S*B, T', H, N) -> (S, B, T, H, N)
        return logits, {"read": read_weights, "write": write_weights}

    def fused_mode(self, device: torch.device, training: bool = False) -> str:
        """The path `forward` takes on `device`: "off", "eager" or "compile". "auto" counts the
        training passes (training=True) and compiles those after the first AUTO_COMPILE_AFTER."""
        mode = self.config.fused
        if mode == "auto":
            self.training_passes += int(training)
            mode = "compile" if training and self.training_passes > AUTO_COMPILE_AFTER else "eager"
        if mode == "compile" and (device.type not in ("cpu", "cuda")
                                  or (COMPILE_BACKEND, self.spec) in _COMPILE_FAILED):
            mode = "eager"
        return mode

    @property
    def packs(self) -> bool:
        """Whether a population's forward steps only the members still running (`packed`)."""
        return self.config.packed

    @property
    def spec(self) -> "StepSpec":
        c = self.config
        return StepSpec(self.controller.kind, c.n_read, c.n_write, c.memory_width,
                        2 * c.shift_range + 1)


# -------------------------------------------------------------------------------- the fused path
class StepSpec(NamedTuple):
    """The sizes a fused step is specialized on (torch.compile compiles one graph per spec)."""

    controller: str  # "lstm" or "ff"
    read_heads: int
    write_heads: int
    memory_width: int  # M
    shift_width: int  # 2S + 1


def forward_step(
    spec: StepSpec, base: Tensor, reads: Tensor, controller: tuple, memory: Tensor, w_prev: Tensor,
    controller_weights: tuple, head_weight: Tensor, head_bias: Tensor,
) -> tuple[Tensor, Tensor, tuple, Tensor, Tensor, tuple]:
    """`NTM.step` without autograd and without the output layer; base is the projected input and
    memory is M_{t-1} transposed, (B, M, N).
    -> (h_t, r_t, controller state, M_t^T, w_t (B, H, N), what `backward_step` needs)."""
    Hr, Hw = spec.read_heads, spec.write_heads
    h, controller, controller_saved = controller_forward(
        spec.controller, base, reads.flatten(1), controller, controller_weights)  # (B, C)
    raw = linear(head_bias, h, head_weight)  # (B, P)
    p = activate(raw, Hr + Hw, Hw, spec.memory_width, spec.shift_width)
    w, address_saved = address_forward(memory, w_prev, p.key, p.beta, p.gate, p.shift,
                                       p.gamma)  # (B, H, N)
    w_read, w_write = w.split([Hr, Hw], dim=1)
    reads = _bmm(w_read, memory.transpose(1, 2))  # (B, Hr, M), from M_{t-1}
    new_memory, keep = write_forward(memory, w_write, p.erase, p.add)  # (B, M, N)
    return h, reads, controller, new_memory, w, (controller_saved, raw, p, address_saved, keep)


def backward_step(
    spec: StepSpec, grad_h: Tensor, grad_reads: Tensor, grad_controller: tuple,
    grad_memory: Tensor, grad_w: Tensor, memory: Tensor, w_prev: Tensor, w: Tensor, saved: tuple,
    controller_weights: tuple, head_weight: Tensor,
) -> tuple[Tensor, tuple, Tensor, Tensor, tuple, Tensor]:
    """The gradient of `forward_step`. In: the gradients of its outputs h_t (from the output
    layer), r_t (B, Hr*M), the controller state, M_t and w_t (from step t+1), and its inputs
    memory = M_{t-1}^T, w_prev, w = w_t. -> the gradients of r_{t-1} (B, Hr*M), the previous
    controller state, M_{t-1}^T and w_{t-1}, with each controller layer's and the head layer's
    pre-activation gradients (for the weight gradients)."""
    controller_saved, raw, p, address_saved, keep = saved
    Hr, Hw, M = spec.read_heads, spec.write_heads, spec.memory_width
    w_read, w_write = w.split([Hr, Hw], dim=1)
    grad_reads = grad_reads.view(-1, Hr, M)  # (B, Hr, M)
    grad_w_read = _bmm(grad_reads, memory)  # (B, Hr, N)
    grad_memory, grad_w_write, grad_erase, grad_add = write_backward(
        grad_memory, memory, w_write, p.erase, p.add, keep)
    grad_memory = grad_memory + _bmm(grad_reads.transpose(1, 2), w_read)  # (B, M, N)
    grad_w = grad_w + torch.cat([grad_w_read, grad_w_write], dim=1)  # (B, H, N)
    grad_content_memory, grad_w_prev, *grad_address = address_backward(
        grad_w, w, memory, w_prev, p.key, p.beta, p.gate, p.shift, p.gamma, address_saved)
    grad_raw = activate_backward(Heads(*grad_address, grad_erase, grad_add), p, raw)  # (B, P)
    grad_h = addmatmul(grad_h, grad_raw, head_weight)  # (B, C)
    grad_reads_prev, grad_controller, grad_pre = controller_backward(
        spec.controller, grad_h, grad_controller, controller_saved, controller_weights)
    return (grad_reads_prev, grad_controller, grad_memory + grad_content_memory, grad_w_prev,
            grad_pre, grad_raw)


class FusedSequence(torch.autograd.Function):
    """NTM.forward over a whole sequence as one autograd node; see the module docstring."""

    @staticmethod
    def forward(ctx, net: NTM, steps: tuple[Callable, Callable], return_weights: bool,
                running: tuple[int, ...] | None, lengths: tuple[int, ...] | None, inputs: Tensor,
                *params: Tensor):
        spec = net.spec
        B, T, I = inputs.shape
        running = running or (B,) * T  # rows stepped at each t: a prefix (members sorted by length)
        per_member = B // (net.members or 1)
        x = inputs.transpose(0, 1)  # (T, B, I)
        base = net.controller.project(x, lengths)  # (T, B, G): layer 0's input share, all steps
        state = net.init_state(B, inputs)
        weights = (net.controller.layer_weights(I), net.heads.linear.weight, net.heads.linear.bias)
        # contiguous initial state: step 0 then sees the same strides as every later step; and
        # detached: at batch 1 r_0 is a view of the parameter read0, which says requires_grad
        # even here, so step 0 would compile a graph of its own (this Function's backward is the
        # gradient, not autograd)
        reads, controller = state.reads.detach().contiguous(), state.controller
        memory = state.memory.transpose(1, 2).contiguous()  # (B, M, N)
        w = torch.cat([state.read_weights, state.write_weights], dim=1)  # (B, H, N)
        C, HrM = net.controller.size, spec.read_heads * spec.memory_width
        features = x.new_zeros(T, B, C + HrM)  # (T, B, C + Hr*M): h_t and r_t; 0 once a row ends
        ws, memories, saved, step_weights = [w], [], [], weights
        for t in range(T):
            n = running[t]
            if n < reads.shape[0]:  # members whose sequences ended drop out: their rows are last
                reads, memory, w = reads[:n], memory[:n], w[:n]
                controller = tuple((h[:n], c[:n]) for h, c in controller)
                step_weights = first_members(weights, n // per_member)
            memories.append(memory)
            h, reads, controller, memory, w, step_saved = steps[0](
                spec, base[t, :n], reads, controller, memory, w, *step_weights)
            features[t, :n, :C] = h
            features[t, :n, C:] = reads.flatten(1)
            ws.append(w)
            saved.append(step_saved)
        out = net.output
        logits = linear_steps(features, out.weight, out.bias, lengths)  # (T, B, O)
        logits = logits.transpose(0, 1).contiguous()  # (B, T, O)
        if any(ctx.needs_input_grad):  # keep what backward needs only when it will run
            # the weights this pass used, by name: backward computes with these, not with what
            # the module holds by then (a functional_call has restored its own tensors)
            ctx.net, ctx.steps, ctx.weights = net, steps, dict(zip(net.parameter_names, params))
            ctx.tensors = (x, features, memories, ws, saved, weights, running)
            ctx.lengths = lengths  # a population's steps per member: its weight gradients' sums
            # read now: by backward, a functional_call has put the module's own tensors back
            ctx.members = net.members
        if not return_weights:
            return logits
        all_w = torch.stack([pad_rows(w, B) for w in ws[1:]], dim=1)  # (B, T, H, N)
        read_w, write_w = all_w[:, :, : spec.read_heads], all_w[:, :, spec.read_heads :]
        ctx.mark_non_differentiable(read_w, write_w)
        return logits, read_w.contiguous(), write_w.contiguous()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_logits: Tensor, *_: Tensor):
        net, spec, W = ctx.net, ctx.net.spec, ctx.weights
        x, features, memories, ws, saved, weights, running = ctx.tensors
        T, B, I = x.shape
        C, Hr, M = net.controller.size, spec.read_heads, spec.memory_width
        # the output layer, all steps at once
        S = ctx.members  # None, or the population's members (rows are S*B', member-major)
        per_member = B // (S or 1)
        grad_out = grad_logits.transpose(0, 1)  # (T, B, O)
        lengths = ctx.lengths
        grads = {"output.weight": outer(grad_out, features, S, lengths),
                 "output.bias": total(grad_out, S, lengths)}
        if lengths is not None and min(lengths) < T:  # a member's later steps: the bias alone
            grads["output.bias"] = grads["output.bias"] + torch.stack(
                [member_rows(grad_out[n:], S, s).sum(0) for s, n in enumerate(lengths)])
        grad_features = matmul_steps(grad_out, W["output.weight"], lengths)  # (T, B, C + Hr*M)
        grad_hidden, grad_read_seq = grad_features.split([C, Hr * M], dim=-1)
        # back through time, from the rows that ran the last step
        n = running[-1]
        controller_weights, head_weight, _ = first_members(weights, n // per_member)
        grad_controller = tuple((x.new_zeros(n, C), x.new_zeros(n, C)) for _ in controller_weights) \
            if spec.controller == "lstm" else ()
        grad_reads = x.new_zeros(n, Hr * M)
        grad_memory = torch.zeros_like(memories[-1])  # (n, M, N)
        grad_w = torch.zeros_like(ws[-1])
        grad_pre, grad_raw = [], []
        for t in reversed(range(T)):
            if running[t] > n:  # members whose last step is t join: nothing later came from them
                n = running[t]
                grad_reads, grad_memory, grad_w = (pad_rows(g, n) for g in (grad_reads, grad_memory, grad_w))
                grad_controller = tuple((pad_rows(h, n), pad_rows(c, n)) for h, c in grad_controller)
                controller_weights, head_weight, _ = first_members(weights, n // per_member)
            grad_reads, grad_controller, grad_memory, grad_w, step_pre, step_raw = ctx.steps[1](
                spec, grad_hidden[t, :n], grad_read_seq[t, :n] + grad_reads, grad_controller,
                grad_memory, grad_w, memories[t], ws[t][:n], ws[t + 1], saved[t], controller_weights,
                head_weight)
            grad_pre.append(tuple(pad_rows(g, B) for g in step_pre))
            grad_raw.append(pad_rows(step_raw, B))
        # weight gradients: one product per weight over all steps (lists run t = T-1 .. 0)
        grad_raw = torch.stack(grad_raw[::-1])  # (T, B, P)
        grads["heads.linear.weight"] = outer(grad_raw, features[..., :C], S, lengths)
        grads["heads.linear.bias"] = total(grad_raw, S, lengths)
        layers = len(controller_weights)
        pre = [torch.stack([g[layer] for g in grad_pre[::-1]]) for layer in range(layers)]  # (T, B, G)
        v = [torch.stack([pad_rows(s[0][layer][0], B) for s in saved])
             for layer in range(layers)]  # (T, B, D)
        controller_grads, grad_x = net.controller.weight_grads(x, pre, v, W, "controller.", lengths)
        grads.update(controller_grads)
        # the initial state: r_0, w_0 = softmax(logits) and (learned) M_0, shared by the batch
        # (by each member's batch in a population)
        grads["read0"] = total_rows(grad_reads, S).view(W["read0"].shape)  # (Hr, M) or (S, Hr, M)
        w0 = torch.softmax(W["weight_logits0"], dim=-1)  # (H, N) or (S, H, N)
        grad_w0 = total_rows(grad_w, S)
        grads["weight_logits0"] = w0 * (grad_w0 - (grad_w0 * w0).sum(-1, keepdim=True))
        if "memory0" in W:  # learned initial memory (a "random" one is a buffer)
            grads["memory0"] = total_rows(grad_memory, S).transpose(-1, -2)
        grad_inputs = grad_x.transpose(0, 1) if ctx.needs_input_grad[5] else None
        return (None, None, None, None, None, grad_inputs,
                *(grads.get(name) for name in net.parameter_names))


def first_members(weights: tuple, k: int) -> tuple:
    """The fused step's weights (controller layers' (W, bias), head weight, head bias) cut to the
    first k members (a solo network's are returned whole)."""
    controller, head_weight, head_bias = weights
    if head_weight.dim() == 2 or k == head_weight.shape[0]:
        return weights
    return (tuple((w[:k], None if b is None else b[:k]) for w, b in controller),
            head_weight[:k], head_bias[:k])


def pad_rows(t: Tensor, rows: int) -> Tensor:
    """`t` (n, ...) with zero rows appended up to `rows`: a row that ended has no state, no
    gradient."""
    if t.shape[0] == rows:
        return t
    return torch.cat([t, t.new_zeros(rows - t.shape[0], *t.shape[1:])])


COMPILE_BACKEND = "inductor"  # tests swap in a cheaper backend to check tracing alone
_COMPILED: dict[tuple[str, str], Callable] = {}
# why torch.compile failed, per (backend, spec): that spec runs eager from then on, other specs
# still compile (a sweep's trials and the bench's sections share one process)
_COMPILE_FAILED: dict[tuple[str, StepSpec], str] = {}
RECOMPILE_LIMIT = 128


def compiler_errors() -> tuple[type[BaseException], ...]:
    """The exceptions torch.compile raises when it, not the code it compiles, fails. Dynamo wraps
    the backend's failures (BackendCompilerFailed, InductorError) and its own (Unsupported,
    TorchRuntimeError) in TorchDynamoException; a few inductor and recompile-limit errors are not
    wrapped. A bug in the step itself can surface as one of these while tracing, so the caller
    reruns the step eagerly, where the bug raises again."""
    # imported only once a call failed, for start-up time (the compiler's modules are large)
    from torch._dynamo import exc as dynamo_exc
    from torch._inductor import exc as inductor_exc

    return (dynamo_exc.TorchDynamoException, dynamo_exc.FailOnRecompileLimitHit,
            inductor_exc.CppCompileError, inductor_exc.InvalidCxxCompiler,
            inductor_exc.OperatorIssue)


def _compiled(name: str, eager: Callable) -> Callable:
    """`eager` under torch.compile; if compiling fails for a spec, warn once and run that spec
    eager from then on. Any other error propagates."""

    def call(spec: StepSpec, *args):
        failed_key = (COMPILE_BACKEND, spec)
        if failed_key in _COMPILE_FAILED:
            return eager(spec, *args)
        key = (name, COMPILE_BACKEND)
        if key not in _COMPILED:
            # one graph per model size and batch: a sweep's trials in one process need more
            # than dynamo's default 8 per function (past it, fullgraph=True raises)
            config = torch._dynamo.config
            config.recompile_limit = max(config.recompile_limit, RECOMPILE_LIMIT)
            # single-threaded kernels: split over threads, a reduction's order would depend
            # on how many rows the step has, so a population member's numbers on the others
            options = {"cpp.threads": 1} if COMPILE_BACKEND == "inductor" else None
            _COMPILED[key] = torch.compile(eager, backend=COMPILE_BACKEND, dynamic=False,
                                           fullgraph=True, options=options)
        try:
            return _COMPILED[key](spec, *args)
        except compiler_errors() as error:
            # a bug in the step (a shape error, say) fails in tracing too: eager raises it again
            result = eager(spec, *args)
            reason = f"{type(error).__name__}: {(str(error).splitlines() or [''])[0][:200]}"
            _COMPILE_FAILED[failed_key] = reason
            warnings.warn(f"torch.compile failed for {spec}, it runs eager: {reason}",
                          stacklevel=2)
            return result

    return call


_EAGER_STEPS = (forward_step, backward_step)
_COMPILED_STEPS = (_compiled("forward", forward_step), _compiled("backward", backward_step))


def fused_steps(mode: str) -> tuple[Callable, Callable]:
    """(forward_step, backward_step) for mode "eager" or "compile"."""
    return _COMPILED_STEPS if mode == "compile" else _EAGER_STEPS

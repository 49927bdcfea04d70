"""A member dimension: S independent networks of one structure trained as one batched computation.

A population is a network whose every parameter has a leading member dimension S, stacked from S
networks of the same structure (`stack`); member s's parameters are `parameter[s]`, so member s's
state dict is a solo network's (`member_state`). Activations keep the members apart by laying them
out member-major: (S*B, ...), member s in rows s*B .. s*B + B - 1. Only the products with weights
differ from a solo network's, and they go through the helpers below, which take a solo weight
(out, in) or a member-stacked one (S, out, in):

    linear(bias, x, weight)        bias + x @ weight^T   x (S*B, in) -> (S*B, out)
    addmatmul(base, x, weight)     base + x @ weight     x (S*B, out) -> (S*B, in)
    matmul(x, weight)              x @ weight            x (S*B, out) -> (S*B, in)
    linear_steps, matmul_steps     the same for every step at once: (T, S*B, .)
    outer(g, v, S)                 sum over rows of g^T v    per member: (S, G, D)
    total(g, S), total_rows(x, S)  sums over rows            per member: (S, ...)

Members whose sequences differ in length share one batch padded at the end
(datamodules/population.py: `pad_to_longest`).

Everything elementwise (addressing, gates, reads and writes) runs on (S*B, ...) unchanged.
A network without a batched member path runs its members one after another (`looped`): the same
numbers, without the speed.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import Tensor, nn


def members(weight: Tensor, solo_dims: int) -> int | None:
    """S for a member-stacked `weight` (one more dimension than a solo one has), else None."""
    return weight.shape[0] if weight.dim() == solo_dims + 1 else None


def linear(bias: Tensor, x: Tensor, weight: Tensor) -> Tensor:
    """bias + x @ weight^T. Solo: weight (out, in), bias (out,) or (B, out). Members: weight
    (S, out, in), x (S*B, in), bias (S, out) or (S*B, out)."""
    if weight.dim() == 2:
        return torch.addmm(bias, x, weight.t())
    S, out = weight.shape[0], weight.shape[1]
    xs = x.view(S, -1, x.shape[-1])  # (S, B, in)
    return torch.baddbmm(bias.view(S, -1, out), xs, weight.transpose(1, 2)).view(-1, out)


def matmul(x: Tensor, weight: Tensor) -> Tensor:
    """x @ weight: (B, out) @ (out, in), or per member (S*B, out) @ (S, out, in) -> (S*B, in)."""
    if weight.dim() == 2:
        return x @ weight
    S = weight.shape[0]
    return torch.bmm(x.view(S, -1, x.shape[-1]), weight).view(-1, weight.shape[-1])


def addmatmul(base: Tensor, x: Tensor, weight: Tensor) -> Tensor:
    """base + x @ weight, solo or per member (base and x (S*B, .), weight (S, out, in))."""
    if weight.dim() == 2:
        return torch.addmm(base, x, weight)
    S = weight.shape[0]
    out = torch.baddbmm(base.view(S, -1, base.shape[-1]), x.view(S, -1, x.shape[-1]), weight)
    return out.view(-1, weight.shape[-1])


def linear_steps(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """Every step at once: (T, B, I) through `weight` (G, I) or per member (S, G, I) -> (T, B, G)."""
    T, B, I = x.shape
    if weight.dim() == 2:
        return torch.addmm(bias, x.reshape(-1, I), weight.t()).view(T, B, -1)
    S = weight.shape[0]
    rows = x.reshape(T, S, B // S, I).transpose(0, 1).reshape(S, -1, I)  # (S, T*B', I)
    out = torch.baddbmm(bias.unsqueeze(1), rows, weight.transpose(1, 2))  # (S, T*B', G)
    return steps_major(out, T, B)


def matmul_steps(g: Tensor, weight: Tensor) -> Tensor:
    """Every step at once: (T, B, G) @ weight (G, I), or per member (S, G, I) -> (T, B, I)."""
    if weight.dim() == 2:
        return g @ weight
    T, B, G = g.shape
    S = weight.shape[0]
    rows = g.reshape(T, S, B // S, G).transpose(0, 1).reshape(S, -1, G)  # (S, T*B', G)
    return steps_major(torch.bmm(rows, weight), T, B)


def steps_major(out: Tensor, T: int, B: int) -> Tensor:
    """(S, T*B', X) per-member rows -> (T, B, X), contiguous: row t is then (B, X) with strides
    that do not depend on T, as a solo run's are, so the compiled step (specialized on strides)
    is not compiled again for every sequence length."""
    S = out.shape[0]
    return out.view(S, T, B // S, -1).transpose(0, 1).contiguous().view(T, B, -1)  # (T, S, B', X)


def _by_member(a: Tensor, S: int) -> Tensor:
    """(R, S*B, X) or (S*B, X) rows, member-major within each leading index -> (S, R*B, X)."""
    if a.dim() == 2:
        a = a.unsqueeze(0)
    R, X = a.shape[0], a.shape[-1]
    return a.reshape(R, S, -1, X).transpose(0, 1).reshape(S, -1, X)  # (S, R*B, X)


def outer(g: Tensor, v: Tensor, S: int | None) -> Tensor:
    """The weight gradient sum_rows g^T v: (G, D) solo (rows flattened), (S, G, D) per member
    (g, v as (R, S*B, .) or (S*B, .))."""
    if S is None:
        return g.reshape(-1, g.shape[-1]).t() @ v.reshape(-1, v.shape[-1])
    return torch.bmm(_by_member(g, S).transpose(1, 2), _by_member(v, S))  # (S, G, D)


def total(g: Tensor, S: int | None) -> Tensor:
    """The bias gradient: g summed over rows, (G,) solo or (S, G) per member."""
    if S is None:
        return g.reshape(-1, g.shape[-1]).sum(0)
    return _by_member(g, S).sum(1)  # (S, G)


def total_rows(x: Tensor, S: int | None) -> Tensor:
    """(B, ...) summed over the batch: (...) solo, (S, ...) per member (rows (S*B, ...))."""
    if S is None:
        return x.sum(0)
    return x.view(S, -1, *x.shape[1:]).sum(1)


def per_row(x: Tensor, S: int | None, batch: int) -> Tensor:
    """A per-network tensor (solo: (...); members: (S, ...)) expanded to every row of its
    network: (B, ...) solo, (S*B, ...) member-major."""
    if S is None:
        return x.expand(batch, *x.shape)
    return x.unsqueeze(1).expand(S, batch // S, *x.shape[1:]).reshape(batch, *x.shape[1:])


def stack(nets: Sequence[nn.Module]) -> nn.Module:
    """One population network from S networks of one structure: every parameter and buffer of
    the first, with each member's values stacked on a new leading dimension (S, ...)."""
    first = nets[0]
    population = copy.deepcopy(first)
    for name, _ in first.named_parameters():
        stacked = torch.stack([net.get_parameter(name).detach() for net in nets])  # (S, ...)
        module, _, attr = name.rpartition(".")
        setattr(population.get_submodule(module), attr, nn.Parameter(stacked.clone()))
    for name, _ in first.named_buffers():
        stacked = torch.stack([net.get_buffer(name) for net in nets])  # (S, ...)
        module, _, attr = name.rpartition(".")
        population.get_submodule(module).register_buffer(attr, stacked.clone())
    return population


def looped(population: nn.Module, template: nn.Module, inputs: Tensor, **kwargs):
    """The population's forward as S solo forwards of `template` (a solo network of its
    structure) on member s's parameters and inputs[s]; outputs stacked on a leading S."""
    outs = []
    for s in range(inputs.shape[0]):
        state = {n: p[s] for n, p in population.named_parameters()}
        state |= {n: b[s] for n, b in population.named_buffers()}
        outs.append(torch.func.functional_call(template, state, (inputs[s],), kwargs))
    if isinstance(outs[0], Tensor):
        return torch.stack(outs)
    logits = torch.stack([o[0] for o in outs])
    return logits, {k: torch.stack([o[1][k] for o in outs]) for k in outs[0][1]}


def template_of(population: nn.Module, build) -> nn.Module:
    """A solo network of the population's structure, built once by `build()` and kept outside
    the module tree (it holds no parameters of the population; `looped` swaps members' in)."""
    template = population.__dict__.get("_member_template")
    if template is None:
        template = build()
        population.__dict__["_member_template"] = template
    return template


class Population(nn.Module):
    """S solo networks of one structure trained as one. Each member keeps its own parameters
    (so its own optimizer parameter group, learning rate included, and its own state dict: a
    solo checkpoint); every forward stacks them into the member-batched network (`stack`), so
    the fused step runs all members in one pass, and the gradients flow back to each member.

        population = Population([net_0, net_1, net_2])
        optimizer = torch.optim.Adam([{"params": m.parameters(), "lr": lr} for m, lr in
                                      zip(population.members, (1e-3, 3e-4, 1e-4))])
        logits = population(inputs)   # (S, B, T, I) -> (S, B, T, O)
    """

    def __init__(self, nets: Sequence[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(nets)
        # the stacked structure, outside the module tree: its tensors are swapped for the
        # members' stacked ones at every forward
        self.__dict__["body"] = stack(nets)

    def stacked(self, order: Sequence[int] | None = None) -> dict[str, Tensor]:
        """Every parameter and buffer of the members, stacked (S, ...) in `order` (default: as
        listed), by name."""
        first = self.members[0]
        nets = self.members if order is None else [self.members[s] for s in order]
        tensors = {name: torch.stack([m.get_parameter(name) for m in nets])
                   for name, _ in first.named_parameters()}
        tensors |= {name: torch.stack([m.get_buffer(name) for m in nets])
                    for name, _ in first.named_buffers()}
        return tensors

    def forward(self, inputs: Tensor, lengths: Sequence[int] | None = None, **kwargs):
        """inputs (S, B, T, I): member s's batch at [s] -> the body's outputs, member s at [s].

        `lengths`: the steps member s needs (its batch's last scored step; later ones are
        padding). For a body that `packs` (an NTM with `packed`) the members are stacked longest
        first, so that it steps only the rows still running (models/ntm.py), and the outputs
        are put back in member order; other bodies compute every step."""
        if lengths is None or not getattr(self.body, "packs", False):
            return torch.func.functional_call(self.body, self.stacked(), (inputs,), kwargs)
        lengths = [int(n) for n in lengths]
        order = sorted(range(len(lengths)), key=lambda s: -lengths[s])  # stable: ties keep order
        if order == sorted(order):
            return torch.func.functional_call(self.body, self.stacked(), (inputs,),
                                              {**kwargs, "lengths": lengths})
        index = torch.tensor(order, device=inputs.device)
        out = torch.func.functional_call(self.body, self.stacked(order), (inputs[index],),
                                         {**kwargs, "lengths": [lengths[s] for s in order]})
        back = torch.tensor(sorted(range(len(order)), key=order.__getitem__), device=inputs.device)
        if isinstance(out, tuple):  # (logits, {"read": ..., "write": ...})
            logits, weightings = out
            return logits[back], {k: w[back] for k, w in weightings.items()}
        return out[back]


def member_state(population: nn.Module, s: int) -> dict[str, Tensor]:
    """Member s's state dict: what a solo network of its structure loads."""
    return {k: v[s].clone() for k, v in population.state_dict().items()}

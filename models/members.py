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
    outer(g, v, S, lengths)        sum over rows of g^T v    per member: (S, G, D)
    total(g, S, lengths)           sums over rows            per member: (S, ...)

With `lengths`, the products and sums over time run member by member over each member's own
steps, so that member s computes exactly what it computes alone (docs/populations.md).

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


def linear_steps(x: Tensor, weight: Tensor, bias: Tensor,
                 lengths: Sequence[int] | None = None) -> Tensor:
    """Every step at once: (T, B, I) through `weight` (G, I) or per member (S, G, I) -> (T, B, G).
    With `lengths`, member s's product covers its first lengths[s] steps only (as `outer`: one
    product over every member's padded steps has rows of another count, which a matrix library
    may sum in another order), and its later steps hold the bias alone."""
    T, B, I = x.shape
    if weight.dim() == 2:
        return torch.addmm(bias, x.reshape(-1, I), weight.t()).view(T, B, -1)
    S = weight.shape[0]
    if lengths is not None:
        per = B // S
        out = bias.repeat_interleave(per, 0).expand(T, B, -1).clone()  # (T, B, G): bias alone
        for s, n in enumerate(lengths):
            own = torch.addmm(bias[s], member_rows(x, S, s, n), weight[s].t())  # (n*B', G)
            out[:n, s * per : (s + 1) * per] = own.view(n, per, -1)
        return out
    rows = x.reshape(T, S, B // S, I).transpose(0, 1).reshape(S, -1, I)  # (S, T*B', I)
    out = torch.baddbmm(bias.unsqueeze(1), rows, weight.transpose(1, 2))  # (S, T*B', G)
    return steps_major(out, T, B)


def matmul_steps(g: Tensor, weight: Tensor, lengths: Sequence[int] | None = None) -> Tensor:
    """Every step at once: (T, B, G) @ weight (G, I), or per member (S, G, I) -> (T, B, I); with
    `lengths`, member s's over its first lengths[s] steps (zeros after), as `linear_steps`."""
    if weight.dim() == 2:
        return g @ weight
    T, B, G = g.shape
    S = weight.shape[0]
    if lengths is not None:
        per = B // S
        out = g.new_zeros(T, B, weight.shape[-1])  # (T, B, I)
        for s, n in enumerate(lengths):
            out[:n, s * per : (s + 1) * per] = (member_rows(g, S, s, n) @ weight[s]).view(n, per, -1)
        return out
    rows = g.reshape(T, S, B // S, G).transpose(0, 1).reshape(S, -1, G)  # (S, T*B', G)
    return steps_major(torch.bmm(rows, weight), T, B)


def steps_major(out: Tensor, T: int, B: int) -> Tensor:
    """(S, T*B', X) per-member rows -> (T, B, X), contiguous: row t is then (B, X) with strides
    that do not depend on T, as a solo run's are, so the compiled step (specialized on strides)
    is not compiled again for every sequence length."""
    S = out.shape[0]
    return out.view(S, T, B // S, -1).transpose(0, 1).contiguous().view(T, B, -1)  # (T, S, B', X)


def member_rows(a: Tensor, S: int, s: int, steps: int | None = None) -> Tensor:
    """Member s's rows of `a` as one (rows, X) matrix: of (T, S*B, X) its steps < `steps` (all
    when None), of (S*B, X) its B rows. Contiguous, laid out as a population of one's whole
    tensor is, so a product or sum over them is the same operation in any population."""
    B = a.shape[-2] // S
    rows = a[..., s * B : (s + 1) * B, :]  # (T, B, X) or (B, X)
    if a.dim() == 3 and steps is not None:
        rows = rows[:steps]  # (steps, B, X): the steps after are padding, all zero
    return rows.reshape(-1, a.shape[-1])  # (T*B, X)


def _steps(S: int, lengths: Sequence[int] | None) -> list[int | None]:
    return list(lengths) if lengths is not None else [None] * S


# The sums over rows below run member by member, each over exactly its own steps: one product
# over a whole population's rows would sum member s's rows in an order (and with padding steps)
# that depend on the other members, so its gradient would change, in the last bits, with the
# company it trains in (docs/populations.md: a member's numbers do not depend on its population).
def outer(g: Tensor, v: Tensor, S: int | None, lengths: Sequence[int] | None = None) -> Tensor:
    """The weight gradient sum_rows g^T v: (G, D) solo (rows flattened), (S, G, D) per member
    (g, v as (T, S*B, .) or (S*B, .); member s summed over its first lengths[s] steps)."""
    if S is None:
        return g.reshape(-1, g.shape[-1]).t() @ v.reshape(-1, v.shape[-1])
    return torch.stack([member_rows(g, S, s, n).t() @ member_rows(v, S, s, n)
                        for s, n in enumerate(_steps(S, lengths))])  # (S, G, D)


def total(g: Tensor, S: int | None, lengths: Sequence[int] | None = None) -> Tensor:
    """The bias gradient: g summed over rows, (G,) solo or (S, G) per member (as `outer`)."""
    if S is None:
        return g.reshape(-1, g.shape[-1]).sum(0)
    return torch.stack([member_rows(g, S, s, n).sum(0)
                        for s, n in enumerate(_steps(S, lengths))])  # (S, G)


def total_rows(x: Tensor, S: int | None) -> Tensor:
    """(B, ...) summed over the batch: (...) solo, (S, ...) per member (rows (S*B, ...))."""
    if S is None:
        return x.sum(0)
    B = x.shape[0] // S
    return torch.stack([x[s * B : (s + 1) * B].sum(0) for s in range(S)])  # (S, ...)


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


def looped(population: nn.Module, template: nn.Module, inputs: Tensor,
           lengths: Sequence[int] | None = None, **kwargs):
    """The population's forward as S solo forwards of `template` (a solo network of its
    structure) on member s's parameters and inputs[s]; outputs stacked on a leading S. With
    `lengths`, member s runs its first lengths[s] steps only (the rest is padding: its outputs
    there are zeros), so its numbers do not depend on how far the others' sequences run."""
    outs, T = [], inputs.shape[2]
    for s in range(inputs.shape[0]):
        state = {n: p[s] for n, p in population.named_parameters()}
        state |= {n: b[s] for n, b in population.named_buffers()}
        steps = T if lengths is None else min(int(lengths[s]), T)
        out = torch.func.functional_call(template, state, (inputs[s, :, :steps],), kwargs)
        outs.append(_pad_steps(out, T))
    return join(outs, torch.stack)


def join(outs: list, combine=torch.cat):
    """Per-member outputs, each logits or (logits, {name: weightings}), joined into one by
    `combine` (torch.stack for solo outputs, torch.cat for populations of one)."""
    if isinstance(outs[0], Tensor):
        return combine(outs)
    return combine([o[0] for o in outs]), {k: combine([o[1][k] for o in outs]) for k in outs[0][1]}


def _pad_steps(out, T: int):
    """A member's outputs (B, T', ...) (or (logits, {name: weightings})) zero-padded to T steps."""
    if isinstance(out, tuple):
        return _pad_steps(out[0], T), {k: _pad_steps(w, T) for k, w in out[1].items()}
    if out.shape[1] == T:
        return out
    return torch.cat([out, out.new_zeros(out.shape[0], T - out.shape[1], *out.shape[2:])], 1)


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
        padding): the body computes member s on those steps only, as it would alone. For a body
        that `packs` (an NTM with `packed`) the members are stacked longest first, so that it
        steps only the rows still running (models/ntm.py), and the outputs are put back in
        member order."""
        if lengths is None:
            return torch.func.functional_call(self.body, self.stacked(), (inputs,), kwargs)
        lengths = [int(n) for n in lengths]
        order = sorted(range(len(lengths)), key=lambda s: -lengths[s])  # stable: ties keep order
        if not getattr(self.body, "packs", False) or order == sorted(order):
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

"""Controllers (paper section 3.4): the network that reads the input and drives the heads.

Both share one interface, so the NTM step does not know which it holds:

    state = controller.init_state(batch, like)   # tensors on like's device and dtype
    h, state = controller.step(x, state)          # x (B, I) -> h (B, size)

LSTM: a stack of `layers` nn.LSTMCell; its state is a tuple of (h, c) pairs, one per layer, each
(B, size), zeros at the start.
Feedforward: `layers` x (Linear + ReLU); its state is the empty tuple.

For the fused NTM (models/ntm.py) each controller also exposes its layers in one common form,
layer l computing its pre-activation as `base_l + v_l @ W_l^T`:

    layer 0:  base = x_t @ W_x^T + biases, computed for all steps at once (`project`);
              v = [r_{t-1}, h_{t-1}] (LSTM) or r_{t-1} (feedforward)
    layer l:  base = biases;  v = [h_{l-1,t}, h_{l,t-1}] (LSTM) or h_{l-1,t} (feedforward)

`controller_forward` / `controller_backward` run one step of that form without autograd, and
`weight_grads` turns the pre-activation gradients of all steps into parameter gradients with one
matrix product per weight (instead of one per step). The fused path's weights may carry a leading
member dimension (a population, models/members.py): its products go through `linear`, `matmul`
and `outer`, which take either.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .members import linear, linear_steps, matmul, matmul_steps, members, outer, total

State = tuple


class LSTMController(nn.Module):
    kind = "lstm"

    def __init__(self, input_size: int, size: int, layers: int) -> None:
        super().__init__()
        self.size = size
        sizes = [input_size] + [size] * (layers - 1)
        self.cells = nn.ModuleList(nn.LSTMCell(n, size) for n in sizes)

    def init_state(self, batch: int, like: Tensor) -> State:
        # distinct tensors (not one shared zeros): a compiled step then sees no aliased inputs
        return tuple((like.new_zeros(batch, self.size), like.new_zeros(batch, self.size))
                     for _ in self.cells)  # (B, size) each

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        new_state = []
        for cell, (h, c) in zip(self.cells, state):  # over layers only
            h, c = cell(x, (h, c))
            new_state.append((h, c))
            x = h
        return x, tuple(new_state)

    def project(self, x: Tensor, lengths: list[int] | None = None) -> Tensor:
        """(T, B, I) external inputs -> (T, B, 4 size): their share of layer 0's gates, with
        biases (per member: B = S*B', member-major; member s over its first lengths[s] steps)."""
        cell, I = self.cells[0], x.shape[-1]
        return linear_steps(x, cell.weight_ih[..., :I], cell.bias_ih + cell.bias_hh, lengths)

    def layer_weights(self, external: int) -> tuple[tuple[Tensor, Tensor | None], ...]:
        """Per layer (W_l, bias_l) of the common form; layer 0's bias is in `project`."""
        out = []
        for index, cell in enumerate(self.cells):
            w_in = cell.weight_ih[..., external:] if index == 0 else cell.weight_ih
            bias = None if index == 0 else cell.bias_ih + cell.bias_hh
            out.append((torch.cat([w_in, cell.weight_hh], -1), bias))
        return tuple(out)

    def weight_grads(
        self, x: Tensor, grad_pre: list[Tensor], v: list[Tensor], weights: dict[str, Tensor],
        prefix: str = "", lengths: list[int] | None = None,
    ) -> tuple[dict[str, Tensor], Tensor]:
        """Parameter gradients, by name (`prefix` + the parameter's name here), from every step's
        layer pre-activation gradients grad_pre[l] (T, B, 4 size) and layer inputs v[l]
        (T, B, D_l); and the gradient of the external inputs x (T, B, I). `weights` holds the
        weights the forward pass used, by the same names. Per member (B = S*B'), every gradient
        gets the leading S, summed over member s's first lengths[s] steps (members.py: `outer`)."""
        grads, I = {}, x.shape[-1]
        S = members(weights[f"{prefix}cells.0.weight_hh"], 2)
        for index, (g, vl) in enumerate(zip(grad_pre, v)):
            gw = outer(g, vl, S, lengths)  # (4 size, D_l), per member (S, 4 size, D_l)
            w_in, w_hh = gw.split([gw.shape[-1] - self.size, self.size], -1)
            if index == 0:
                w_in = torch.cat([outer(g, x, S, lengths), w_in], -1)  # the projected columns first
            bias, name = total(g, S, lengths), f"{prefix}cells.{index}."
            grads.update({name + "weight_ih": w_in, name + "weight_hh": w_hh,
                          name + "bias_ih": bias, name + "bias_hh": bias.clone()})
        w_x = weights[f"{prefix}cells.0.weight_ih"][..., :I]
        return grads, matmul_steps(grad_pre[0], w_x)


class FeedforwardController(nn.Module):
    kind = "ff"

    def __init__(self, input_size: int, size: int, layers: int) -> None:
        super().__init__()
        self.size = size
        sizes = [input_size] + [size] * layers
        blocks = [[nn.Linear(n_in, n_out), nn.ReLU()] for n_in, n_out in zip(sizes, sizes[1:])]
        self.net = nn.Sequential(*(module for block in blocks for module in block))

    def init_state(self, batch: int, like: Tensor) -> State:
        return ()

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        return self.net(x), state

    @property
    def linears(self) -> list[nn.Linear]:
        return [m for m in self.net if isinstance(m, nn.Linear)]

    def project(self, x: Tensor, lengths: list[int] | None = None) -> Tensor:
        """(T, B, I) external inputs -> (T, B, size): their share of layer 0, with its bias."""
        first, I = self.linears[0], x.shape[-1]
        return linear_steps(x, first.weight[..., :I], first.bias, lengths)

    def layer_weights(self, external: int) -> tuple[tuple[Tensor, Tensor | None], ...]:
        return tuple((lin.weight[..., external:], None) if index == 0 else (lin.weight, lin.bias)
                     for index, lin in enumerate(self.linears))

    def weight_grads(
        self, x: Tensor, grad_pre: list[Tensor], v: list[Tensor], weights: dict[str, Tensor],
        prefix: str = "", lengths: list[int] | None = None,
    ) -> tuple[dict[str, Tensor], Tensor]:
        grads, I = {}, x.shape[-1]
        names = [f"{prefix}net.{n}." for n, m in self.net.named_children() if isinstance(m, nn.Linear)]
        S = members(weights[names[0] + "weight"], 2)
        for index, (name, g, vl) in enumerate(zip(names, grad_pre, v)):
            weight = outer(g, vl, S, lengths)  # (size, D_l), per member (S, size, D_l)
            if index == 0:
                weight = torch.cat([outer(g, x, S, lengths), weight], -1)
            grads.update({name + "weight": weight, name + "bias": total(g, S, lengths)})
        return grads, matmul_steps(grad_pre[0], weights[names[0] + "weight"][..., :I])


CONTROLLERS: dict[str, type[nn.Module]] = {"lstm": LSTMController, "ff": FeedforwardController}


# ------------------------------------------------------------ one step without autograd, and back
def lstm_cell_forward(pre: Tensor, c_prev: Tensor) -> tuple[Tensor, Tensor, tuple[Tensor, ...]]:
    """nn.LSTMCell from its pre-activation (B, 4C), gates in PyTorch's order i, f, g, o."""
    C = c_prev.shape[-1]
    gates = torch.sigmoid(pre)  # i, f, o (the g slice is replaced below)
    g = torch.tanh(pre[:, 2 * C : 3 * C])
    i, f, o = gates[:, :C], gates[:, C : 2 * C], gates[:, 3 * C :]
    c = f * c_prev + i * g
    tanh_c = torch.tanh(c)
    h = o * tanh_c
    return h, c, (i, f, g, o, tanh_c)


def lstm_cell_backward(
    grad_h: Tensor, grad_c: Tensor, c_prev: Tensor, saved: tuple[Tensor, ...]
) -> tuple[Tensor, Tensor]:
    """-> (gradient of the pre-activation (B, 4C), gradient of c_prev)."""
    i, f, g, o, tanh_c = saved
    grad_c = grad_c + grad_h * o * (1 - tanh_c * tanh_c)
    grad_pre = torch.cat([
        grad_c * g * i * (1 - i),
        grad_c * c_prev * f * (1 - f),
        grad_c * i * (1 - g * g),
        grad_h * tanh_c * o * (1 - o),
    ], dim=-1)
    return grad_pre, grad_c * f


def controller_forward(
    kind: str, base: Tensor, inputs: Tensor, state: State, weights: tuple
) -> tuple[Tensor, State, tuple]:
    """One step in the common form. base (B, G): layer 0's projected external input; inputs: the
    rest of layer 0's input (the flattened reads). -> (h of the top layer, new state, saved)."""
    new_state, saved = [], []
    for index, (weight, bias) in enumerate(weights):
        if index > 0:
            base = bias
        if kind == "lstm":
            h_prev, c_prev = state[index]
            v = torch.cat([inputs, h_prev], dim=-1)  # (B, D + C)
            h, c, cell = lstm_cell_forward(linear(base, v, weight), c_prev)
            new_state.append((h, c))
            saved.append((v, c_prev, cell))
        else:
            v = inputs
            h = torch.relu(linear(base, v, weight))
            saved.append((v, h))
        inputs = h
    return inputs, tuple(new_state), tuple(saved)


def controller_backward(
    kind: str, grad_h: Tensor, grad_state: State, saved: tuple, weights: tuple
) -> tuple[Tensor, State, tuple[Tensor, ...]]:
    """The gradient of `controller_forward`, given that of its top h and of its new state.
    -> (gradient of `inputs`, gradient of the previous state, each layer's pre-activation grad)."""
    grad_pre, grad_prev = [None] * len(weights), [None] * len(weights)
    for index in reversed(range(len(weights))):
        weight = weights[index][0]
        if kind == "lstm":
            v, c_prev, cell = saved[index]
            grad_h_next, grad_c_next = grad_state[index]
            grad, grad_c = lstm_cell_backward(grad_h + grad_h_next, grad_c_next, c_prev, cell)
            inputs = weight.shape[-1] - grad_c.shape[1]  # D: two products keep both contiguous
            grad_h, grad_h_prev = matmul(grad, weight[..., :inputs]), matmul(grad, weight[..., inputs:])
            grad_prev[index] = (grad_h_prev, grad_c)
        else:
            v, h = saved[index]
            grad = torch.where(h > 0, grad_h, 0.0)
            grad_h = matmul(grad, weight)
        grad_pre[index] = grad
    return grad_h, tuple(grad_prev) if kind == "lstm" else (), tuple(grad_pre)

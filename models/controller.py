"""Controllers (paper section 3.4): the network that reads the input and drives the heads.

Both share one interface, so the NTM step does not know which it holds:

    state = controller.init_state(batch, like)   # tensors on like's device and dtype
    h, state = controller.step(x, state)          # x (B, I) -> h (B, size)

LSTM: a stack of `layers` nn.LSTMCell; its state is a tuple of (h, c) pairs, one per layer, each
(B, size), zeros at the start.
Feedforward: `layers` x (Linear + ReLU); its state is the empty tuple.
"""

from __future__ import annotations

from torch import Tensor, nn

State = tuple


class LSTMController(nn.Module):
    def __init__(self, input_size: int, size: int, layers: int) -> None:
        super().__init__()
        self.size = size
        sizes = [input_size] + [size] * (layers - 1)
        self.cells = nn.ModuleList(nn.LSTMCell(n, size) for n in sizes)

    def init_state(self, batch: int, like: Tensor) -> State:
        zeros = like.new_zeros(batch, self.size)  # (B, size)
        return tuple((zeros, zeros) for _ in self.cells)

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        new_state = []
        for cell, (h, c) in zip(self.cells, state):  # over layers only
            h, c = cell(x, (h, c))
            new_state.append((h, c))
            x = h
        return x, tuple(new_state)


class FeedforwardController(nn.Module):
    def __init__(self, input_size: int, size: int, layers: int) -> None:
        super().__init__()
        sizes = [input_size] + [size] * layers
        blocks = [[nn.Linear(n_in, n_out), nn.ReLU()] for n_in, n_out in zip(sizes, sizes[1:])]
        self.net = nn.Sequential(*(module for block in blocks for module in block))

    def init_state(self, batch: int, like: Tensor) -> State:
        return ()

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        return self.net(x), state


CONTROLLERS: dict[str, type[nn.Module]] = {"lstm": LSTMController, "ff": FeedforwardController}

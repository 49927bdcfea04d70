"""The LSTM baseline (paper section 4): a stack of LSTM layers and a linear read-out.

inputs (B, T, I) -> nn.LSTM(batch_first) -> (B, T, size) -> Linear -> logits (B, T, O).

The paper's LSTMs (Graves 2013) also have peephole and skip connections; this one does not, so its
parameter counts differ from the paper's (see models/PARAMS.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import Tensor, nn

from .config import check_int
from .members import looped, members, template_of


@dataclass
class LSTMConfig:
    layers: int = 3
    size: int = 256  # hidden units per layer

    def __post_init__(self) -> None:
        check_int("layers", self.layers, 1)
        check_int("size", self.size, 1)


class LSTMBaseline(nn.Module):
    # a population of LSTMs runs its members one after another (members.py: looped), no faster
    # than their solo runs (`ntmbench bench --only population`)
    BATCHED_MEMBERS = False

    def __init__(self, input_size: int, output_size: int, config: LSTMConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or LSTMConfig()
        self.lstm = nn.LSTM(input_size, c.size, num_layers=c.layers, batch_first=True)
        self.output = nn.Linear(c.size, output_size)

    def forward(self, inputs: Tensor, return_weights: bool = False,
                lengths: Sequence[int] | None = None) -> Tensor:
        """inputs (B, T, I) -> logits (B, T, O); a population's (S, B, T, I) -> (S, B, T, O),
        its members one after another, member s on its first lengths[s] steps (members.py:
        `looped`). `return_weights` exists only to match the NTM."""
        if return_weights:
            raise ValueError("the lstm model has no memory weightings; use return_weights=False")
        if members(self.output.weight, 2) is not None:
            solo = template_of(self, lambda: LSTMBaseline(
                self.lstm.input_size, self.output.out_features, self.config).to(inputs.device))
            return looped(self, solo, inputs, lengths)
        hidden, _ = self.lstm(inputs)  # (B, T, size)
        return self.output(hidden)  # (B, T, O)

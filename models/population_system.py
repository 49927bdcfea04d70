"""The Lightning system of a population: S members of one model, one per seed (and learning
rate), trained as one batched computation (models/members.py), each member exactly the network
and optimizer a solo run with its seed would have.

    configs = [RunConfig(seed=s, ...).resolved().to_dict() for s in (0, 1, 2)]  # same structure
    system = PopulationSystem(configs)
    trainer.fit(system, datamodule=PopulationDataModule(task, seeds=[0, 1, 2], ...))

Batches are (S, B, T, .) (datamodules/population.py); each member's loss is its own batch's mean
cost, so the summed loss gives every member the gradient its solo run would get. Metrics are
logged per member, `train/m{s}/cost_bits` and `val/m{s}/bit_errors` (the validation set is
shared: every member is scored on the same sequences, as solo runs are).
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor

from datamodules.registry import build_task

from .members import Population
from .metrics import sequence_costs, sequence_metrics
from .registry import build_model
from .system import NonFiniteLossError

# what members may differ in: their seed and their optimizer's per-member settings
PER_MEMBER = ("seed", "lr", "momentum", "out")


class PopulationSystem(pl.LightningModule):
    def __init__(self, configs: list[dict[str, Any]]) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False)
        first = configs[0]
        for config in configs[1:]:
            differs = sorted(k for k in first if k not in PER_MEMBER and config.get(k) != first[k])
            if differs:
                raise ValueError(f"a population's members share every setting but "
                                 f"{', '.join(PER_MEMBER)}; these differ: {', '.join(differs)}")
        self.configs = configs
        self.task = build_task(first["task"], **first["task_options"])
        nets = []
        for config in configs:  # each member's initial weights: its solo run's (seeded the same)
            pl.seed_everything(config["seed"], workers=True, verbose=False)
            nets.append(build_model(config["model"], self.task.input_size, self.task.output_size,
                                    **config["model_options"]))
        self.population = Population(nets)

    @property
    def members(self) -> int:
        return len(self.configs)

    def forward(self, inputs: Tensor) -> Tensor:
        return self.population(inputs)  # (S, B, T, I) -> (S, B, T, O)

    def _member_metrics(self, batch: dict[str, Tensor]) -> tuple[list[Tensor], list[dict]]:
        inputs, targets, mask = batch["inputs"], batch["targets"], batch["mask"]
        if inputs.dim() == 3:  # a shared (validation) batch: every member on the same sequences
            inputs, targets, mask = (t.expand(self.members, *t.shape) for t in (inputs, targets, mask))
        logits = self(inputs)  # (S, B, T, O)
        losses = [sequence_costs(logits[s], targets[s], mask[s]).mean() for s in range(self.members)]
        metrics = [sequence_metrics(logits[s], targets[s], mask[s]) for s in range(self.members)]
        return losses, metrics

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        losses, metrics = self._member_metrics(batch)
        for s, loss in enumerate(losses):
            if not torch.isfinite(loss):
                raise NonFiniteLossError(
                    f"member {s} (seed {self.configs[s]['seed']}): non-finite loss at step "
                    f"{self.global_step}; lower its learning rate (--lr) or the clip value")
        batch_size = batch["inputs"].shape[1]
        for s, member in enumerate(metrics):
            self.log_dict({f"train/m{s}/{k}": v for k, v in member.items()}, batch_size=batch_size)
        sequences = (self.global_step + 1) * batch_size * self.trainer.world_size
        self.log("train/sequences", float(sequences), batch_size=batch_size)
        return torch.stack(losses).sum()  # member s's gradient: its own loss's

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        _, metrics = self._member_metrics(batch)
        batch_size = batch["inputs"].shape[-3]
        for s, member in enumerate(metrics):
            self.log_dict({f"val/m{s}/{k}": v for k, v in member.items()}, batch_size=batch_size,
                          sync_dist=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """One parameter group per member, with its own learning rate (and momentum): what each
        solo run's optimizer does for its own network (core/config.py's recipe)."""
        first = self.configs[0]
        groups = [{"params": net.parameters(), "lr": config["lr"]}
                  for net, config in zip(self.population.members, self.configs)]
        if first["optimizer"] == "adam":
            return torch.optim.Adam(groups)
        for group, config in zip(groups, self.configs):
            group["momentum"] = config["momentum"]
        return torch.optim.RMSprop(groups, alpha=0.95)

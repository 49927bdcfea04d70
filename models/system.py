"""The Lightning system around any registered network: what is computed and logged.

Metrics are logged as `stage/metric` (`train/cost_bits`, `val/bit_errors`) and, at test time, per
generalization shape (`test/len_050/cost_bits`). `train/sequences` is the paper's x-axis.
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor

from datamodules.registry import build_task

from .metrics import optimal_cost_bits, sequence_costs, sequence_metrics
from .optim import optimizers
from .registry import build_model


class NonFiniteLossError(RuntimeError):
    """The loss turned NaN or infinite; the message names the step and the fix."""


class SequenceSystem(pl.LightningModule):
    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        # The whole resolved config (model name and options included) goes into the checkpoint,
        # so any checkpoint rebuilds by name; W&B gets the same dict from the logger.
        # It reads the keys below; the run core (core/config.py's RunConfig) owns the schema and
        # hands a resolved config (preset applied, so `lr` is set).
        self.save_hyperparameters(logger=False)
        if config.get("lr") is None:
            raise ValueError("SequenceSystem needs a resolved config (RunConfig.resolved(): lr set)")
        self.config = config
        self.task = build_task(config["task"], **config["task_options"])
        self.net = build_model(
            config["model"], self.task.input_size, self.task.output_size, **config["model_options"]
        )
        self.test_labels = [self.task.label(s) for s in self.task.test_shapes()]

    def forward(self, inputs: Tensor, return_weights: bool = False):
        return self.net(inputs, return_weights=return_weights)

    def _metrics(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        logits = self(batch["inputs"])
        costs = sequence_costs(logits, batch["targets"], batch["mask"])  # (B,) nats per sequence
        loss = costs.mean()
        metrics = sequence_metrics(logits, batch["targets"], batch["mask"], costs)
        if "optimal" in batch:
            metrics["optimal_cost_bits"] = optimal_cost_bits(
                batch["optimal"], batch["targets"], batch["mask"]
            )
        return loss, metrics

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss, metrics = self._metrics(batch)
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"non-finite loss at step {self.global_step}; lower the learning rate "
                f"(--lr) or the clip value; the last good checkpoint is kept"
            )
        batch_size = batch["inputs"].shape[0]
        sequences = (self.global_step + 1) * batch_size * self.trainer.world_size
        self.log_dict({f"train/{k}": v for k, v in metrics.items()}, batch_size=batch_size)
        self.log("train/sequences", float(sequences), batch_size=batch_size)
        return loss

    def on_train_batch_start(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        # the NTM's fused="auto" compiles after its first training passes: count them from the
        # global step, so a run resumed from a checkpoint switches at the same step
        if hasattr(self.net, "training_passes"):
            self.net.training_passes = self.global_step

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Stop before a non-finite gradient reaches the weights (clipping would keep a NaN)."""
        grads = [p.grad for p in self.parameters() if p.grad is not None]
        if grads and not torch.stack([g.isfinite().all() for g in grads]).all():
            raise NonFiniteLossError(
                f"non-finite gradient at step {self.global_step}; lower the learning rate "
                f"(--lr) or the clip value; the last good checkpoint is kept"
            )

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        _, metrics = self._metrics(batch)
        batch_size = batch["inputs"].shape[0]
        self.log_dict({f"val/{k}": v for k, v in metrics.items()}, batch_size=batch_size,
                      sync_dist=True, prog_bar=False)
        self.log("val/bit_errors_bar", metrics["bit_errors"], batch_size=batch_size,
                 sync_dist=True, prog_bar=True, logger=False)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:
        _, metrics = self._metrics(batch)
        label = self.test_labels[dataloader_idx]
        self.log_dict(
            {f"test/{label}/{k}": v for k, v in metrics.items()},
            batch_size=batch["inputs"].shape[0],
            add_dataloader_idx=False,
            sync_dist=True,
        )

    def configure_optimizers(self) -> Any:
        cfg = self.config
        return optimizers([{"params": self.parameters(), "lr": cfg["lr"], "momentum": cfg["momentum"]}],
                          cfg)

"""The Lightning system of a population: S members of one model, one per seed (and learning
rate), trained as one batched computation (models/members.py), each member exactly the network
and optimizer a solo run with its seed would have.

    configs = [RunConfig(seed=s, ...).resolved().to_dict() for s in (0, 1, 2)]  # same structure
    system = PopulationSystem(configs)
    trainer.fit(system, datamodule=PopulationDataModule(task, seeds=[0, 1, 2], ...))

Batches are (S, B, T, .) (datamodules/population.py); each member's loss is its own batch's mean
cost over its own steps, so the summed loss gives every member the gradient its solo run would
get, bit for bit, whoever else is in the population (docs/populations.md). Metrics are
logged per member, `train/m{s}/cost_bits`, `val/m{s}/bit_errors`, `test/m{s}/len_020/cost_bits`
(the validation and test sets are shared: every member is scored on the same sequences, as solo
runs are); the run core's per-member loggers file them under the solo names.

A member whose loss or gradient turns non-finite stops alone (`stopped`, with the reason a solo
run would raise): from that step on its loss is left out and its parameters get no gradient, so
the optimizer leaves them as they were; the others go on. A sweep stops a member the same way when
its trial is pruned (`prune`; the member is then also in `pruned`). When every member has
stopped, training ends: with NonFiniteLossError if every one of them diverged.

`member_checkpoint` turns a population checkpoint into member s's solo one (SequenceSystem's
state dict, optimizer state and config), loadable by everything that reads a solo run's.
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor

from datamodules.registry import build_task

from .members import Population
from .metrics import optimal_cost_bits, sequence_costs, sequence_metrics
from .optim import optimizers
from .registry import build_model
from .system import NonFiniteLossError

# what members may differ in: their seed and their optimizer's per-member settings
PER_MEMBER = ("seed", "lr", "momentum", "out")


def scored_steps(mask: Tensor) -> list[int]:
    """Per member, the steps up to its last scored one (mask (S, B, T)). Steps after a member's
    last scored step change nothing it is scored on: they are the padding of a batch shared with
    longer members, and the network computes member s on its own steps only (models/ntm.py), so
    its numbers do not depend on how long the others' sequences are."""
    scored = mask.any(dim=1)  # (S, T)
    T = scored.shape[1]
    last = T - scored.flip(-1).to(torch.int8).argmax(-1)  # (S,): 1 + the last scored step
    return [max(1, n) for n in last.tolist()]


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
        self.test_labels = [self.task.label(s) for s in self.task.test_shapes()]
        self.stopped: dict[int, str] = {}  # member -> why it stopped (kept in checkpoints)
        self.pruned: set[int] = set()  # the stopped members that were pruned, not diverged

    @property
    def members(self) -> int:
        return len(self.configs)

    def forward(self, inputs: Tensor, lengths: list[int] | None = None) -> Tensor:
        return self.population(inputs, lengths=lengths)  # (S, B, T, I) -> (S, B, T, O)

    def _member_metrics(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """Every member's loss (S,) and metrics (each (S,)); the network runs all members at once."""
        if batch["inputs"].dim() == 3:  # a shared (validation, test) batch: the same sequences
            batch = {k: t.expand(self.members, *t.shape) for k, t in batch.items()}  # (S, B, ...)
        inputs, targets, mask = batch["inputs"], batch["targets"], batch["mask"]
        lengths = scored_steps(mask)
        logits = self(inputs, lengths)  # (S, B, T, O)
        # member by member, each on its own steps: ATen's elementwise kernels round a tensor's
        # last elements differently, so a loss over all members at once (or over a member's
        # padding, or a loop per row over a strided slice) would give member s a gradient that
        # depends on the others
        own = [tuple(t[s, :, :n].contiguous() for t in (logits, targets, mask))
               for s, n in enumerate(lengths)]  # (B, n, .) each
        costs = [sequence_costs(*member) for member in own]  # (B,) nats per sequence each
        losses = torch.stack([c.mean() for c in costs])  # (S,)
        per_member = [sequence_metrics(*member, costs=c) for member, c in zip(own, costs)]
        metrics = {k: torch.stack([m[k] for m in per_member]) for k in per_member[0]}  # each (S,)
        if "optimal" in batch:  # n-grams: the optimal estimator's cost on each member's sequences
            metrics["optimal_cost_bits"] = torch.stack([
                optimal_cost_bits(batch["optimal"][s, :, :n], targets[s, :, :n], mask[s, :, :n])
                for s, n in enumerate(lengths)])
        return losses, metrics

    def _log_members(self, stage: str, metrics: dict[str, Tensor], label: str = "", **options) -> None:
        """`stage/m<s>/<metric>` (or `stage/m<s>/<label>/<metric>`) for every running member."""
        within = f"{label}/" if label else ""
        for s in self.running():
            self.log_dict({f"{stage}/m{s}/{within}{k}": v[s] for k, v in metrics.items()}, **options)

    def running(self) -> list[int]:
        """The members that have not stopped."""
        return [s for s in range(self.members) if s not in self.stopped]

    def _stop(self, s: int, why: str) -> None:
        self.stopped[s] = (f"non-finite {why} at step {self.global_step} (member {s}, seed "
                           f"{self.configs[s]['seed']}); lower the learning rate (--lr) or the clip "
                           f"value; the last good checkpoint is kept")
        if not self.running() and not self.pruned:
            raise NonFiniteLossError(f"every member stopped; member {s}: {self.stopped[s]}")
        self._end_if_none_running()

    def prune(self, s: int, why: str) -> None:
        """Stop member s from outside (a sweep's pruner): as a non-finite stop, but not an error."""
        self.stopped[s] = why
        self.pruned.add(s)
        self._end_if_none_running()

    def _end_if_none_running(self) -> None:
        if not self.running():
            self.trainer.should_stop = True  # Lightning ends training after this step

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor | None:
        losses, metrics = self._member_metrics(batch)
        finite = torch.isfinite(losses).tolist()
        for s in self.running():
            if not finite[s]:
                self._stop(s, "loss")
        if not self.running():
            return None  # Lightning skips the backward pass and the optimizer step
        batch_size = batch["inputs"].shape[1]
        # logged only at the steps Lightning hands to the loggers (every log_every_n_steps, as
        # its LearningRateMonitor does): each self.log costs about a millisecond, and S members
        # log S times a solo run's metrics, every one of which the loggers would drop
        if self.trainer._logger_connector.should_update_logs:
            self._log_members("train", metrics, batch_size=batch_size)
            sequences = (self.global_step + 1) * batch_size * self.trainer.world_size
            self.log("train/sequences", float(sequences), batch_size=batch_size)
        return losses[self.running()].sum()  # member s's gradient: its loss's

    def on_train_batch_start(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        # the NTM's fused="auto" path choice counts training passes from the global step, as a
        # solo run's does (models/system.py)
        if hasattr(self.population.body, "training_passes"):
            self.population.body.training_passes = self.global_step

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """A member with a non-finite gradient stops before it reaches its weights; a stopped
        member's parameters get no gradient, so the optimizer skips them (a solo run would have
        ended here)."""
        for s in self.running():
            grads = [p.grad for p in self.population.members[s].parameters() if p.grad is not None]
            if grads and not torch.stack([g.isfinite().all() for g in grads]).all():
                self._stop(s, "gradient")
        for s in self.stopped:
            for p in self.population.members[s].parameters():
                p.grad = None

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        _, metrics = self._member_metrics(batch)
        self._log_members("val", metrics, batch_size=batch["inputs"].shape[-3], sync_dist=True)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:
        _, metrics = self._member_metrics(batch)
        self._log_members("test", metrics, self.test_labels[dataloader_idx],
                          batch_size=batch["inputs"].shape[-3], add_dataloader_idx=False,
                          sync_dist=True)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["stopped_members"] = dict(self.stopped)
        checkpoint["pruned_members"] = sorted(self.pruned)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.stopped = {int(s): why for s, why in checkpoint.get("stopped_members", {}).items()}
        self.pruned = set(checkpoint.get("pruned_members", []))

    def member_checkpoint(self, checkpoint: dict[str, Any], s: int) -> dict[str, Any]:
        """Member s's solo checkpoint from a population `checkpoint` (Lightning's dict): its
        weights under SequenceSystem's names (`net.`), its optimizer state (its parameter group,
        renumbered from 0, as its solo optimizer numbers it) and its config. Loops, the step and
        everything else are copied; the run core renames the callbacks' and DataModule's state."""
        prefix = f"population.members.{s}."
        member = {k: v for k, v in checkpoint.items()
                  if k not in ("state_dict", "optimizer_states", "lr_schedulers", "stopped_members",
                               "pruned_members")}
        member["state_dict"] = {"net." + k.removeprefix(prefix): v
                                for k, v in checkpoint["state_dict"].items() if k.startswith(prefix)}
        member["hyper_parameters"] = {"config": self.configs[s]}
        optimizer = checkpoint["optimizer_states"][0]
        group = optimizer["param_groups"][s]
        number = {old: new for new, old in enumerate(group["params"])}
        member["optimizer_states"] = [{
            "state": {number[i]: v for i, v in optimizer["state"].items() if i in number},
            "param_groups": [{**group, "params": list(range(len(number)))}],
        }]
        if "lr_schedulers" in checkpoint:  # a schedule's per-group lists (base_lrs, _last_lr, ...)
            groups = len(optimizer["param_groups"])
            member["lr_schedulers"] = [
                {k: [v[s]] if isinstance(v, list) and len(v) == groups else v for k, v in state.items()}
                for state in checkpoint["lr_schedulers"]]
        return member

    def configure_optimizers(self) -> Any:
        """One parameter group per member, with its own learning rate and momentum (Adam's
        beta1): what each solo run's optimizer does for its own network (models/optim.py);
        the schedule's factor scales each member's own rate."""
        groups = [{"params": net.parameters(), "lr": config["lr"], "momentum": config["momentum"]}
                  for net, config in zip(self.population.members, self.configs)]
        return optimizers(groups, self.configs[0])

"""The learning-rate schedule (models/schedule.py, models/optim.py): its factors, a run's optimizer
following it through Lightning (the checkpoint's learning rate), a population's members each on
their own rate along it (and equal to their solo runs), and Adam's beta1 from --momentum."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from core.config import ConfigError, RunConfig
from core.population import population_configs, train_population
from core.train import train
from models.schedule import lr_factor
from models.system import SequenceSystem

RUN = dict(max_steps=9, val_every=3, checkpoint_every=3, test_on="last", wandb_mode="disabled")


def test_factors() -> None:
    assert lr_factor("constant", 0, 100) == 1.0 and lr_factor("constant", 99, 100) == 1.0
    assert lr_factor("cosine", 0, 100) == 1.0
    assert lr_factor("cosine", 50, 100) == pytest.approx(0.5)
    assert lr_factor("cosine", 25, 100) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert lr_factor("cosine", 100, 100) == pytest.approx(0.0)
    # warm-up: 1/10, 2/10, ... then the schedule from its start
    assert [lr_factor("cosine", s, 100, warmup_steps=10) for s in (0, 4, 9)] == [0.1, 0.5, 1.0]
    assert lr_factor("cosine", 10, 100, warmup_steps=10) == 1.0
    assert lr_factor("cosine", 55, 100, warmup_steps=10) == pytest.approx(0.5)
    assert lr_factor("constant", 3, 100, warmup_steps=10) == pytest.approx(0.4)


def last_lrs(run_dir) -> list[float]:
    ckpt = torch.load(run_dir / "checkpoints/last.ckpt", weights_only=False)
    return [g["lr"] for g in ckpt["optimizer_states"][0]["param_groups"]]


@pytest.mark.parametrize("schedule,warmup", [("constant", 0), ("cosine", 0), ("cosine", 2)])
def test_a_run_steps_its_schedule_every_update(tmp_path, tiny_config, schedule, warmup) -> None:
    result = train(tiny_config(tmp_path / "run", lr_schedule=schedule, warmup_steps=warmup,
                               max_steps=7, val_every=3, checkpoint_every=3, wandb_mode="disabled"))
    ckpt = torch.load(result.run_dir / "checkpoints/last.ckpt", weights_only=False)
    assert ckpt["global_step"] == 7
    # after 7 updates the optimizer holds the rate of update 7 (the next one)
    assert last_lrs(result.run_dir) == [pytest.approx(1e-2 * lr_factor(schedule, 7, 7, warmup))]
    if schedule == "cosine" and not warmup:
        assert last_lrs(result.run_dir) == [pytest.approx(0.0, abs=1e-12)]


def test_a_schedule_changes_the_run_and_is_part_of_its_identity(tmp_path, tiny_config) -> None:
    constant = train(tiny_config(tmp_path / "a", **RUN))
    cosine = train(tiny_config(tmp_path / "b", lr_schedule="cosine", **RUN))
    assert not constant.test.equals(cosine.test)
    a, b = tiny_config(tmp_path / "a", **RUN), tiny_config(tmp_path / "a", lr_schedule="cosine", **RUN)
    assert a.identity() != b.identity()


def test_members_follow_the_schedule_at_their_own_rates_as_their_solo_runs(tmp_path, tiny_config) -> None:
    rates = (1e-2, 3e-3)
    population, cfgs = population_configs(
        tiny_config(tmp_path / "pop", lr_schedule="cosine", warmup_steps=2, **RUN), (0, 1))
    cfgs = [cfg.replace(lr=lr) for cfg, lr in zip(cfgs, rates)]
    results = train_population(cfgs, population)
    for s, lr in enumerate(rates):
        solo = train(tiny_config(tmp_path / f"solo{s}", seed=s, lr=lr, lr_schedule="cosine",
                                 warmup_steps=2, **RUN))
        pd.testing.assert_frame_equal(results[s].test, solo.test, atol=2e-3, rtol=0)
        member = torch.load(results[s].run_dir / "checkpoints/last.ckpt", weights_only=False)
        alone = torch.load(solo.run_dir / "checkpoints/last.ckpt", weights_only=False)
        # the member's checkpoint carries its own schedule state, as its solo run's does
        assert member["lr_schedulers"][0]["base_lrs"] == alone["lr_schedulers"][0]["base_lrs"] == [lr]
        assert last_lrs(results[s].run_dir) == pytest.approx(last_lrs(solo.run_dir))


def test_centered_rmsprop_is_graves_form(tiny_config, tmp_path) -> None:
    """One update of `rmsprop-centered` on a known gradient: Graves (2013) eqs. 38-41 with the
    variance floor as torch's eps outside the root (models/optim.py)."""
    cfg = tiny_config(tmp_path, optimizer="rmsprop-centered", lr=1e-3, momentum=0.9).resolved()
    system = SequenceSystem(cfg.to_dict())
    optimizer = system.configure_optimizers()
    group = optimizer.param_groups[0]
    assert group["centered"] and group["eps"] == 1e-2 and group["alpha"] == 0.95
    p = next(system.parameters())
    before = p.detach().clone()
    grad = torch.full_like(p, 0.2)
    p.grad = grad.clone()
    optimizer.step()
    n, g = 0.05 * grad ** 2, 0.05 * grad  # the running square and mean after one update
    step = 1e-3 * grad / ((n - g ** 2).sqrt() + 1e-2)  # momentum buffer starts at the first step
    torch.testing.assert_close(p.detach(), before - step)


def test_adam_takes_beta1_from_momentum(tiny_config, tmp_path) -> None:
    cfg = tiny_config(tmp_path, momentum=0.5).resolved()
    optimizer = SequenceSystem(cfg.to_dict()).configure_optimizers()
    assert optimizer.param_groups[0]["betas"] == (0.5, 0.999)


@pytest.mark.parametrize("changes,fragment", [
    ({"lr_schedule": "step"}, "lr_schedule"),
    ({"warmup_steps": -1}, "warmup_steps"),
    ({"warmup_steps": 9, "max_steps": 9}, "warmup_steps (9) >= max_steps (9)"),
])
def test_bad_schedule_settings_are_one_line(changes, fragment) -> None:
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(").replace(")", r"\)")) as error:
        RunConfig.from_dict({"val_every": 3, **changes})
    assert "\n" not in str(error.value)


def test_a_run_from_before_schedules_resumes_as_constant(tmp_path, tiny_config) -> None:
    import yaml

    first = train(tiny_config(tmp_path / "old", wandb_mode="disabled"))
    config = first.run_dir / "config.yaml"
    old = {k: v for k, v in yaml.safe_load(config.read_text()).items()
           if k not in ("lr_schedule", "warmup_steps")}
    config.write_text(yaml.safe_dump(old, sort_keys=False))  # as written before the fields existed
    extended = train(tiny_config(tmp_path / "old", max_steps=9, wandb_mode="disabled"))
    assert torch.load(extended.run_dir / "checkpoints/last.ckpt", weights_only=False)["global_step"] == 9
    with pytest.raises(ConfigError, match="differs in lr_schedule"):
        train(tiny_config(tmp_path / "old", max_steps=9, lr_schedule="cosine", wandb_mode="disabled"))

"""A population member's numbers do not depend on the members beside it: seed 3 trained as a
population of one and inside a population of 4 (seeds 0-3) ends with the same parameters, bit for
bit, at 1 and at 32 sequences per update (docs/populations.md says what it takes)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core.population import train_population

# big enough that a member's rows are not a multiple of the vector width (where ATen's kernels
# round a tensor's tail differently) and its sequences differ in length from its neighbours'
SIZES = {"memory_size": 16, "memory_width": 6, "controller_size": 20}


def last_weights(tmp_path: Path, tiny_config, seeds: list[int], model: str, batch: int,
                 fused: str) -> dict[str, torch.Tensor]:
    where = tmp_path / f"{model}-b{batch}-{fused}-seeds{'-'.join(map(str, seeds))}"
    options = {} if model == "lstm" else {**SIZES, "fused": fused}
    cfgs = [tiny_config(where / f"seed{s}", model=model, seed=s, batch_size=batch,
                        model_options=options, task_options={"max_length": 8, "test_lengths": [9]},
                        optimizer="rmsprop", lr=1e-3, max_steps=12, val_every=6,
                        checkpoint_every=6, wandb_mode="disabled") for s in seeds]
    train_population(cfgs, where / "population")
    checkpoint = torch.load(where / "seed3" / "checkpoints" / "last.ckpt", map_location="cpu",
                            weights_only=False)
    return checkpoint["state_dict"]


@pytest.mark.parametrize("model,batch", [("ntm", 1), ("ntm", 32), ("ntm-ff", 1), ("lstm", 1)])
def test_seed_3_ends_with_the_same_weights_alone_and_among_four(tmp_path: Path, tiny_config,
                                                                model: str, batch: int) -> None:
    alone = last_weights(tmp_path, tiny_config, [3], model, batch, "eager")
    among = last_weights(tmp_path, tiny_config, [0, 1, 2, 3], model, batch, "eager")
    assert alone.keys() == among.keys()
    changed = [name for name in alone if not torch.equal(alone[name], among[name])]
    assert changed == []


@pytest.mark.slow
@pytest.mark.parametrize("batch", [1, 32])
def test_seed_3_ends_the_same_through_the_compiled_step(tmp_path: Path, tiny_config,
                                                        batch: int) -> None:
    torch.set_num_threads(2)  # the compiled kernels must not split a reduction over threads
    try:
        alone = last_weights(tmp_path, tiny_config, [3], "ntm", batch, "compile")
        among = last_weights(tmp_path, tiny_config, [0, 1, 2, 3], "ntm", batch, "compile")
    finally:
        torch.set_num_threads(1)
    assert [name for name in alone if not torch.equal(alone[name], among[name])] == []

"""A population: S NTMs of one structure stacked on a member dimension (models/members.py) and run
as one batched computation. Member s computes exactly what the solo network it was stacked from
computes, values and gradients, on every path (fused eager, fused compiled, readable)."""

from __future__ import annotations

import pytest
import torch

import models.ntm as ntm_module
from models import NTM, NTMConfig
from models.members import member_state, stack

S, B, T, I, O = 3, 2, 6, 5, 4


def solo_nets(config: NTMConfig, seeds=range(S)) -> list[NTM]:
    nets = []
    for seed in seeds:
        torch.manual_seed(seed)  # each member's own initial weights, as a solo run with that seed
        net = NTM(I, O, config)
        with torch.no_grad():  # away from the init, so every parameter matters
            for p in net.parameters():
                p.add_(0.3 * torch.randn_like(p))
        nets.append(net)
    return nets


def inputs(seed: int = 10) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 2, (S, B, T, I), generator=generator).float()  # (S, B, T, I)


def loss_of(logits: torch.Tensor) -> torch.Tensor:
    # weighted per position, so that every output's gradient differs
    weights = torch.linspace(0.5, 1.5, logits.numel()).view(logits.shape)
    return (logits.tanh() * weights).sum()


CONFIGS = {
    "lstm": dict(controller="lstm"),
    "lstm-2layers-2heads-learned": dict(controller="lstm", controller_layers=2, heads=2,
                                        memory_init="learned"),
    "ff": dict(controller="ff"),
    "ff-3r1w-random-shift2": dict(controller="ff", read_heads=3, write_heads=1, memory_init="random",
                                  shift_range=2),
}


@pytest.mark.parametrize("mode", ["eager", "off"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_each_member_computes_what_its_solo_network_computes(name: str, mode: str) -> None:
    config = NTMConfig(memory_size=7, memory_width=3, controller_size=6, fused=mode, **CONFIGS[name])
    nets = solo_nets(NTMConfig(**{**config.__dict__, "fused": "eager"}))
    population = stack(nets)
    population.config = config
    x = inputs()
    logits, weights = population(x, return_weights=True)
    assert logits.shape == (S, B, T, O)
    assert weights["read"].shape == (S, B, T, config.n_read, 7)
    loss_of(logits).backward()
    for s, net in enumerate(nets):
        solo_logits, solo_weights = net(x[s], return_weights=True)
        torch.testing.assert_close(logits[s], solo_logits, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(weights["write"][s], solo_weights["write"], atol=1e-6, rtol=1e-5)
        # the population's loss is a sum over members: member s's gradient is its own term's
        net.zero_grad()
        weight = torch.linspace(0.5, 1.5, logits.numel()).view(logits.shape)[s]
        (solo_logits.tanh() * weight).sum().backward()
        for (pname, p), (_, q) in zip(population.named_parameters(), net.named_parameters()):
            torch.testing.assert_close(p.grad[s], q.grad, atol=1e-5, rtol=1e-4, msg=pname)


def test_a_member_is_a_solo_network_again() -> None:
    config = NTMConfig(memory_size=7, memory_width=3, controller_size=6, memory_init="random")
    nets = solo_nets(config)
    population = stack(nets)
    assert all(p.shape[0] == S for p in population.parameters())
    assert population.members == S and nets[0].members is None
    for s, net in enumerate(nets):
        again = NTM(I, O, config)
        again.load_state_dict(member_state(population, s))
        for (name, a), b in zip(again.state_dict().items(), net.state_dict().values()):
            assert torch.equal(a, b), name


def test_the_members_are_independent() -> None:
    # member 1's loss moves member 1's parameters only
    config = NTMConfig(memory_size=7, memory_width=3, controller_size=6, fused="eager")
    population = stack(solo_nets(config))
    logits = population(inputs())
    logits[1].sum().backward()
    for name, p in population.named_parameters():
        assert p.grad[0].abs().max() == 0 and p.grad[2].abs().max() == 0, name
        assert p.grad[1].abs().max() > 0, name


def test_the_compiled_population_matches_eager(monkeypatch) -> None:
    # dynamo traces the member-stacked step (aot_eager: the tracing, without inductor's build)
    monkeypatch.setattr(ntm_module, "COMPILE_BACKEND", "aot_eager")
    monkeypatch.setattr(ntm_module, "_COMPILED", {})
    config = NTMConfig(memory_size=7, memory_width=3, controller_size=6, fused="eager")
    population = stack(solo_nets(config))
    x = inputs()
    eager = population(x)
    loss_of(eager).backward()
    eager_grads = [p.grad.clone() for p in population.parameters()]
    population.zero_grad()
    population.config = NTMConfig(**{**config.__dict__, "fused": "compile"})
    assert population.fused_mode(x.device, True) == "compile"
    compiled = population(x)
    loss_of(compiled).backward()
    torch.testing.assert_close(compiled, eager, atol=1e-6, rtol=1e-5)
    for a, b in zip(population.parameters(), eager_grads):
        torch.testing.assert_close(a.grad, b, atol=1e-6, rtol=1e-5)


def test_a_compiled_population_is_compiled_once_whatever_the_sequence_length(monkeypatch) -> None:
    # each step's rows must have strides that do not depend on T (as a solo run's do): the
    # compiled step is specialized on strides, and copy's lengths 1-20 would otherwise compile
    # it anew for every length (minutes of compiling per run)
    torch._dynamo.reset()
    monkeypatch.setattr(ntm_module, "COMPILE_BACKEND", "aot_eager")
    monkeypatch.setattr(ntm_module, "_COMPILED", {})
    config = NTMConfig(memory_size=7, memory_width=3, controller_size=6, fused="compile")
    population = stack(solo_nets(config))
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    for length in (2, 3, 5, 8):
        x = torch.rand(S, 1, length, I).round()  # (S, B, T, I) at batch 1, where the rows were views
        loss_of(population(x)).backward()
    assert ntm_module._COMPILE_FAILED == {}
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] - graphs == 2  # step, backward


def test_an_lstm_population_runs_its_members_as_solo_networks() -> None:
    from models import LSTMBaseline, LSTMConfig

    nets = []
    for seed in range(S):
        torch.manual_seed(seed)
        nets.append(LSTMBaseline(I, O, LSTMConfig(layers=2, size=5)))
    population = stack(nets)
    x = inputs()
    logits = population(x)
    loss_of(logits).backward()
    for s, net in enumerate(nets):
        solo = net(x[s])
        torch.testing.assert_close(logits[s], solo)
        weight = torch.linspace(0.5, 1.5, logits.numel()).view(logits.shape)[s]
        (solo.tanh() * weight).sum().backward()
        for (name, p), q in zip(population.named_parameters(), net.parameters()):
            torch.testing.assert_close(p.grad[s], q.grad, msg=name)


@pytest.mark.parametrize("model, options", [
    ("ntm", dict(memory_size=8, memory_width=4, controller_size=8, fused="eager")),
    ("ntm-ff", dict(memory_size=8, memory_width=4, controller_size=8, fused="eager")),
    ("lstm", dict(layers=1, size=8)),
])
def test_a_population_step_updates_each_member_as_its_solo_step(model: str, options: dict) -> None:
    # the bench's population step (Adam, each member's mean cost) moves member s exactly as the
    # solo step moves the solo network built with seed s
    from bench.speed_population import population_step
    from bench.speed_timing import copy_batch, model_step
    from models.registry import build_model

    batch = copy_batch(2, 3, torch.device("cpu"))
    step = population_step(model, options, 3, batch, torch.device("cpu"))
    population = step.net
    step()
    for seed in range(3):
        torch.manual_seed(seed)
        solo = build_model(model, 9, 8, **options)
        model_step(solo, batch)()
        for (name, p), q in zip(population.named_parameters(), solo.parameters()):
            torch.testing.assert_close(p[seed], q, atol=1e-6, rtol=1e-5, msg=name)


# After 6 steps: SGD moves each member as its solo network to float32 round-off. Adam and RMSprop
# divide by the gradient's running size, which turns a round-off difference in a near-zero gradient
# (about 1e-6 here: bmm against addmm) into a visible step; their tolerance says how visible.
TOLERANCE = {"sgd": 1e-6, "adam": 2e-3, "rmsprop": 1e-2}


@pytest.mark.parametrize("optimizer", list(TOLERANCE))
@pytest.mark.parametrize("controller", ["lstm", "ff"])
def test_members_with_their_own_learning_rates_train_as_their_solo_runs(optimizer, controller):
    # each member keeps its parameters (its own optimizer group and learning rate) and trains on
    # its own batches, with the paper's elementwise clipping
    import copy

    from models.members import Population

    lrs = (3e-2, 1e-2, 3e-3)
    config = NTMConfig(memory_size=7, memory_width=3, controller_size=6, fused="eager",
                       controller=controller)
    solos = solo_nets(config)
    start = [copy.deepcopy(net) for net in solos]
    population = Population([copy.deepcopy(net) for net in solos])

    def make(groups):
        if optimizer == "adam":
            return torch.optim.Adam(groups)
        if optimizer == "sgd":
            return torch.optim.SGD(groups)
        return torch.optim.RMSprop(groups, alpha=0.95, momentum=0.9)

    pop_opt = make([{"params": m.parameters(), "lr": lr} for m, lr in zip(population.members, lrs)])
    solo_opts = [make([{"params": net.parameters(), "lr": lr}]) for net, lr in zip(solos, lrs)]
    for step in range(6):
        x = inputs(seed=100 + step)  # member s's batch: x[s]
        logits = population(x)
        sum(loss_of(logits[s]) for s in range(S)).backward()
        torch.nn.utils.clip_grad_value_(population.parameters(), 1.0)
        pop_opt.step()
        pop_opt.zero_grad()
        for s, (net, opt) in enumerate(zip(solos, solo_opts)):
            loss_of(net(x[s])).backward()
            torch.nn.utils.clip_grad_value_(net.parameters(), 1.0)
            opt.step()
            opt.zero_grad()
    tolerance = TOLERANCE[optimizer]
    for s, net in enumerate(solos):
        moved = max((a - b).abs().max() for a, b in zip(net.parameters(), start[s].parameters()))
        assert moved > 5 * tolerance  # training moved them: the comparison is not vacuous
        for (name, a), b in zip(population.members[s].named_parameters(), net.parameters()):
            torch.testing.assert_close(a, b, atol=tolerance, rtol=0, msg=name)


def copy_members(model: str, **options):
    """Copy batches of lengths 2, 5 and 3 (T = 5, 11, 7) for S members of `model` seeded 0..S-1."""
    from datamodules.registry import build_task
    from models.registry import build_model

    task = build_task("copy", max_length=5)
    generator = torch.Generator().manual_seed(0)
    batches = [task.sample(generator, B, length=length) for length in (2, 5, 3)]
    nets = []
    for seed in range(S):
        torch.manual_seed(seed)
        nets.append(build_model(model, task.input_size, task.output_size, **options))
    return task, batches, nets


@pytest.mark.parametrize("model", ["ntm", "ntm-ff", "lstm"])
def test_members_of_different_lengths_share_a_padded_batch_exactly(model: str) -> None:
    # copy sequences of lengths 2, 5 and 3 (T = 5, 11, 7) padded to T = 11: each member's cost
    # and gradients are those of its unpadded batch
    from datamodules.population import pad_to_longest
    from models.metrics import sequence_costs

    options = {"lstm": dict(layers=1, size=6)}.get(model, dict(memory_size=7, memory_width=3,
                                                              controller_size=6, fused="eager"))
    task, batches, nets = copy_members(model, **options)
    population = stack(nets)
    padded = pad_to_longest(batches)
    assert padded["inputs"].shape == (S, B, 11, task.input_size)
    assert padded["mask"].sum() == sum(b["mask"].sum() for b in batches)
    logits = population(padded["inputs"])
    costs = [sequence_costs(logits[s], padded["targets"][s], padded["mask"][s]).mean() for s in range(S)]
    sum(costs).backward()
    for s, (net, batch) in enumerate(zip(nets, batches)):
        solo = sequence_costs(net(batch["inputs"]), batch["targets"], batch["mask"]).mean()
        solo.backward()
        torch.testing.assert_close(costs[s], solo, atol=1e-6, rtol=1e-6)
        for (name, p), q in zip(population.named_parameters(), net.parameters()):
            torch.testing.assert_close(p.grad[s], q.grad, atol=1e-6, rtol=1e-5, msg=name)


def test_each_member_of_a_population_stream_draws_its_solo_stream() -> None:
    # batch i of member s is batch i of the solo stream with seed s (padded), from any start:
    # a resumed population goes on with the batches each solo run would draw
    from datamodules.datamodule import TrainStream
    from datamodules.population import PopulationDataModule
    from datamodules.registry import build_task

    task = build_task("copy", max_length=6)
    data = PopulationDataModule(task, seeds=[4, 0, 9], batch_size=2)
    data.stream.start = 5
    stream = iter(data.train_dataloader())
    lengths = set()
    for index in range(5, 9):
        batch = next(stream)
        for s, seed in enumerate([4, 0, 9]):
            solo = TrainStream(task, 2, seed).batch(index)
            T = solo["inputs"].shape[1]
            lengths.add(T)
            for key in ("inputs", "targets", "mask"):
                assert torch.equal(batch[key][s, :, :T], solo[key])
                assert not batch[key][s, :, T:].any()  # padding: zeros, mask False
    assert len(lengths) > 1  # the members' lengths differed, so padding was exercised


@pytest.mark.parametrize("model,weightings,packed,path", [
    ("ntm", False, True, "compile"), ("ntm", True, True, "compile"),
    ("ntm-ff", False, True, "compile"), ("ntm", False, False, "compile"),
    ("ntm", True, False, "eager"), ("ntm-ff", False, True, "eager")])
def test_members_that_end_early_skip_the_padded_steps_exactly(model: str, weightings: bool,
                                                              packed: bool, path: str,
                                                              monkeypatch) -> None:
    # copy sequences of lengths 2, 5 and 3 (T = 5, 11, 7). Batched (the compiled path, here with
    # the eager step in its place), packed, the members run longest first and a member's rows
    # drop out after its last step (5 + 2 + 4 steps of 6, 4 and 2 rows instead of 11 steps of 6);
    # eager, each member runs alone on its own steps (5, 11 and 7 steps of 2 rows). Either way
    # each member's cost, gradients and weightings are its unpadded batch's
    from datamodules.population import pad_to_longest
    from models.members import Population
    from models.metrics import sequence_costs
    from models.population_system import scored_steps

    task, batches, nets = copy_members(model, memory_size=7, memory_width=3, controller_size=6,
                                       fused="eager", packed=packed)
    population = Population(nets)
    padded = pad_to_longest(batches)
    lengths = scored_steps(padded["mask"])
    assert lengths == [5, 11, 7]
    rows = []
    step = ntm_module._EAGER_STEPS[0]
    recording = (lambda spec, base, *a: rows.append(base.shape[0]) or step(spec, base, *a),
                 ntm_module._EAGER_STEPS[1])
    monkeypatch.setattr(ntm_module, "_EAGER_STEPS", recording)
    monkeypatch.setattr(ntm_module, "_COMPILED_STEPS", recording)
    out = population(padded["inputs"], lengths=lengths, return_weights=weightings, path=path)
    logits, weights = out if weightings else (out, None)
    if path == "eager":
        assert rows == [2] * (5 + 11 + 7)
    else:
        assert rows == ([6] * 5 + [4] * 2 + [2] * 4 if packed else [6] * 11)
    costs = [sequence_costs(logits[s], padded["targets"][s], padded["mask"][s]).mean() for s in range(S)]
    sum(costs).backward()
    for s, (net, batch) in enumerate(zip(nets, batches)):
        grads = {name: p.grad.clone() for name, p in net.named_parameters()}
        net.zero_grad()
        solo_out = net(batch["inputs"], return_weights=weightings)
        solo_logits = solo_out[0] if weightings else solo_out
        solo = sequence_costs(solo_logits, batch["targets"], batch["mask"]).mean()
        solo.backward()
        steps = batch["inputs"].shape[1]
        torch.testing.assert_close(costs[s], solo, atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(logits[s, :, :steps], solo_logits, atol=1e-6, rtol=1e-6)
        if weightings:
            for kind in ("read", "write"):
                torch.testing.assert_close(weights[kind][s, :, :steps], solo_out[1][kind])
                if packed or path == "eager":
                    assert not weights[kind][s, :, steps:].any()  # steps it did not run: zero
        for name, p in net.named_parameters():
            torch.testing.assert_close(grads[name], p.grad, atol=1e-6, rtol=1e-5, msg=name)


def test_a_packed_population_compiles_one_graph_per_count_of_running_members(monkeypatch) -> None:
    # lengths 6, 4, 2: 3, 2 and then 1 member(s) running -> three forward graphs and three
    # backward ones (the cost that keeps `packed` off by default), and the compiled values and
    # gradients are the eager ones
    from models.members import Population

    torch._dynamo.reset()
    monkeypatch.setattr(ntm_module, "COMPILE_BACKEND", "aot_eager")
    monkeypatch.setattr(ntm_module, "_COMPILED", {})
    config = NTMConfig(memory_size=7, memory_width=3, controller_size=6, fused="eager", packed=True)
    nets = solo_nets(config)
    population = Population(nets)
    x, lengths = inputs(), [2, 6, 4]
    eager = population(x, lengths=lengths)
    loss_of(eager).backward()
    eager_grads = [p.grad.clone() for p in population.parameters()]
    population.zero_grad()
    for net in nets:
        net.config = NTMConfig(**{**config.__dict__, "fused": "compile"})
    population.body.config = nets[0].config
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    compiled = population(x, lengths=lengths)
    loss_of(compiled).backward()
    assert ntm_module._COMPILE_FAILED == {}
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] - graphs == 6
    torch.testing.assert_close(compiled, eager, atol=1e-6, rtol=1e-5)
    for a, b in zip(population.parameters(), eager_grads):
        torch.testing.assert_close(a.grad, b, atol=1e-6, rtol=1e-5)

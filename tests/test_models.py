"""Model registry, shapes, configs, presets, and a short training run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from datamodules.registry import build_task
from models import MODELS, NTM, NTMConfig, build_model, coerce, model_options, presets
from models.heads import HeadParams, activate

TINY = {
    "ntm": dict(memory_size=8, memory_width=4, controller_size=16),
    "ntm-ff": dict(memory_size=8, memory_width=4, controller_size=16),
    "lstm": dict(layers=2, size=16),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_every_model_maps_inputs_to_logits(name):
    torch.manual_seed(0)
    net = build_model(name, 5, 3, **TINY[name])
    logits = net(torch.randn(2, 7, 5))  # (B, T, I)
    assert logits.shape == (2, 7, 3)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("controller", ["lstm", "ff"])
@pytest.mark.parametrize("memory_init", ["constant", "learned", "random"])
@pytest.mark.parametrize(
    "heads, Hr, Hw",
    [({"heads": 1}, 1, 1), ({"heads": 2}, 2, 2), ({"read_heads": 3, "write_heads": 1}, 3, 1),
     ({"heads": 2, "write_heads": 3}, 2, 3)],
)
@pytest.mark.parametrize("shift_range", [1, 2])
def test_weights_have_one_row_per_head_and_sum_to_one(
    controller, memory_init, heads, Hr, Hw, shift_range
):
    torch.manual_seed(0)
    config = NTMConfig(**heads, memory_size=6, memory_width=3, controller=controller,
                       controller_size=8, shift_range=shift_range, memory_init=memory_init)
    logits, weights = NTM(4, 2, config)(torch.randn(3, 5, 4), return_weights=True)
    assert logits.shape == (3, 5, 2)
    assert weights["read"].shape == (3, 5, Hr, 6)
    assert weights["write"].shape == (3, 5, Hw, 6)
    for w in weights.values():
        assert (w >= 0).all()
        torch.testing.assert_close(w.sum(-1), torch.ones(w.shape[:-1]))


@pytest.mark.parametrize("memory_init", ["constant", "learned", "random"])
@pytest.mark.parametrize("controller", ["lstm", "ff"])
def test_state_follows_the_input_dtype(memory_init, controller):
    config = NTMConfig(memory_size=6, memory_width=3, controller_size=8, controller=controller,
                       memory_init=memory_init)
    net = NTM(4, 2, config).double()
    inputs = torch.randn(2, 3, 4, dtype=torch.float64)
    state = net.init_state(2, inputs)
    flat = [state.memory, state.reads, state.read_weights, state.write_weights]
    flat += [x for layer in state.controller for x in layer]
    assert all(x.dtype == torch.float64 for x in flat)
    assert state.memory.shape == (2, 6, 3) and state.reads.shape == (2, 1, 3)
    if memory_init == "constant":
        assert (state.memory == 1e-6).all()
    assert net(inputs).dtype == torch.float64


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("memory_init", ["constant", "learned", "random"])
def test_no_cpu_tensors_inside_the_step(name, memory_init):
    # On the meta device, mixing in a tensor made on the CPU raises; a GPU would too.
    options = dict(TINY[name], **({} if name == "lstm" else {"memory_init": memory_init}))
    net = build_model(name, 5, 3, **options).to("meta")
    assert net(torch.empty(2, 4, 5, device="meta")).shape == (2, 4, 3)


def test_random_memory_is_fixed_and_learned_memory_trains():
    torch.manual_seed(0)
    fixed = NTM(3, 2, NTMConfig(memory_size=6, memory_width=3, memory_init="random"))
    learned = NTM(3, 2, NTMConfig(memory_size=6, memory_width=3, memory_init="learned"))
    assert "memory0" in dict(fixed.named_buffers())
    assert "memory0" not in dict(fixed.named_parameters())
    assert dict(learned.named_parameters())["memory0"].shape == (6, 3)
    assert 0.05 < fixed.memory0.std().item() < 1.0  # drawn with std 1 / sqrt(N + M) ~ 0.33


def test_head_params_have_the_papers_ranges():
    torch.manual_seed(0)
    p = HeadParams(in_features=5, read_heads=3, write_heads=2, memory_width=4, shift_range=2)
    heads = p(10 * torch.randn(7, 5))
    assert heads.key.shape == (7, 5, 4) and heads.shift.shape == (7, 5, 5)
    assert heads.beta.shape == heads.gate.shape == heads.gamma.shape == (7, 5, 1)
    assert heads.erase.shape == heads.add.shape == (7, 2, 4)
    assert (heads.beta >= 0).all() and (heads.gamma >= 1).all()
    assert ((heads.gate > 0) & (heads.gate < 1)).all()
    assert ((heads.erase >= 0) & (heads.erase <= 1)).all()
    assert (heads.add.abs() <= 1).all()
    torch.testing.assert_close(heads.shift.sum(-1), torch.ones(7, 5))
    assert p.linear.out_features == 5 * (4 + 1 + 1 + 5 + 1) + 2 * 2 * 4


@pytest.mark.parametrize("shift_range", [1, 2])
def test_forward_head_init_starts_the_write_heads_row_after_row(shift_range):
    # head_init="forward": every write head starts with gate 0.1 and shift +1 at 0.9, so on a
    # constant memory (no content to find) each step writes the next row; the read heads and all
    # weights start as head_init="default" does
    config = dict(read_heads=2, write_heads=3, memory_size=16, memory_width=4, controller="ff",
                  controller_size=8, shift_range=shift_range)
    torch.manual_seed(0)
    default = NTM(5, 3, NTMConfig(**config))
    torch.manual_seed(0)
    forward = NTM(5, 3, NTMConfig(**config, head_init="forward"))
    address_width = 4 + 2 * shift_range + 4
    changed = forward.heads.linear.bias != default.heads.linear.bias  # (P,)
    assert not changed[: 2 * address_width].any() and not changed[5 * address_width :].any()
    torch.testing.assert_close(forward.heads.linear.weight, default.heads.linear.weight)
    heads = activate(forward.heads.linear.bias.unsqueeze(0), 5, 3, 4, 2 * shift_range + 1)
    torch.testing.assert_close(heads.gate[0, 2:, 0], torch.full((3,), 0.1))
    torch.testing.assert_close(heads.shift[0, 2:, shift_range + 1], torch.full((3,), 0.9))
    torch.testing.assert_close(heads.shift[0, 2:].sum(-1), torch.ones(3))

    with torch.no_grad():
        forward.heads.linear.weight.zero_()  # the bias alone: what the heads do before training
        _, weights = forward(torch.zeros(1, 6, 5), return_weights=True)
    # w_0 has 90% on row 0, so step t's write weighting peaks on row t + 1 for every write head
    rows = weights["write"][0].argmax(-1)  # (T, Hw)
    assert rows.tolist() == [[t + 1] * 3 for t in range(6)]
    assert (weights["write"][0].amax(-1) > 0.8).all()


@pytest.mark.parametrize(
    "name, options, message",
    [
        ("gru", {}, "unknown model 'gru'; choose one of: ntm, ntm-ff, lstm"),
        ("ntm", {"memory_size": 0}, "memory_size must be an integer >= 1 (got 0)"),
        ("ntm", {"heads": "abc"}, "option 'heads' must be int (got 'abc')"),
        ("ntm", {"heads": 2.5}, "option 'heads' must be int (got 2.5)"),
        ("ntm", {"heads": True}, "option 'heads' must be int (got True)"),
        ("ntm", {"read_heads": "x"}, "option 'read_heads' must be int or None (got 'x')"),
        ("ntm", {"read_heads": 0}, "read_heads must be an integer >= 1 or None (got 0)"),
        ("ntm", {"memory_init": "zeros"},
         "memory_init must be one of constant, learned, random (got 'zeros')"),
        ("ntm", {"head_init": "ones"}, "head_init must be one of default, forward (got 'ones')"),
        ("ntm", {"head_init": "forward", "shift_range": 0},
         "head_init=forward needs shift_range >= 1 (got 0); raise shift_range or use "
         "head_init=default"),
        ("ntm", {"shift_range": 64}, "shift_range must be an integer in 0..63 (got 64)"),
        ("ntm", {"bogus": 1},
         "unknown option 'bogus' for NTMConfig; valid options: heads, read_heads,"),
        ("ntm", {"controller": "ff"},
         "model 'ntm' fixes controller='lstm' (got 'ff'); use model 'ntm-ff'"),
        ("ntm-ff", {"controller": "gru"}, "model 'ntm-ff' fixes controller='ff' (got 'gru')"),
        ("lstm", {"layers": 0}, "layers must be an integer >= 1 (got 0)"),
        ("lstm", {"heads": 1},
         "unknown option 'heads' for LSTMConfig; valid options: layers, size"),
    ],
)
def test_bad_options_raise_a_message_naming_the_valid_values(name, options, message):
    with pytest.raises(ValueError) as error:
        build_model(name, 3, 2, **options)
    assert message in str(error.value)


def test_bad_controller_in_config():
    with pytest.raises(ValueError, match="controller must be one of lstm, ff \\(got 'gru'\\)"):
        NTMConfig(controller="gru")


def test_cli_strings_are_converted_by_field_type():
    net = build_model("ntm", 3, 2, heads="2", read_heads="none", memory_size="16", memory_width="4",
                      controller_size="8", controller="lstm")
    assert (net.config.heads, net.config.read_heads, net.config.memory_size) == (2, None, 16)
    assert (net.config.n_read, net.config.n_write) == (2, 2)
    assert coerce(NTMConfig, {"write_heads": "3", "memory_init": "learned"}) == {
        "write_heads": 3, "memory_init": "learned"}


def test_model_options_list_every_field_with_its_default():
    assert model_options("lstm") == {"layers": 3, "size": 256}
    ntm_ff = model_options("ntm-ff")
    assert ntm_ff["controller"] == "ff" and ntm_ff["memory_size"] == 128 and ntm_ff["heads"] == 1
    assert model_options("ntm")["controller"] == "lstm"


def test_lstm_refuses_return_weights():
    with pytest.raises(ValueError, match="no memory weightings"):
        build_model("lstm", 3, 2, **TINY["lstm"])(torch.randn(1, 2, 3), return_weights=True)


@pytest.mark.parametrize("task, model", list(presets.PAPER))
def test_paper_presets_build_for_every_task(task, model):
    p = presets.preset("paper", task, model)
    I, O = presets.TASK_SIZES[task]
    torch.manual_seed(0)
    net = build_model(model, I, O, **p["options"])
    count = sum(x.numel() for x in net.parameters())
    paper = presets.PAPER_PARAMS[(task, model)]
    print(f"{task:>18} {model:>6}: ours {count:>9,}  paper {paper:>9,}")
    assert isinstance(count, int) and count > 0 and isinstance(paper, int)
    assert 0.5 < count / paper < 1.5  # same sizes as the paper; details differ (models/PARAMS.md)
    assert p["lr"] in (1e-4, 3e-5)
    assert net(torch.zeros(1, 2, I)).shape == (1, 2, O)
    if model != "lstm":
        assert (net.config.memory_size, net.config.memory_width) == (128, 20)


def test_presets_by_name():
    assert presets.preset("paper", "priority_sort", "ntm")["options"]["controller_layers"] == 2
    expected = {"options": {"layers": 3, "size": 256}, "lr": 3e-5}
    assert presets.preset("paper", "copy", "lstm") == expected
    assert presets.preset("none", "copy", "ntm") == {"options": {}, "lr": None}
    with pytest.raises(ValueError, match="unknown preset 'best'; choose one of: paper, none"):
        presets.preset("best", "copy", "ntm")
    with pytest.raises(ValueError, match="unknown task 'sort'"):
        presets.preset("paper", "sort", "ntm")


def test_params_md_is_up_to_date():
    path = Path(__file__).parents[1] / "models" / "PARAMS.md"
    assert path.read_text().strip() == presets.params_table().strip()


def test_a_tiny_ntm_solves_copy_through_its_memory():
    """The NTM with a feedforward controller has no state of its own: the read vectors are its
    only path from the input steps to the answer steps, where the input is all zeros. With the
    reads' weights zeroed its answers are one constant (checked below), and a constant guess
    costs about ln 2 = 0.69 nats per random bit: if this network ignored its memory, it could not
    do better. Trained briefly on fresh copy batches it gets the bits right; with its reads cut,
    the same weights cannot."""
    torch.manual_seed(0)
    task = build_task("copy", width=4, max_length=3)
    config = NTMConfig(controller="ff", memory_size=8, memory_width=8, controller_size=32,
                       fused="eager")  # not "auto": compiling after 100 passes takes too long
    net = NTM(task.input_size, task.output_size, config)
    optimizer = torch.optim.Adam(net.parameters(), lr=2e-2)
    data = torch.Generator().manual_seed(0)
    for _ in range(400):
        batch = task.sample(data, 16, length=3)
        mask = batch["mask"]  # (B, T): the answer steps
        logits = net(batch["inputs"])[mask]  # (B*L, W)
        loss = F.binary_cross_entropy_with_logits(logits, batch["targets"][mask])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    test = task.sample(torch.Generator().manual_seed(1), 64, length=3)
    mask, targets = test["mask"], test["targets"][test["mask"]]  # (B*L, W) answer bits

    def answer_logits():
        with torch.no_grad():
            return net(test["inputs"])[mask]  # (B*L, W)

    def cost_and_errors(logits):
        cost = F.binary_cross_entropy_with_logits(logits, targets).item()
        return cost, ((logits > 0).float() != targets).float().mean().item()

    cost, errors = cost_and_errors(answer_logits())
    with torch.no_grad():  # cut the reads: their columns in the controller and the output layer
        net.controller.linears[0].weight[:, task.input_size:] = 0
        net.output.weight[:, config.controller_size:] = 0
    cut = answer_logits()
    torch.testing.assert_close(cut, cut[:1].expand_as(cut))  # one answer for every sequence
    cut_cost, cut_errors = cost_and_errors(cut)
    assert cost < 0.25 and errors < 0.1, (cost, errors)  # measured: 0.11 nats, 3.5% of bits wrong
    assert cut_cost > 0.65 and cut_errors > 0.35, (cut_cost, cut_errors)  # measured: 0.75, 48%

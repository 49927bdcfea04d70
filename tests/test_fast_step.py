"""Speed work never changes the math: every forward path of the NTM (`fused` = off, eager, compile)
against a plain reference step kept here, forward values and gradients, to 1e-5.

The reference is the NTM of the paper written out once more, one readable op at a time and
independent of models/ (the shift is a sum of rolls, the write a product over heads), reading the
same parameters as the network under test. The fused path's hand-derived backward is also
checked against finite differences (torch.autograd.gradcheck, float64, to 1e-8). Also here: the
compile fallback and switch, and the `ntmbench bench` helpers (no timings are asserted anywhere:
targets live in the benchmark).
"""

from __future__ import annotations

import collections
import itertools
import warnings
from collections.abc import Callable
from copy import deepcopy

import pytest
import torch
import torch.nn.functional as F

import models.ntm as ntm_module
from models import NTM, NTMConfig
from models.ntm import FusedSequence

EPS, LOG_EPS = 1e-8, 1e-12
# torch.compile's own internals still call a deprecated torch.jit helper
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated")


# ----------------------------------------------------------------------------- the reference step
def reference_heads(raw, Hr, Hw, M, S):
    """raw (B, P) -> k, beta, g, s, gamma (all heads), e, a (write heads), as in the paper."""
    B, H, K = raw.shape[0], Hr + Hw, 2 * S + 1
    width = M + 1 + 1 + K + 1
    addressing = raw[:, : H * width].reshape(B, H, width)
    access = raw[:, H * width :].reshape(B, Hw, 2 * M)
    k = addressing[..., :M]
    beta = F.softplus(addressing[..., M : M + 1])
    g = torch.sigmoid(addressing[..., M + 1 : M + 2])
    s = torch.softmax(addressing[..., M + 2 : M + 2 + K], dim=-1)
    gamma = 1 + F.softplus(addressing[..., M + 2 + K :])
    return k, beta, g, s, gamma, torch.sigmoid(access[..., :M]), torch.tanh(access[..., M:])


def reference_address(memory, w_prev, k, beta, g, s, gamma):
    """Eqs. (5)-(9): memory (B, N, M), w_prev (B, H, N) -> w (B, H, N)."""
    dot = torch.einsum("bhm,bnm->bhn", k, memory)
    k_norm = torch.sqrt((k * k).sum(-1, keepdim=True) + EPS**2)
    m_norm = torch.sqrt((memory * memory).sum(-1) + EPS**2).unsqueeze(1)
    w_c = torch.softmax(beta * dot / (k_norm * m_norm).clamp_min(EPS), dim=-1)
    w_g = g * w_c + (1 - g) * w_prev
    S = s.shape[-1] // 2
    # circular convolution: w~(i) = sum over offsets o of s(o) w(i - o); roll by o gives w(i - o)
    w_s = sum(s[..., j : j + 1] * torch.roll(w_g, shifts=j - S, dims=-1) for j in range(2 * S + 1))
    return torch.softmax(gamma * torch.log(w_s + LOG_EPS), dim=-1)


def reference_write(memory, w, e, a):
    """Eqs. (3)-(4) with several write heads: M * prod_h (1 - w_h e_h^T) + sum_h w_h a_h^T."""
    for h in range(w.shape[1]):
        memory = memory * (1 - w[:, h, :, None] * e[:, h, None, :])
    return memory + torch.einsum("bhn,bhm->bnm", w, a)


def reference_controller(net, x, state):
    c = net.config
    if c.controller == "lstm":
        new = []
        for cell, (h, cc) in zip(net.controller.cells, state):
            gates = F.linear(x, cell.weight_ih, cell.bias_ih) + F.linear(h, cell.weight_hh, cell.bias_hh)
            i, f, g, o = gates.chunk(4, dim=-1)
            cc = torch.sigmoid(f) * cc + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(cc)
            new.append((h, cc))
            x = h
        return x, new
    for layer in net.controller.net:
        if isinstance(layer, torch.nn.Linear):
            x = torch.relu(F.linear(x, layer.weight, layer.bias))
    return x, state


def reference_forward(net: NTM, inputs):
    """The NTM over a sequence with `net`'s parameters -> logits (B, T, O), read and write
    weights (B, T, H, N)."""
    c = net.config
    B, T, _ = inputs.shape
    Hr, Hw, N, M, C = c.n_read, c.n_write, c.memory_size, c.memory_width, c.controller_size
    if c.memory_init == "constant":
        memory = torch.full((B, N, M), 1e-6, dtype=inputs.dtype)
    else:
        memory = net.memory0.expand(B, N, M)
    w = torch.softmax(net.weight_logits0, dim=-1).expand(B, Hr + Hw, N)
    reads = net.read0.expand(B, Hr, M)
    zeros = inputs.new_zeros(B, C)
    state = [(zeros, zeros)] * c.controller_layers
    logits, read_w, write_w = [], [], []
    for t in range(T):
        h, state = reference_controller(net, torch.cat([inputs[:, t], reads.flatten(1)], -1), state)
        k, beta, g, s, gamma, e, a = reference_heads(
            F.linear(h, net.heads.linear.weight, net.heads.linear.bias), Hr, Hw, M, c.shift_range)
        w = reference_address(memory, w, k, beta, g, s, gamma)
        reads = torch.einsum("bhn,bnm->bhm", w[:, :Hr], memory)  # reads see M_{t-1}
        memory = reference_write(memory, w[:, Hr:], e, a)
        logits.append(F.linear(torch.cat([h, reads.flatten(1)], -1), net.output.weight,
                               net.output.bias))
        read_w.append(w[:, :Hr])
        write_w.append(w[:, Hr:])
    return torch.stack(logits, 1), torch.stack(read_w, 1), torch.stack(write_w, 1)


# ----------------------------------------------------------------------------------- comparisons
def build(fused: str, dtype=torch.float64, seed: int = 0, **options) -> NTM:
    torch.manual_seed(seed)
    config = dict(memory_size=7, memory_width=4, controller_size=6) | options
    net = NTM(4, 3, NTMConfig(**config, fused=fused)).to(dtype)
    with torch.no_grad():  # away from the initial values, so that every path matters
        for p in net.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return net


def values_and_grads(forward, net: NTM, inputs):
    """forward(inputs) -> (logits, read w, write w, grads of the inputs and of every parameter)
    for a loss that weighs every logit differently."""
    net.zero_grad(set_to_none=True)
    inputs = inputs.clone().requires_grad_()
    logits, read_w, write_w = forward(inputs)
    weights = torch.linspace(-1, 1, logits.numel(), dtype=logits.dtype).view_as(logits)
    (logits * weights).sum().backward()
    grads = {"inputs": inputs.grad} | {n: p.grad for n, p in net.named_parameters()}
    return logits.detach(), read_w.detach(), write_w.detach(), grads


def fused_forward(net):
    def forward(inputs):
        logits, weights = net(inputs, return_weights=True)
        return logits, weights["read"], weights["write"]
    return forward


def assert_matches_reference(net: NTM, inputs, tol: float = 1e-5) -> None:
    expected = values_and_grads(lambda x: reference_forward(net, x), net, inputs)
    actual = values_and_grads(fused_forward(net), net, inputs)
    for name, e, a in zip(("logits", "read weights", "write weights"), expected, actual):
        torch.testing.assert_close(a, e, rtol=tol, atol=tol, msg=lambda m: f"{name}: {m}")
    assert expected[3].keys() == actual[3].keys()
    for name, e in expected[3].items():
        assert actual[3][name] is not None, f"no gradient for {name}"
        torch.testing.assert_close(actual[3][name], e, rtol=tol, atol=tol,
                                   msg=lambda m: f"gradient of {name}: {m}")


HEADS = [{"heads": 1}, {"heads": 2}, {"read_heads": 3, "write_heads": 1},
         {"heads": 2, "write_heads": 3}]
HEAD_IDS = ["1+1", "2+2", "3r+1w", "2r+3w"]
CONTROLLERS = [("lstm", 1), ("lstm", 2), ("ff", 1), ("ff", 2)]
SHIFTS = [0, 1, 2]
INITS = ["constant", "learned", "random"]
INPUTS = torch.randn(3, 6, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


@pytest.mark.parametrize("fused", ["off", "eager"])
@pytest.mark.parametrize("memory_init", INITS)
@pytest.mark.parametrize("shift_range", SHIFTS)
@pytest.mark.parametrize("controller, layers", CONTROLLERS, ids=["lstm", "lstm2", "ff", "ff2"])
@pytest.mark.parametrize("heads", HEADS, ids=HEAD_IDS)
def test_every_option_combination_matches_the_reference(
    heads, controller, layers, shift_range, memory_init, fused
):
    net = build(fused, **heads, controller=controller, controller_layers=layers,
                shift_range=shift_range, memory_init=memory_init)
    assert_matches_reference(net, INPUTS)


def test_float32_matches_the_reference_at_paper_sizes():
    torch.manual_seed(0)
    net = NTM(9, 8, NTMConfig(fused="eager"))  # 1 head, LSTM of 100, memory 128 x 20
    inputs = torch.rand(2, 11, 9)
    assert_matches_reference(net, inputs, tol=1e-5)


# ------------------------------------------------------------------------------------- gradcheck
# The hand-derived backward against finite differences: torch.autograd.gradcheck of the fused
# sequence (FusedSequence, fused="eager") in float64 to 1e-8, with respect to the inputs and every
# parameter, also where its math is delicate. Sizes are tiny: gradcheck runs the whole sequence
# twice per parameter value.
def gradcheck_net(controller: str, memory_init: str) -> NTM:
    torch.manual_seed(0)
    config = NTMConfig(memory_size=4, memory_width=2, controller_size=3, controller=controller,
                       memory_init=memory_init, fused="eager")
    net = NTM(2, 2, config).double()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return net


def head_rows(net: NTM, field: str) -> list[int]:
    """The rows of the head layer that make Heads `field` for every head (the layout of
    models/heads.py: per head k, beta, g, s, gamma; then per write head e, a)."""
    c = net.config
    H, M, K = c.n_read + c.n_write, c.memory_width, 2 * c.shift_range + 1
    width = M + K + 3
    addressing = {"key": (0, M), "beta": (M, 1), "gate": (M + 1, 1), "shift": (M + 2, K),
                  "gamma": (M + 2 + K, 1)}
    if field in addressing:
        start, size = addressing[field]
        return [h * width + start + i for h in range(H) for i in range(size)]
    start = H * width + (0 if field == "erase" else M)
    return [start + h * 2 * M + i for h in range(c.n_write) for i in range(M)]


def alternating(n: int) -> torch.Tensor:
    return torch.tensor([(-1.0) ** i for i in range(n)], dtype=torch.float64)  # +1, -1, ...


def saturate(net: NTM) -> dict:
    """Gates g and e, the add vector's tanh and the LSTM's gates driven by biases of +-10 (+-6)."""
    lin = net.heads.linear
    for field, bias in (("gate", 10.0), ("erase", 10.0), ("add", 6.0)):
        rows = head_rows(net, field)
        lin.weight[rows] *= 0.1
        lin.bias[rows] = bias * alternating(len(rows))
    for cell in getattr(net.controller, "cells", []):
        cell.bias_ih.copy_(10.0 * alternating(cell.bias_ih.numel()))
        cell.bias_hh.zero_()
    return {}


def shrink(**sizes: float) -> Callable[[NTM], dict]:
    """Heads fields (key=1e-6, ...) scaled by their head rows, which gradcheck then perturbs in
    those units (the scales returned): a step of 1e-6 in the weights themselves would be as long
    as a key of 1e-6, and the cosine similarity varies on the scale of the key's length."""

    def change(net: NTM) -> dict:
        lin = net.heads.linear
        weight, bias = torch.ones_like(lin.weight), torch.ones_like(lin.bias)
        for name, size in sizes.items():
            weight[head_rows(net, name)] = bias[head_rows(net, name)] = size
        lin.weight.mul_(weight)
        lin.bias.mul_(bias)
        return {"heads.linear.weight": weight, "heads.linear.bias": bias}

    return change


def tiny_keys_and_memory(net: NTM) -> dict:
    """Keys ~1e-6, added vectors and r_0 ~1e-2, so |k| |M(i)| stays below EPS: the similarity's
    clamp at every step, where it still matters (K = k.M / EPS is not small). Reads are ~1e-2
    too, so their weights are scaled by 100: the loss then depends on the addressing at full
    scale (else an error in it would hide under atol)."""
    scales = shrink(key=1e-6, add=1e-2)(net)
    net.read0.mul_(1e-2)
    reads = slice(-net.config.n_read * net.config.memory_width, None)
    first = net.controller.cells[0].weight_ih if net.config.controller == "lstm" \
        else net.controller.linears[0].weight
    for weight in (net.output.weight, first):
        weight[:, reads] *= 100
    return scales | {"read0": torch.full_like(net.read0, 1e-2)}


def sharpen_heads(net: NTM) -> dict:
    rows = head_rows(net, "gamma")
    net.heads.linear.weight[rows] *= 0.1
    net.heads.linear.bias[rows] = 30.0  # gamma ~ 31, clear of softplus's switch to x at 20
    return {}


def trace(net: NTM, inputs):
    """The readable path's Heads, memories M_{t-1} and LSTM gate pre-activations, every step."""
    heads, memories, gates = [], [], []
    hooks = [net.heads.register_forward_hook(lambda module, args, out: heads.append(out))]

    def lstm_gates(cell, args):  # args: (x, (h, c))
        pre = F.linear(args[0], cell.weight_ih, cell.bias_ih)
        gates.append(pre + F.linear(args[1][0], cell.weight_hh, cell.bias_hh))

    for cell in getattr(net.controller, "cells", []):
        hooks.append(cell.register_forward_pre_hook(lstm_gates))
    state = net.init_state(inputs.shape[0], inputs)
    with torch.no_grad():
        for t in range(inputs.shape[1]):
            memories.append(state.memory)
            _, state = net.step(inputs[:, t], state)
    for hook in hooks:
        hook.remove()
    return heads, memories, gates


def stacked(heads, name: str) -> torch.Tensor:
    return torch.stack([getattr(h, name) for h in heads])  # (T, B, H, ...)


def similarity_norms(heads, memories) -> torch.Tensor:
    """|k| |M(i)| for every step, head and row; below EPS the similarity's clamp is active."""
    return torch.stack([h.key.norm(dim=-1, keepdim=True) * m.norm(dim=-1).unsqueeze(1)
                        for h, m in zip(heads, memories)])


def check_saturated(heads, memories, gates):
    for x in (stacked(heads, "gate"), stacked(heads, "erase"), stacked(heads, "add").abs()):
        assert torch.minimum(x, 1 - x).max() < 1e-3  # every value within 1e-3 of 0 or 1
    for pre in gates:
        i, f, _, o = torch.sigmoid(pre).chunk(4, dim=-1)  # PyTorch's gate order i, f, g, o
        assert all(torch.minimum(x, 1 - x).max() < 1e-3 for x in (i, f, o))


def check_tiny_keys(heads, memories, gates):
    assert 1e-7 < stacked(heads, "key").abs().max() < 1e-5
    norms = similarity_norms(heads, memories)
    assert (norms < EPS).any() and (norms > EPS).any()  # both sides of the clamp


def check_tiny_keys_and_memory(heads, memories, gates):
    assert 1e-7 < stacked(heads, "key").abs().max() < 1e-5
    assert torch.stack(memories).abs().max() < 1e-2
    assert (similarity_norms(heads, memories) < EPS).all()  # the clamp, every step


def check_sharp(heads, memories, gates):
    assert stacked(heads, "gamma").min() > 20


GRADCHECK_CASES = {  # name: (memory_init, change the net, check the change did what it says)
    "typical": ("learned", lambda net: {}, lambda *_: None),
    "saturated gates": ("learned", saturate, check_saturated),
    "tiny keys": ("constant", shrink(key=1e-6), check_tiny_keys),
    "tiny keys and memory": ("constant", tiny_keys_and_memory, check_tiny_keys_and_memory),
    "sharp gamma": ("learned", sharpen_heads, check_sharp),
}


def fused_of_parameters(net: NTM) -> Callable:
    """(inputs, *params) -> `net`'s fused logits with `params` (in named_parameters order) in
    place of its parameters. FusedSequence's forward reads the weights from the module it is
    given, so each call runs on a copy of `net` that holds the given tensors."""
    names = [name for name, _ in net.named_parameters()]

    def forward(inputs, *params):
        clone = deepcopy(net)
        for name, p in zip(names, params):
            path, _, attr = name.rpartition(".")
            module = clone.get_submodule(path)
            del module._parameters[attr]
            setattr(module, attr, p)
        return FusedSequence.apply(clone, ntm_module.fused_steps("eager"), False, None, None, inputs,
                                   *params)

    return forward


@pytest.mark.parametrize("controller", ["lstm", "ff"])
@pytest.mark.parametrize("case", list(GRADCHECK_CASES))
def test_the_fused_backward_passes_gradcheck_for_every_parameter(case, controller):
    memory_init, change, check = GRADCHECK_CASES[case]
    net = gradcheck_net(controller, memory_init)
    with torch.no_grad():
        scales = change(net)
    inputs = torch.randn(2, 3, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    check(*trace(net, inputs))
    names = [name for name, _ in net.named_parameters()]
    assert (memory_init == "learned") == ("memory0" in names)
    scale = [scales.get(name, 1.0) for name in names]
    units = [(p.detach() / s).requires_grad_() for p, s in zip(net.parameters(), scale)]
    fused = fused_of_parameters(net)

    def of_units(x, *units):
        return fused(x, *(s * u for s, u in zip(scale, units)))

    assert torch.autograd.gradcheck(of_units, (inputs.requires_grad_(), *units), eps=1e-6,
                                    atol=1e-8, rtol=1e-8)


# ----------------------------------------------------------------------------------------- compiled
def compiled_specs():
    """Every (heads, controller, shift range) under torch.compile: the compiler sees a new graph
    for each (the memory init does not change it: all three run on each graph)."""
    return [pytest.param(h, c, s, id=f"{HEAD_IDS[h]}-{c}-S{s}")
            for h, c, s in itertools.product(range(len(HEADS)), ["lstm", "ff"], SHIFTS)]


def run_compiled(backend, heads, controller, shift_range):
    torch._dynamo.reset()
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    previous = ntm_module.COMPILE_BACKEND
    ntm_module.COMPILE_BACKEND = backend
    try:
        for memory_init in INITS:
            net = build("compile", **HEADS[heads], controller=controller,
                        shift_range=shift_range, memory_init=memory_init)
            assert net.fused_mode(INPUTS.device, training=True) == "compile"
            assert_matches_reference(net, INPUTS)
    finally:
        ntm_module.COMPILE_BACKEND = previous
    assert ntm_module._COMPILE_FAILED == {}
    # it really was compiled: one graph for the step, one for its backward, shared by the inits
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] - graphs == 2


@pytest.mark.parametrize("heads, controller, shift_range", compiled_specs())
def test_every_compiled_trace_matches_the_reference(heads, controller, shift_range):
    # aot_eager: Dynamo and AOTAutograd trace the step (and its compile-only branches) as
    # inductor would, then run the traced graph eagerly; the slow tier runs inductor itself.
    run_compiled("aot_eager", heads, controller, shift_range)


def test_inductor_compiled_step_matches_the_reference():
    run_compiled("inductor", 0, "lstm", 1)


@pytest.mark.slow
@pytest.mark.parametrize("heads, controller, shift_range", compiled_specs())
def test_every_inductor_compiled_combination_matches_the_reference(heads, controller, shift_range):
    run_compiled("inductor", heads, controller, shift_range)


# --------------------------------------------------------------------------- switch and fallback
def compile_stub(calls: collections.Counter, error_for: Callable) -> Callable:
    """A torch.compile stand-in that compiles nothing: the function it returns counts its calls
    per spec, raises error_for(spec) where that is an exception, and else runs the eager step."""

    def compile(step, **options):
        def compiled(spec, *args):
            calls[spec] += 1
            if (error := error_for(spec)) is not None:
                raise error
            return step(spec, *args)

        return compiled

    return compile


def compile_warnings(caught) -> list[str]:
    return [str(w.message) for w in caught if "torch.compile failed" in str(w.message)]


def test_a_compiler_failure_makes_only_that_spec_run_eager_with_one_warning(monkeypatch):
    from torch._inductor.exc import InductorError  # start-up time: it loads torch._dynamo

    broken = build("compile").spec  # one LSTM head pair
    failure = InductorError(RuntimeError("no C++ compiler here"), None)
    calls = collections.Counter()
    stub = compile_stub(calls, lambda spec: failure if spec == broken else None)
    monkeypatch.setattr(torch, "compile", stub)
    monkeypatch.setattr(ntm_module, "_COMPILED", {})
    monkeypatch.setattr(ntm_module, "_COMPILE_FAILED", {})
    net, other = build("compile"), build("compile", controller="ff")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert_matches_reference(net, INPUTS)  # the forward fails to compile and runs eager ...
        assert_matches_reference(net, INPUTS)  # ... and this spec is not tried again
        assert_matches_reference(other, INPUTS)
    assert compile_warnings(caught) == [
        f"torch.compile failed for {broken}, it runs eager: InductorError: RuntimeError: no C++ "
        "compiler here"]
    # the broken spec was tried once (its first step); the other spec ran compiled, forward and
    # backward, at every step
    assert calls == {broken: 1, other.spec: 2 * INPUTS.shape[1]}
    cpu = INPUTS.device
    assert net.fused_mode(cpu, training=True) == "eager"
    assert build("compile", memory_size=9).fused_mode(cpu, training=True) == "eager"  # same spec
    assert other.fused_mode(cpu, training=True) == "compile"


def test_an_error_in_the_compiled_step_itself_is_raised_not_hidden(monkeypatch):
    calls = collections.Counter()
    bug = RuntimeError("a bug in the compiled step")
    monkeypatch.setattr(torch, "compile", compile_stub(calls, lambda spec: bug))
    monkeypatch.setattr(ntm_module, "_COMPILED", {})
    monkeypatch.setattr(ntm_module, "_COMPILE_FAILED", {})
    net = build("compile")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(RuntimeError, match="a bug in the compiled step"):
            net(INPUTS)
    assert compile_warnings(caught) == [] and ntm_module._COMPILE_FAILED == {}
    assert net.fused_mode(INPUTS.device, training=True) == "compile"  # nothing fell back


@pytest.mark.parametrize("bug, message", [("shape", "cannot be multiplied"),
                                          ("raise", "our own check failed")],
                         ids=["shape", "raise"])
def test_a_bug_that_dynamo_reports_while_tracing_raises_as_itself(monkeypatch, bug, message):
    # Dynamo wraps an error of the traced code in its own exception (TorchRuntimeError for a
    # shape error, Unsupported for a raise); the wrapper reruns the step eagerly, where the bug
    # raises again as itself, and decides nothing. A real trace, on the cheap "eager" backend.
    def step(spec, x):
        if bug == "raise":
            raise RuntimeError("our own check failed")
        return x @ x.new_ones(3, 5)  # (2, 4) @ (3, 5)

    monkeypatch.setattr(ntm_module, "COMPILE_BACKEND", "eager")
    monkeypatch.setattr(ntm_module, "_COMPILED", {})
    monkeypatch.setattr(ntm_module, "_COMPILE_FAILED", {})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(RuntimeError, match=message) as raised:
            ntm_module._compiled(f"bug-{bug}", step)(build("compile").spec, torch.ones(2, 4))
    assert not isinstance(raised.value, torch._dynamo.exc.TorchDynamoException)
    assert compile_warnings(caught) == [] and ntm_module._COMPILE_FAILED == {}


def test_auto_compiles_training_passes_only_after_a_while(monkeypatch):
    monkeypatch.setattr(ntm_module, "AUTO_COMPILE_AFTER", 3)
    net = build("auto")
    cpu = torch.device("cpu")
    assert [net.fused_mode(cpu, training=True) for _ in range(5)] == ["eager"] * 3 + ["compile"] * 2
    assert net.fused_mode(cpu, training=False) == "eager"  # inference is never compiled by auto
    assert build("off").fused_mode(cpu, training=True) == "off"
    assert build("compile").fused_mode(torch.device("meta"), training=True) == "eager"


def test_the_switch_is_a_checked_option_and_old_configs_still_load():
    with pytest.raises(ValueError, match="fused must be one of auto, compile, eager, off"):
        NTMConfig(fused="fast")
    old = {"heads": 1, "memory_size": 7, "memory_width": 4, "controller_size": 6}  # no `fused`
    assert NTMConfig(**old).fused == "auto"
    a, b = build("off"), NTM(4, 3, NTMConfig(**old)).double()
    b.load_state_dict(a.state_dict())  # same parameters on every path
    torch.testing.assert_close(b(INPUTS), a(INPUTS), rtol=1e-9, atol=1e-9)


def test_inference_and_no_grad_inputs_work_on_the_fused_path():
    net = build("eager")
    with torch.no_grad():
        logits = net(INPUTS)
    assert logits.shape == (3, 6, 3) and logits.grad_fn is None
    torch.testing.assert_close(logits, reference_forward(net, INPUTS)[0].detach())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("fused", ["eager", "compile"])
def test_the_cuda_step_never_waits_for_the_host(fused):
    net = build(fused, dtype=torch.float32).cuda()
    inputs = INPUTS.float().cuda()
    net(inputs).sum().backward()  # compile and warm up outside the check
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        net(inputs).sum().backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")


# ------------------------------------------------------------------------- the benchmark command
def test_bench_sections_are_checked():
    from bench.cli import main

    assert main(["bench", "--only", "speed,bogus"]) == 2


def test_each_bench_section_names_the_machine_it_ran_on(tmp_path):
    # `bench --only` reruns a section, maybe on another machine: the others keep theirs, and a
    # section written before machines were kept per section takes its file's machine
    import pandas as pd

    from bench.speed import section_runs, write_tables

    old = {"cpu": "AMD EPYC", "cpu_cores": 2, "torch": "2.13.0+cpu", "device": "cpu", "threads": 1,
           "runs": {"scaling": {"command": "ntmbench bench", "date": "d1", "load_average_start": [1.0]}}}
    runs = section_runs(old)
    assert runs["scaling"]["cpu"] == "AMD EPYC" and runs["scaling"]["command"] == "ntmbench bench"
    runs["convergence"] = {"cpu": "Intel Xeon", "cpu_cores": 2, "torch": "2.13.0+cpu", "device": "cpu",
                           "command": "ntmbench bench --only convergence", "date": "d2",
                           "load_average_start": [2.0]}
    scaling = [{"sweep": "length", "model": "ntm", "value": L, "T": 2 * L + 1, "ms_per_step": 2 * L + 1.0}
               for L in (10, 20)]
    pd.DataFrame(scaling).to_csv(tmp_path / "scaling.csv", index=False)
    pd.DataFrame([{"seed": 0, "reached": True, "sequences": 100, "seconds": 1.0, "worst_after": 0.0,
                   "last": 0.0, "learned": True, "budget": 200, "population_seconds": 2.0,
                   "optimizer": "rmsprop", "lr": 1e-3, "lr_schedule": "cosine", "warmup_steps": 0,
                   "batch_size": 32, "threads": 1}]).to_csv(tmp_path / "convergence.csv", index=False)
    write_tables(tmp_path, {**old, "cpu": "Intel Xeon", "runs": runs})
    text = (tmp_path / "tables.md").read_text()
    assert "`ntmbench bench`, d1, on AMD EPYC (2 cores)" in text
    assert "`ntmbench bench --only convergence`, d2, on Intel Xeon (2 cores)" in text


def test_scaling_exponents_read_linear_growth_as_one():
    import pandas as pd

    from bench.speed_scaling import exponents

    df = pd.DataFrame([
        {"sweep": "memory_size", "model": "ntm", "value": n, "T": 41, "ms_per_step": 0.5 * n}
        for n in (32, 128, 512)] + [
        {"sweep": "length", "model": "ntm", "value": L, "T": 2 * L + 1, "ms_per_step": 3.0 * (2 * L + 1)}
        for L in (10, 20, 40)])
    e = exponents(df).set_index("sweep")
    assert e.loc["memory_size", "exponent"] == pytest.approx(1.0)
    assert e.loc["length", "exponent"] == pytest.approx(1.0)
    assert e.loc["memory_size", "pairwise"] == "1.00, 1.00"


def test_auto_counts_training_passes_from_the_global_step_across_a_resume(tmp_path, tiny_config):
    import lightning.pytorch as pl
    import wandb

    from core.train import train

    class Passes(pl.Callback):
        def __init__(self, crash_at=None):
            self.seen, self.crash_at = [], crash_at

        def on_train_batch_end(self, trainer, pl_module, *args):
            self.seen.append(pl_module.net.training_passes)
            if trainer.global_step == self.crash_at:
                raise RuntimeError("killed")

    cfg = tiny_config(tmp_path / "run", max_steps=6, checkpoint_every=2)
    first, resumed = Passes(crash_at=5), Passes()
    with pytest.raises(RuntimeError, match="killed"):
        train(cfg, callbacks=[first])  # dies after step 5; its last checkpoint is step 4
    wandb.finish(exit_code=1)  # as the CLI's exit would
    train(cfg, callbacks=[resumed])
    # the resumed process builds a fresh model, yet counts on from the checkpoint's step
    assert first.seen == [1, 2, 3, 4, 5] and resumed.seen == [5, 6]


def test_one_sequence_at_a_time_is_compiled_once_whatever_its_length(monkeypatch):
    # batch 1, the paper's setting: r_0 is then a view of read0; step 0 must not get a graph
    # of its own, nor a new length a new graph (copy trains on lengths 1-20)
    torch._dynamo.reset()
    monkeypatch.setattr(ntm_module, "COMPILE_BACKEND", "aot_eager")
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    net = build("compile")
    for length in (2, 3, 5):
        net(torch.randn(1, length, 4, dtype=torch.float64)).sum().backward()
    assert ntm_module._COMPILE_FAILED == {}
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] - graphs == 2  # step, backward


def test_a_sweeps_many_model_sizes_each_get_compiled(monkeypatch):
    # a sweep runs its trials in one process: past dynamo's default of 8 graphs per function, new
    # sizes would silently run eager
    torch._dynamo.reset()
    monkeypatch.setattr(ntm_module, "COMPILE_BACKEND", "aot_eager")
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    for memory_size in range(5, 15):  # 10 sizes
        net = build("compile", memory_size=memory_size)
        net(INPUTS).sum().backward()
    assert ntm_module._COMPILE_FAILED == {}
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] - graphs == 2 * 10

"""Exact-value tests of the memory maths (paper section 3), each with fresh tensors."""

from __future__ import annotations

import math

import pytest
import torch

from models import NTM, NTMConfig
from models.addressing import (
    address,
    content_weighting,
    cosine_similarity,
    interpolate,
    read,
    sharpen,
    shift,
    write,
)


def t(values, dtype=torch.float64) -> torch.Tensor:
    """A (1, 1, ...) tensor: batch 1, head 1."""
    return torch.tensor(values, dtype=dtype)[None, None]


# ----------------------------------------------------------------------------- content addressing
MEMORY = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]], dtype=torch.float64)  # (1, 3, 2)


def test_cosine_similarity_known_memory():
    K = cosine_similarity(t([1.0, 0.0]), MEMORY)
    torch.testing.assert_close(K, t([1.0, 0.0, 0.7071067811865476]))
    K = cosine_similarity(t([-2.0, 2.0]), MEMORY)  # scale-free: same as key [-1, 1]
    torch.testing.assert_close(K, t([-0.7071067811865476, 0.7071067811865476, 0.0]))


@pytest.mark.parametrize("beta", [1.0, 2.0])
def test_content_weighting_known_values(beta):
    w = content_weighting(MEMORY, t([1.0, 0.0]), t([beta]))
    exps = [math.exp(beta * 1.0), math.exp(0.0), math.exp(beta * 0.7071067811865476)]
    torch.testing.assert_close(w, t([e / sum(exps) for e in exps]))
    if beta == 1.0:
        torch.testing.assert_close(w, t([0.4730411, 0.1740221, 0.3529368]), atol=1e-6, rtol=0)


def test_content_weighting_beta_zero_is_uniform():
    w = content_weighting(MEMORY, t([1.0, 0.0]), t([0.0]))
    torch.testing.assert_close(w, t([1 / 3, 1 / 3, 1 / 3]))


# ------------------------------------------------------------------------------ location addressing
def test_interpolate():
    w = interpolate(t([1.0, 0.0, 0.0]), t([0.0, 0.0, 1.0]), t([0.25]))
    torch.testing.assert_close(w, t([0.25, 0.0, 0.75]))


@pytest.mark.parametrize(
    "w, s, expected",
    [
        ([1, 0, 0, 0], [0, 0, 1], [0, 1, 0, 0]),  # offset +1 moves row i to i+1
        ([1, 0, 0, 0], [0, 1, 0], [1, 0, 0, 0]),  # offset 0 keeps it
        ([0, 1, 0, 0], [1, 0, 0], [1, 0, 0, 0]),  # offset -1 moves it back
        ([0, 1, 0, 0], [0.5, 0.5, 0], [0.5, 0.5, 0, 0]),  # split between -1 and 0
        ([0, 0, 0, 1], [0, 0, 1], [1, 0, 0, 0]),  # wraps past the last row
        ([1, 0, 0, 0], [1, 0, 0], [0, 0, 0, 1]),  # wraps before the first row
        ([0.5, 0.5, 0, 0], [0.2, 0.3, 0.5], [0.25, 0.4, 0.25, 0.1]),  # a blur
        ([1, 0, 0, 0, 0], [0, 0, 0, 0, 1], [0, 0, 1, 0, 0]),  # S = 2: offset +2
        ([1, 0, 0, 0, 0], [1, 0, 0, 0, 0], [0, 0, 0, 1, 0]),  # S = 2: offset -2 wraps
    ],
)
def test_shift_known_values(w, s, expected):
    torch.testing.assert_close(shift(t(w), t(s)), t(expected))


def test_shift_matches_the_papers_sum_for_every_batch_and_head():
    g = torch.Generator().manual_seed(0)
    w = torch.rand(3, 2, 6, generator=g, dtype=torch.float64)  # (B, H, N)
    s = torch.rand(3, 2, 5, generator=g, dtype=torch.float64)  # (B, H, 2S+1), S = 2
    expected = torch.zeros_like(w)
    for b in range(3):
        for h in range(2):
            for i in range(6):
                for j in range(6):
                    offset = (i - j + 2) % 6 - 2  # i - j as an offset in -3..2
                    if -2 <= offset <= 2:
                        expected[b, h, i] += w[b, h, j] * s[b, h, offset + 2]
    torch.testing.assert_close(shift(w, s), expected)


def test_sharpen_known_values():
    torch.testing.assert_close(sharpen(t([0.5, 0.25, 0.25]), t([2.0])), t([4 / 6, 1 / 6, 1 / 6]))
    torch.testing.assert_close(sharpen(t([0.5, 0.25, 0.25]), t([1.0])), t([0.5, 0.25, 0.25]))
    torch.testing.assert_close(sharpen(t([0.5, 0.5, 0.0]), t([3.0])), t([0.5, 0.5, 0.0]))


# --------------------------------------------------------------------------------- reading, writing
def test_read_is_the_weighted_sum_of_rows():
    memory = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]])  # (1, 3, 2)
    w = torch.tensor([[[0.5, 0.5, 0.0], [0.0, 0.25, 0.75]]])  # (1, 2 heads, 3)
    torch.testing.assert_close(read(memory, w), torch.tensor([[[2.0, 3.0], [4.5, 5.5]]]))


def test_write_changes_exactly_the_weighted_rows():
    memory = torch.arange(12, dtype=torch.float32).reshape(1, 4, 3) - 5.5  # (1, 4, 3)
    w = torch.tensor([[[0.0, 1.0, 0.0, 0.0]]])  # (1, 1, 4)
    erase, add = torch.tensor([[[1.0, 0.0, 0.5]]]), torch.tensor([[[0.25, -1.0, 2.0]]])
    new = write(memory, w, erase, add)
    for row in (0, 2, 3):
        assert torch.equal(new[0, row], memory[0, row])  # bit-identical
    # row 1 = [-2.5, -1.5, -0.5] * (1 - e) + a
    torch.testing.assert_close(new[0, 1], torch.tensor([0.25, -2.5, 1.75]))


def test_write_combines_several_heads_as_in_the_paper():
    memory = torch.ones(1, 4, 3)  # (1, N=4, M=3)
    w = torch.tensor([[[0.0, 1.0, 0.0, 0.5], [0.0, 0.0, 1.0, 0.5]]])  # (1, Hw=2, 4)
    erase = torch.tensor([[[1.0, 0.0, 0.5], [0.0, 1.0, 1.0]]])
    add = torch.tensor([[[1.0, 2.0, 3.0], [0.0, 0.0, 1.0]]])
    # row 3: 1 * (1 - 0.5 e1) * (1 - 0.5 e2) + 0.5 a1 + 0.5 a2
    expected = torch.tensor(
        [[[1.0, 1.0, 1.0], [1.0, 3.0, 3.5], [1.0, 0.0, 1.0], [1.0, 1.5, 2.375]]]
    )
    new = write(memory, w, erase, add)
    torch.testing.assert_close(new, expected)
    assert torch.equal(new[0, 0], memory[0, 0])
    swapped = write(memory, w.flip(1), erase.flip(1), add.flip(1))  # head order does not matter
    torch.testing.assert_close(swapped, expected)


# ------------------------------------------------------------------------------ the whole address
def random_heads(B=3, H=2, N=7, M=4, S=1, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    r = lambda *shape: torch.randn(*shape, generator=g, dtype=dtype)  # noqa: E731
    return dict(
        memory=r(B, N, M),
        w_prev=torch.softmax(r(B, H, N), -1),
        key=r(B, H, M),
        beta=r(B, H, 1).exp(),
        gate=torch.sigmoid(r(B, H, 1)),
        shift=torch.softmax(r(B, H, 2 * S + 1), -1),
        gamma=1 + r(B, H, 1).exp(),
    )


@pytest.mark.parametrize("S", [0, 1, 2])
def test_every_weighting_sums_to_one(S):
    p = random_heads(S=S)
    w = address(**p)
    assert w.shape == (3, 2, 7)
    assert (w >= 0).all()
    torch.testing.assert_close(w.sum(-1), torch.ones(3, 2))
    for partial in (
        content_weighting(p["memory"], p["key"], p["beta"]),
        shift(p["w_prev"], p["shift"]),
        sharpen(p["w_prev"], p["gamma"]),
    ):
        torch.testing.assert_close(partial.sum(-1), torch.ones(3, 2))


@pytest.mark.parametrize(
    "change",
    [
        {"key": 0.0},
        {"memory": 0.0},
        {"key": 0.0, "memory": 0.0},
        {"beta": 1e6},
        {"gamma": 1e3},
        {"memory": 1e6},
        {"memory": 1e6, "beta": 1e6, "gamma": 1e3},
        {"w_prev": 0.0, "gate": 0.0, "gamma": 1e3},  # sharpening an all-zero weighting
    ],
)
def test_extreme_inputs_stay_finite(change):
    p = random_heads()
    for name, value in change.items():
        p[name] = torch.full_like(p[name], value).requires_grad_()
    for name in p:
        p[name].requires_grad_()
    w = address(**p)
    assert torch.isfinite(w).all()
    torch.testing.assert_close(w.sum(-1), torch.ones(3, 2))
    (w * torch.arange(7.0)).sum().backward()
    for name, tensor in p.items():
        assert torch.isfinite(tensor.grad).all(), name


def test_address_gradcheck():
    p = {k: v.requires_grad_() for k, v in random_heads(B=2, N=5, M=3, dtype=torch.float64).items()}
    assert torch.autograd.gradcheck(lambda *args: address(*args), tuple(p.values()))


@pytest.mark.parametrize("controller", ["lstm", "ff"])
@pytest.mark.parametrize("memory_init", ["constant", "learned"])
def test_ntm_gradcheck(controller, memory_init):
    torch.manual_seed(0)
    config = NTMConfig(memory_size=5, memory_width=3, controller=controller, controller_size=4,
                       memory_init=memory_init)
    net = NTM(3, 2, config).double()
    inputs = torch.randn(2, 3, 3, dtype=torch.float64, requires_grad=True)  # (B, T, I)
    assert torch.autograd.gradcheck(net, (inputs,))

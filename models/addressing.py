"""Memory addressing and access (paper sections 3.1-3.3), as pure functions.

Every function is vectorized over the batch and over heads: weightings are (B, H, N), the memory is
(B, N, M), and head parameters are (B, H, ...). Names follow the paper: key k, key strength beta,
interpolation gate g, shift weighting s, sharpening gamma, erase e, add a.

Worked example (N = 4, one head, shift range S = 1, so s holds offsets -1, 0, +1):

    w = [1, 0, 0, 0], s = [0, 0, 1]   ->  shift(w, s)   = [0, 1, 0, 0]  (offset +1: row i -> i+1)
    w = [0.5, 0.25, 0.25], gamma = 2  ->  sharpen(w, 2) = [4/6, 1/6, 1/6]
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import torch
from torch import Tensor

EPS = 1e-8  # keeps cosine similarity finite for zero keys and zero memory rows
LOG_EPS = 1e-12  # keeps log(w) finite when sharpening a zero weight


def cosine_similarity(key: Tensor, memory: Tensor) -> Tensor:
    """K[u, v] = u.v / (|u| |v|) between each key (B, H, M) and each row (B, N, M) -> (B, H, N)."""
    dot = torch.einsum("bhm,bnm->bhn", key, memory)  # (B, H, N)
    # The EPS**2 inside the square root keeps the gradient finite at zero vectors.
    key_norm = torch.sqrt(key.pow(2).sum(-1, keepdim=True) + EPS**2)  # (B, H, 1)
    row_norm = torch.sqrt(memory.pow(2).sum(-1) + EPS**2).unsqueeze(1)  # (B, 1, N)
    return dot / (key_norm * row_norm).clamp_min(EPS)


def content_weighting(memory: Tensor, key: Tensor, beta: Tensor) -> Tensor:
    """Eq. (5): w_c = softmax over rows of beta * K(k, M(i)); beta is (B, H, 1) -> (B, H, N)."""
    return torch.softmax(beta * cosine_similarity(key, memory), dim=-1)


def interpolate(w_content: Tensor, w_prev: Tensor, gate: Tensor) -> Tensor:
    """Eq. (7): w_g = g w_c + (1 - g) w_{t-1}; gate is (B, H, 1)."""
    return gate * w_content + (1 - gate) * w_prev


@lru_cache(maxsize=32)
def _shift_index(n: int, width: int, device: torch.device) -> Tensor:
    """index[i, k] = (i - offset_k) mod N for offsets -S..S: w[..., index] gathers w(i - offset)."""
    rows = torch.arange(n, device=device).unsqueeze(1)  # (N, 1)
    offsets = torch.arange(width, device=device) - width // 2  # (2S+1,)
    return (rows - offsets) % n  # (N, 2S+1)


def shift(w: Tensor, s: Tensor) -> Tensor:
    """Eq. (8), circular convolution: w~(i) = sum_j w(j) s(i - j).

    s is (B, H, 2S+1) over offsets -S..S: s[..., 0] is offset -S, s[..., S] offset 0, s[..., 2S] +S.
    """
    index = _shift_index(w.shape[-1], s.shape[-1], w.device)  # (N, 2S+1)
    gathered = w[..., index]  # (B, H, N, 2S+1): gathered[..., i, k] = w(i - offset_k)
    return (gathered * s.unsqueeze(-2)).sum(-1)  # (B, H, N)


_circular_shift = shift  # `address` names its argument `shift`, as the paper does


def sharpen(w: Tensor, gamma: Tensor) -> Tensor:
    """Eq. (9): w(i)^gamma / sum_j w(j)^gamma, as softmax(gamma * log w): stable for any gamma."""
    return torch.softmax(gamma * torch.log(w + LOG_EPS), dim=-1)


def address(
    memory: Tensor,
    w_prev: Tensor,
    key: Tensor,
    beta: Tensor,
    gate: Tensor,
    shift: Tensor,
    gamma: Tensor,
) -> Tensor:
    """Section 3.3: content weighting -> interpolation -> shift -> sharpening -> (B, H, N)."""
    w_content = content_weighting(memory, key, beta)
    w_gated = interpolate(w_content, w_prev, gate)
    return sharpen(_circular_shift(w_gated, shift), gamma)


def read(memory: Tensor, w: Tensor) -> Tensor:
    """Eq. (2): r = sum_i w(i) M(i) for each read head -> (B, H, M)."""
    return torch.einsum("bhn,bnm->bhm", w, memory)


def write(memory: Tensor, w: Tensor, erase: Tensor, add: Tensor) -> Tensor:
    """Eqs. (3)-(4) with Hw write heads: M * prod_h (1 - w_h e_h^T) + sum_h w_h a_h^T -> (B, N, M).

    The erase products commute (as the paper notes), so the order of the write heads is irrelevant.
    """
    keep = 1 - w.unsqueeze(-1) * erase.unsqueeze(-2)  # (B, Hw, N, M)
    erased = memory * keep.prod(dim=1)  # (B, N, M)
    return erased + torch.einsum("bhn,bhm->bnm", w, add)  # (B, N, M)


# ------------------------------------------------------------------ the hand-derived backward pass
# The fused NTM (models/ntm.py, `fused`) runs its own backpropagation through time: it calls the
# `*_forward` functions below step by step without autograd, keeps what they save, and walks back
# with the matching `*_backward`. Each is the exact derivative of the functions above (the same
# EPS handling, the same clamp), checked against autograd in tests/test_fast_step.py.
#
# They hold the memory transposed, memory_t = M^T (B, M, N): every reduction over a row's M values
# then runs along the long, contiguous N axis, which vectorizes far better than along M = 20.


class AddressSaved(NamedTuple):
    """What `address_forward` keeps for `address_backward` (shapes for H heads, N rows)."""

    key_norm: Tensor  # (B, H, 1)
    row_norm: Tensor  # (B, 1, N)
    similarity: Tensor  # (B, H, N)  K(k, M(i))
    w_content: Tensor  # (B, H, N)
    padded: Tensor  # (B, H, N + 2S)  w_g circularly padded by S on each side
    log_shifted: Tensor  # (B, H, N)  log(w~ + LOG_EPS)
    shifted_eps: Tensor  # (B, H, N)  w~ + LOG_EPS


def _bmm(a: Tensor, b: Tensor) -> Tensor:
    """a (B, P, K) @ b (B, K, Q). Eager: one batched matrix product. Under torch.compile: a
    broadcast product summed over K, which the compiler fuses into the loops around it instead of
    calling out to a matrix library for these thin (one or two heads) products."""
    if torch.compiler.is_compiling():
        return (a.unsqueeze(-1) * b.unsqueeze(1)).sum(2)
    return torch.bmm(a, b)


def _pad(w: Tensor, S: int) -> Tensor:
    """w (..., N) -> (..., N + 2S) with S wrapped values on each side: out[j] = w((j - S) mod N)."""
    n = w.shape[-1]
    return torch.cat([w[..., n - S :], w, w[..., :S]], dim=-1)


def _windows(padded: Tensor, n: int) -> Tensor:
    """(..., N + 2S) -> (..., 2S+1, N), a view: window j holds padded[j : j + N]."""
    return padded.unfold(-1, n, 1)


def address_forward(
    memory_t: Tensor, w_prev: Tensor, key: Tensor, beta: Tensor, gate: Tensor, shift: Tensor,
    gamma: Tensor,
) -> tuple[Tensor, AddressSaved]:
    """`address` on the transposed memory (B, M, N), also returning what its backward needs."""
    n, S = memory_t.shape[-1], shift.shape[-1] // 2
    dot = _bmm(key, memory_t)  # (B, H, N)
    key_norm = torch.sqrt(key.pow(2).sum(-1, keepdim=True) + EPS**2)  # (B, H, 1)
    row_norm = torch.sqrt(memory_t.pow(2).sum(1, keepdim=True) + EPS**2)  # (B, 1, N)
    similarity = dot / (key_norm * row_norm).clamp_min(EPS)  # (B, H, N)
    w_content = torch.softmax(beta * similarity, dim=-1)
    w_gated = gate * w_content + (1 - gate) * w_prev
    # w~(i) = sum_k s_k w_g(i - offset_k) = sum_j s_{2S-j} padded[i + j]: windows j = 2S - k
    padded = _pad(w_gated, S)  # (B, H, N + 2S)
    shifted_eps = (_windows(padded, n) * shift.flip(-1).unsqueeze(-1)).sum(-2) + LOG_EPS
    log_shifted = torch.log(shifted_eps)  # (B, H, N)
    w = torch.softmax(gamma * log_shifted, dim=-1)
    return w, AddressSaved(key_norm, row_norm, similarity, w_content, padded, log_shifted,
                           shifted_eps)


def _softmax_backward(grad: Tensor, out: Tensor) -> Tensor:
    return out * (grad - (grad * out).sum(-1, keepdim=True))


def address_backward(
    grad_w: Tensor, w: Tensor, memory_t: Tensor, w_prev: Tensor, key: Tensor, beta: Tensor,
    gate: Tensor, shift: Tensor, gamma: Tensor, saved: AddressSaved,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Gradients of `address_forward` -> (memory_t, w_prev, key, beta, gate, shift, gamma),
    given dL/dw (B, H, N)."""
    s, n, S = saved, memory_t.shape[-1], shift.shape[-1] // 2
    # sharpening: w = softmax(gamma * log(w~ + eps))
    grad_logits = _softmax_backward(grad_w, w)  # (B, H, N)
    grad_gamma = (grad_logits * s.log_shifted).sum(-1, keepdim=True)  # (B, H, 1)
    grad_shifted = grad_logits * gamma / s.shifted_eps  # (B, H, N)
    # shift: the transpose gathers w~ at i + offset_k, i.e. window k of grad_shifted padded
    grad_shift = (_windows(s.padded, n) * grad_shifted.unsqueeze(-2)).sum(-1).flip(-1)  # (B, H, 2S+1)
    grad_gated = (_windows(_pad(grad_shifted, S), n) * shift.unsqueeze(-1)).sum(-2)  # (B, H, N)
    # interpolation: w_g = g w_c + (1 - g) w_prev
    grad_gate = (grad_gated * (s.w_content - w_prev)).sum(-1, keepdim=True)  # (B, H, 1)
    grad_w_prev = (1 - gate) * grad_gated
    # content: w_c = softmax(beta * dot / max(|k| |M(i)|, EPS))
    grad_z = _softmax_backward(gate * grad_gated, s.w_content)  # (B, H, N)
    grad_beta = (grad_z * s.similarity).sum(-1, keepdim=True)  # (B, H, 1)
    norm = s.key_norm * s.row_norm  # (B, H, N)
    grad_dot = grad_z * beta / norm.clamp_min(EPS)  # (B, H, N)
    grad_norm = -grad_dot * s.similarity * (norm >= EPS)  # (B, H, N); clamp_min passes >= EPS
    grad_key_norm = (grad_norm * s.row_norm).sum(-1, keepdim=True)  # (B, H, 1)
    grad_row_norm = (grad_norm * s.key_norm).sum(1, keepdim=True)  # (B, 1, N)
    grad_key = _bmm(grad_dot, memory_t.transpose(1, 2)) + grad_key_norm / s.key_norm * key
    grad_memory_t = _bmm(key.transpose(1, 2), grad_dot)  # (B, M, N)
    grad_memory_t = grad_memory_t + grad_row_norm / s.row_norm * memory_t
    return grad_memory_t, grad_w_prev, grad_key, grad_beta, grad_gate, grad_shift, grad_gamma


def write_forward(
    memory_t: Tensor, w: Tensor, erase: Tensor, add: Tensor
) -> tuple[Tensor, Tensor]:
    """`write` on the transposed memory (B, M, N). Also returns what the backward needs: the erase
    factor prod_h (1 - e_h w_h^T) (B, M, N) for one head, each head's factor (B, Hw, M, N) for
    several."""
    if w.shape[1] == 1:
        kept = 1 - erase.transpose(1, 2) * w  # (B, M, 1) x (B, 1, N)
        keep = kept
    else:
        keep = 1 - erase.unsqueeze(-1) * w.unsqueeze(-2)  # (B, Hw, M, N)
        kept = keep.prod(dim=1)
    return memory_t * kept + _bmm(add.transpose(1, 2), w), keep


def _exclusive_prod(keep: Tensor) -> Tensor:
    """out[:, h] = prod over the other heads h' != h of keep[:, h'], without dividing (keep may be
    0): the product of the heads before h times the product of the heads after it."""
    ones = torch.ones_like(keep[:, :1])
    before = torch.cumprod(torch.cat([ones, keep[:, :-1]], 1), 1)
    after = torch.cumprod(torch.cat([ones, keep.flip(1)[:, :-1]], 1), 1).flip(1)
    return before * after


def write_backward(
    grad_new: Tensor, memory_t: Tensor, w: Tensor, erase: Tensor, add: Tensor, keep: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Gradients of `write_forward` -> (memory_t, w, erase, add), given dL/dM_t^T (B, M, N)."""
    single = w.shape[1] == 1
    kept = keep if single else keep.prod(dim=1)  # (B, M, N)
    grad_memory_t = grad_new * kept
    grad_kept = grad_new * memory_t  # (B, M, N)
    grad_w = _bmm(add, grad_new)  # (B, Hw, N)
    grad_add = _bmm(w, grad_new.transpose(1, 2))  # (B, Hw, M)
    if single:
        grad_w = grad_w - _bmm(erase, grad_kept)
        grad_erase = -_bmm(w, grad_kept.transpose(1, 2))
    else:
        grad_keep = grad_kept.unsqueeze(1) * _exclusive_prod(keep)  # (B, Hw, M, N)
        grad_w = grad_w - (grad_keep * erase.unsqueeze(-1)).sum(-2)
        grad_erase = -(grad_keep * w.unsqueeze(-2)).sum(-1)
    return grad_memory_t, grad_w, grad_erase, grad_add

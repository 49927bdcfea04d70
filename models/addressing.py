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

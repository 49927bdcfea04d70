"""The five task generators checked against the data contract in docs/TASKS.md.

1. One small hand-built example per task: the expected arrays are written out from the contract
   with explicit index arithmetic (reading only the random bits back from the generated inputs)
   and compared element by element.
2. Properties over many seeds, recomputed with plain Python (sorting, brute-force counting).
3. Determinism of the seeded stream.
4. Impossible shapes and options raise a one-line ShapeError that names the valid values.
"""

from __future__ import annotations


import pytest
import torch

from datamodules.base import ShapeError
from datamodules.ngrams import optimal_estimate
from datamodules.registry import TASKS, build_task

SEEDS = range(20)
BATCH = 4

# One small shape per task, used where any shape will do.
SMALL_SHAPES = {
    "copy": {"length": 5},
    "repeat_copy": {"length": 3, "repeats": 4},
    "associative_recall": {"items": 4},
    "ngrams": {"length": 30},
    "priority_sort": {"n_in": 7, "n_out": 5},
}


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def check_layout(batch: dict, B: int, T: int, I: int, O: int) -> None:
    """Dtypes and shapes of the contract's batch layout; targets zero off the mask."""
    assert batch["inputs"].dtype == torch.float32
    assert batch["targets"].dtype == torch.float32
    assert batch["mask"].dtype == torch.bool
    assert tuple(batch["inputs"].shape) == (B, T, I)
    assert tuple(batch["targets"].shape) == (B, T, O)
    assert tuple(batch["mask"].shape) == (B, T)
    off = ~batch["mask"]
    assert torch.count_nonzero(batch["targets"][off]) == 0


def is_bits(x: torch.Tensor) -> bool:
    return bool(((x == 0) | (x == 1)).all())


# --------------------------------------------------------------------------------------------
# 1. Hand-built examples
# --------------------------------------------------------------------------------------------


def test_copy_hand_example():
    task = build_task("copy")
    assert (task.input_size, task.output_size) == (9, 8)
    B, L = 2, 3
    out = task.sample(gen(123), B, length=L)
    T = 2 * L + 1  # 7
    check_layout(out, B, T, 9, 8)
    x = out["inputs"]
    bits = [[[float(x[b, t, c]) for c in range(8)] for t in range(3)] for b in range(B)]
    assert all(v in (0.0, 1.0) for seq in bits for vec in seq for v in vec)
    assert len({tuple(v) for seq in bits for v in seq}) > 1  # really random, not constant

    inputs = torch.zeros(B, 7, 9)
    targets = torch.zeros(B, 7, 8)
    mask = torch.zeros(B, 7, dtype=torch.bool)
    for b in range(B):
        for c in range(8):
            # steps 0, 1, 2: the three vectors; channel 8 stays 0
            inputs[b, 0, c] = bits[b][0][c]
            inputs[b, 1, c] = bits[b][1][c]
            inputs[b, 2, c] = bits[b][2][c]
            # steps 4, 5, 6: the answer
            targets[b, 4, c] = bits[b][0][c]
            targets[b, 5, c] = bits[b][1][c]
            targets[b, 6, c] = bits[b][2][c]
        inputs[b, 3, 8] = 1.0  # delimiter alone at step L = 3
        mask[b, 4] = mask[b, 5] = mask[b, 6] = True
    assert torch.equal(out["inputs"], inputs)
    assert torch.equal(out["targets"], targets)
    assert torch.equal(out["mask"], mask)


def test_repeat_copy_hand_example():
    task = build_task("repeat_copy")
    assert (task.input_size, task.output_size) == (10, 9)
    B, L, R = 2, 2, 3
    out = task.sample(gen(7), B, length=L, repeats=R)
    T = L + 2 + L * R + 1  # 11
    assert T == 11
    check_layout(out, B, T, 10, 9)
    x = out["inputs"]
    # channel 9 at step L+1 = 3: (R - 5.5) / 2.8723
    expected_count = (3 - 5.5) / 2.8723
    assert abs(float(x[0, 3, 9]) - expected_count) < 1e-4
    assert abs(float(x[1, 3, 9]) - expected_count) < 1e-4
    count = float(x[0, 3, 9])
    bits = [[[float(x[b, t, c]) for c in range(8)] for t in range(2)] for b in range(B)]

    inputs = torch.zeros(B, 11, 10)
    targets = torch.zeros(B, 11, 9)
    mask = torch.zeros(B, 11, dtype=torch.bool)
    for b in range(B):
        for c in range(8):
            inputs[b, 0, c] = bits[b][0][c]
            inputs[b, 1, c] = bits[b][1][c]
            # answer steps 4..9: v0 v1 v0 v1 v0 v1
            targets[b, 4, c] = bits[b][0][c]
            targets[b, 5, c] = bits[b][1][c]
            targets[b, 6, c] = bits[b][0][c]
            targets[b, 7, c] = bits[b][1][c]
            targets[b, 8, c] = bits[b][0][c]
            targets[b, 9, c] = bits[b][1][c]
        inputs[b, 2, 8] = 1.0  # delimiter at step L
        inputs[b, 3, 9] = count  # repeat count at step L+1
        targets[b, 10, 8] = 1.0  # end marker at the last step, data channels 0
        for t in range(4, 11):
            mask[b, t] = True
    assert torch.equal(out["inputs"], inputs)
    assert torch.equal(out["targets"], targets)
    assert torch.equal(out["mask"], mask)


def test_associative_recall_hand_example():
    task = build_task("associative_recall")
    assert (task.input_size, task.output_size) == (8, 6)
    B, K = 3, 3
    out = task.sample(gen(11), B, items=K)
    T = 4 * K + 8  # 20
    check_layout(out, B, T, 8, 6)
    x = out["inputs"]

    inputs = torch.zeros(B, 20, 8)
    targets = torch.zeros(B, 20, 6)
    mask = torch.zeros(B, 20, dtype=torch.bool)
    for b in range(B):
        # item k: delimiter at step 4k (channel 6), vectors at steps 4k+1, 4k+2, 4k+3
        items = [
            [[float(x[b, 4 * k + 1 + v, c]) for c in range(6)] for v in range(3)]
            for k in range(3)
        ]
        query = [[float(x[b, 13 + v, c]) for c in range(6)] for v in range(3)]
        matches = [k for k in range(3) if items[k] == query]
        assert len(matches) == 1 and matches[0] in (0, 1)  # never the last item
        q = matches[0]
        for k in range(3):
            inputs[b, 4 * k, 6] = 1.0
            for v in range(3):
                for c in range(6):
                    inputs[b, 4 * k + 1 + v, c] = items[k][v][c]
        inputs[b, 12, 7] = 1.0  # query delimiter at step 4K
        for v in range(3):
            for c in range(6):
                inputs[b, 13 + v, c] = items[q][v][c]  # steps 13..15: the query item
                targets[b, 17 + v, c] = items[q + 1][v][c]  # steps 17..19: the next item
        inputs[b, 16, 7] = 1.0  # closing query delimiter
        mask[b, 17] = mask[b, 18] = mask[b, 19] = True
    assert torch.equal(out["inputs"], inputs)
    assert torch.equal(out["targets"], targets)
    assert torch.equal(out["mask"], mask)


def test_ngrams_hand_example():
    task = build_task("ngrams")
    assert (task.input_size, task.output_size) == (1, 1)
    B, S = 2, 10
    out = task.sample(gen(5), B, length=S)
    check_layout(out, B, S, 1, 1)
    assert tuple(out["optimal"].shape) == (B, S, 1)
    x = out["inputs"]
    bits = [[float(x[b, t, 0]) for t in range(S)] for b in range(B)]
    assert all(v in (0.0, 1.0) for seq in bits for v in seq)

    targets = torch.zeros(B, S, 1)
    mask = torch.zeros(B, S, dtype=torch.bool)
    optimal = torch.zeros(B, S, 1)
    for b in range(B):
        for t in range(S - 1):
            targets[b, t, 0] = bits[b][t + 1]
            mask[b, t] = True
        for t in range(S):
            if t < 4:
                optimal[b, t, 0] = 0.5
                continue
            ctx = bits[b][t - 4 : t + 1]
            n1 = n0 = 0
            for u in range(4, t):
                if bits[b][u - 4 : u + 1] == ctx:
                    n1 += bits[b][u + 1] == 1.0
                    n0 += bits[b][u + 1] == 0.0
            optimal[b, t, 0] = (n1 + 0.5) / (n1 + n0 + 1)
    assert torch.equal(out["targets"], targets)
    assert torch.equal(out["mask"], mask)
    assert torch.allclose(out["optimal"][mask], optimal[mask], atol=1e-6, rtol=0)


def test_ngrams_optimal_estimator_on_a_written_sequence():
    # index: 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14
    # bit:   0 0 0 0 0 0 0 1 1 0  0  0  0  0  1
    bits = torch.tensor([[0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 1]], dtype=torch.float32)
    est = optimal_estimate(bits)[0]
    expected = [
        0.5, 0.5, 0.5, 0.5,  # t < 4: fewer than 5 bits of context
        0.5,        # t=4  ctx b0..b4  = 00000: nothing seen
        0.5 / 2,    # t=5  ctx b1..b5  = 00000: seen at t=4, followed by 0 -> N1=0, N0=1
        0.5 / 3,    # t=6  ctx b2..b6  = 00000: followed by 0, 0 -> N0=2
        0.5,        # t=7  ctx b3..b7  = 00001: new
        0.5,        # t=8  ctx b4..b8  = 00011: new
        0.5,        # t=9  ctx b5..b9  = 00110: new
        0.5,        # t=10 ctx b6..b10 = 01100: new
        0.5,        # t=11 ctx b7..b11 = 11000: new
        0.5,        # t=12 ctx b8..b12 = 10000: new
        1.5 / 4,    # t=13 ctx b9..b13 = 00000: seen at t=4,5,6, followed by 0,0,1 -> N1=1, N0=2
        1.5 / 2,    # t=14 ctx b10..b14 = 00001: seen at t=7, followed by 1 -> N1=1, N0=0
    ]
    assert torch.allclose(est, torch.tensor(expected), atol=1e-7, rtol=0)
    # the hand values agree with the brute-force counter used in the property tests
    assert brute_force_optimal(bits[0].tolist()) == pytest.approx(expected, abs=1e-12)


def test_priority_sort_hand_example():
    task = build_task("priority_sort")
    assert (task.input_size, task.output_size) == (10, 8)
    B, n_in, n_out = 2, 4, 2
    out = task.sample(gen(3), B, n_in=n_in, n_out=n_out)
    T = n_in + 1 + n_out  # 7
    check_layout(out, B, T, 10, 8)
    x = out["inputs"]

    inputs = torch.zeros(B, 7, 10)
    targets = torch.zeros(B, 7, 8)
    mask = torch.zeros(B, 7, dtype=torch.bool)
    for b in range(B):
        vecs = [[float(x[b, t, c]) for c in range(8)] for t in range(4)]
        prio = [float(x[b, t, 8]) for t in range(4)]
        assert all(-1.0 <= p <= 1.0 for p in prio)
        assert len(set(prio)) == 4
        # the two highest priorities, by hand: pick the max, then the max of the rest
        first = max(range(4), key=lambda t: prio[t])
        second = max((t for t in range(4) if t != first), key=lambda t: prio[t])
        for t in range(4):
            for c in range(8):
                inputs[b, t, c] = vecs[t][c]
            inputs[b, t, 8] = prio[t]
        inputs[b, 4, 9] = 1.0  # delimiter at step n_in
        for c in range(8):
            targets[b, 5, c] = vecs[first][c]
            targets[b, 6, c] = vecs[second][c]
        mask[b, 5] = mask[b, 6] = True
    assert torch.equal(out["inputs"], inputs)
    assert torch.equal(out["targets"], targets)
    assert torch.equal(out["mask"], mask)


# --------------------------------------------------------------------------------------------
# 2. Properties over many seeds
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_copy_answers_equal_inputs(seed):
    task = build_task("copy")
    g = gen(seed)
    L = task.train_shape(g)["length"]
    assert 1 <= L <= 20
    out = task.sample(g, BATCH, length=L)
    check_layout(out, BATCH, 2 * L + 1, 9, 8)
    x, y, m = out["inputs"], out["targets"], out["mask"]
    assert is_bits(x[:, :L, :8])
    assert torch.equal(y[:, L + 1 : 2 * L + 1], x[:, :L, :8])
    assert torch.equal(x[:, L + 1 :], torch.zeros(BATCH, L, 9))  # answer phase input is zero
    assert torch.equal(x[:, :L, 8], torch.zeros(BATCH, L))  # no delimiter among the data
    assert torch.equal(x[:, L], torch.eye(9)[8].expand(BATCH, 9))
    assert m.sum(1).tolist() == [L] * BATCH
    assert m[:, L + 1 :].all()


@pytest.mark.parametrize("seed", SEEDS)
def test_repeat_copy_answers_repeat_then_end_marker(seed):
    task = build_task("repeat_copy")
    g = gen(seed)
    shape = task.train_shape(g)
    L, R = shape["length"], shape["repeats"]
    assert 1 <= L <= 10 and 1 <= R <= 10
    out = task.sample(g, BATCH, **shape)
    T = L + 2 + L * R + 1
    check_layout(out, BATCH, T, 10, 9)
    x, y, m = out["inputs"], out["targets"], out["mask"]
    assert is_bits(x[:, :L, :8])
    for b in range(BATCH):
        seq = x[b, :L, :8].tolist()
        for r in range(R):
            for i in range(L):
                t = L + 2 + r * L + i
                assert y[b, t, :8].tolist() == seq[i]
                assert y[b, t, 8].item() == 0.0
        assert y[b, T - 1].tolist() == [0.0] * 8 + [1.0]
        assert m[b].tolist() == [False] * (L + 2) + [True] * (L * R + 1)
        assert abs(x[b, L + 1, 9].item() - (R - 5.5) / 2.8723) < 1e-4
        assert x[b, L].tolist() == [0.0] * 8 + [1.0, 0.0]
    assert torch.count_nonzero(x[:, L + 2 :]) == 0


@pytest.mark.parametrize("seed", SEEDS)
def test_associative_recall_answer_is_next_item(seed):
    task = build_task("associative_recall")
    g = gen(seed)
    K = task.train_shape(g)["items"]
    assert 2 <= K <= 6
    B = 8
    out = task.sample(g, B, items=K)
    check_layout(out, B, 4 * K + 8, 8, 6)
    x, y, m = out["inputs"], out["targets"], out["mask"]
    q = 4 * K
    for b in range(B):
        items = [x[b, 4 * k + 1 : 4 * k + 4, :6].tolist() for k in range(K)]
        for k in range(K):
            assert x[b, 4 * k].tolist() == [0.0] * 6 + [1.0, 0.0]
            assert x[b, 4 * k + 1 : 4 * k + 4, 6:].tolist() == [[0.0, 0.0]] * 3
        query = x[b, q + 1 : q + 4, :6].tolist()
        assert x[b, q].tolist() == [0.0] * 7 + [1.0]
        assert x[b, q + 4].tolist() == [0.0] * 7 + [1.0]
        found = [k for k in range(K) if items[k] == query]
        assert found, "the query must be one of the stored items"
        assert K - 1 not in found or len(found) > 1  # never (only) the last item
        k = min(found)
        assert k <= K - 2
        assert y[b, q + 5 : q + 8].tolist() == items[k + 1]
        assert m[b].tolist() == [False] * (q + 5) + [True] * 3
    assert torch.count_nonzero(x[:, q + 5 :]) == 0


def test_associative_recall_query_covers_all_but_last_item():
    task = build_task("associative_recall")
    K, B = 4, 400
    out = task.sample(gen(99), B, items=K)
    x = out["inputs"]
    chosen = set()
    for b in range(B):
        query = x[b, 4 * K + 1 : 4 * K + 4, :6]
        for k in range(K):
            if torch.equal(x[b, 4 * k + 1 : 4 * k + 4, :6], query):
                chosen.add(k)
                break
    assert chosen == {0, 1, 2}


@pytest.mark.parametrize("seed", SEEDS)
def test_priority_sort_targets_are_sorted_top_n_out(seed):
    task = build_task("priority_sort")
    g = gen(seed)
    shape = task.train_shape(g)
    assert shape == {"n_in": 20, "n_out": 16}
    n_in, n_out = shape["n_in"], shape["n_out"]
    out = task.sample(g, BATCH, **shape)
    check_layout(out, BATCH, n_in + 1 + n_out, 10, 8)
    x, y, m = out["inputs"], out["targets"], out["mask"]
    for b in range(BATCH):
        rows = x[b, :n_in].tolist()
        prio = [r[8] for r in rows]
        assert all(-1.0 <= p <= 1.0 for p in prio)
        assert all(r[9] == 0.0 for r in rows)
        order = sorted(range(n_in), key=lambda t: prio[t], reverse=True)[:n_out]
        expected = [rows[t][:8] for t in order]
        assert y[b, n_in + 1 :].tolist() == expected
        assert x[b, n_in].tolist() == [0.0] * 9 + [1.0]
        assert m[b].tolist() == [False] * (n_in + 1) + [True] * n_out
    assert torch.count_nonzero(x[:, n_in + 1 :]) == 0


def test_priority_sort_priorities_span_minus_one_to_one():
    task = build_task("priority_sort")
    out = task.sample(gen(1), 50, n_in=20, n_out=16)
    p = out["inputs"][:, :20, 8]
    assert p.min() >= -1.0 and p.max() <= 1.0
    assert p.min() < -0.95 and p.max() > 0.95
    assert abs(p.mean().item()) < 0.1


def brute_force_optimal(bits: list[float]) -> list[float]:
    """(N1 + 1/2) / (N1 + N0 + 1) over the bits that followed the same 5-bit context earlier."""
    est = []
    for t in range(len(bits)):
        if t < 4:
            est.append(0.5)
            continue
        ctx = bits[t - 4 : t + 1]
        n1 = n0 = 0
        for u in range(4, t):
            if bits[u - 4 : u + 1] == ctx:
                if bits[u + 1] == 1.0:
                    n1 += 1
                else:
                    n0 += 1
        est.append((n1 + 0.5) / (n1 + n0 + 1))
    return est


@pytest.mark.parametrize("seed", SEEDS)
def test_ngrams_optimal_matches_brute_force(seed):
    task = build_task("ngrams")
    g = gen(seed)
    assert task.train_shape(g) == {"length": 200}
    S = 120
    out = task.sample(g, BATCH, length=S)
    check_layout(out, BATCH, S, 1, 1)
    x, y, m, opt = out["inputs"], out["targets"], out["mask"], out["optimal"]
    assert is_bits(x)
    assert torch.equal(y[:, : S - 1], x[:, 1:])
    assert m.tolist() == [[True] * (S - 1) + [False]] * BATCH
    for b in range(BATCH):
        bits = x[b, :, 0].tolist()
        want = brute_force_optimal(bits)
        got = opt[b, :, 0].tolist()
        for t in range(S - 1):
            assert abs(got[t] - want[t]) < 1e-6, (b, t, got[t], want[t])


def test_ngrams_bits_follow_a_per_sequence_table():
    # Beta(1/2, 1/2) tables are mostly near 0 or 1, so a long sequence is far more predictable
    # than coin flips; the optimal estimator's cost must be well below 1 bit per step on average,
    # and the first 5 bits must be fair coins.
    task = build_task("ngrams")
    out = task.sample(gen(2), 64, length=400)
    bits = out["inputs"][:, :, 0]
    first = bits[:, :5]
    assert 0.35 < first.mean().item() < 0.65
    p = out["optimal"][:, :-1, 0]
    y = out["targets"][:, :-1, 0]
    cost = -(y * torch.log2(p) + (1 - y) * torch.log2(1 - p)).mean().item()
    assert cost < 0.8
    # different sequences get different tables: overall frequency of ones varies widely
    freq = bits.mean(1)
    assert freq.max() - freq.min() > 0.3


def test_ngrams_follow_table_is_the_per_bit_definition():
    # bit t = coins[t] < table[context], the context being the 5 bits before t, the most recent
    # lowest: written out one bit at a time in Python against the vectorized walk
    from datamodules.ngrams import follow_table

    g = gen(3)
    B, S = 6, 40
    first = (torch.rand(B, 5, generator=g) < 0.5).float()
    coins, table = torch.rand(B, S, generator=g), torch.rand(B, 32, generator=g)
    got = follow_table(first, coins, table)
    for b in range(B):
        seq = [int(v) for v in first[b]]
        for t in range(S):
            context = int("".join(map(str, seq[-5:])), 2)
            seq.append(int(coins[b, t] < table[b, context]))
        assert got[b].tolist() == seq[5:]


# --------------------------------------------------------------------------------------------
# Splits and labels
# --------------------------------------------------------------------------------------------


def test_test_shapes_and_labels_follow_contract():
    assert set(TASKS) == {"copy", "repeat_copy", "associative_recall", "ngrams", "priority_sort"}
    assert build_task("copy").test_shapes() == [{"length": L} for L in (30, 50, 80, 120)]
    assert build_task("repeat_copy").test_shapes() == [
        {"length": 10, "repeats": 20},
        {"length": 20, "repeats": 10},
        {"length": 10, "repeats": 15},
    ]
    assert build_task("associative_recall").test_shapes() == [
        {"items": K} for K in (8, 10, 12, 15)
    ]
    assert build_task("ngrams").test_shapes() == [{"length": 400}, {"length": 1000}]
    assert build_task("priority_sort").test_shapes() == [
        {"n_in": 30, "n_out": 24},
        {"n_in": 40, "n_out": 32},
    ]
    labels = {name: [build_task(name).label(s) for s in build_task(name).test_shapes()]
              for name in TASKS}
    for name, names in labels.items():
        assert len(set(names)) == len(names), name  # distinct labels per test set


@pytest.mark.parametrize("name", sorted(TASKS))
def test_train_shapes_cover_training_range(name):
    task = build_task(name)
    g = gen(0)
    shapes = [task.train_shape(g) for _ in range(300)]
    if name == "copy":
        assert {s["length"] for s in shapes} == set(range(1, 21))
    elif name == "repeat_copy":
        assert {s["length"] for s in shapes} == set(range(1, 11))
        assert {s["repeats"] for s in shapes} == set(range(1, 11))
    elif name == "associative_recall":
        assert {s["items"] for s in shapes} == set(range(2, 7))
    elif name == "ngrams":
        assert all(s == {"length": 200} for s in shapes)
    else:
        assert all(s == {"n_in": 20, "n_out": 16} for s in shapes)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_test_shapes_sample_with_contract_sizes(name):
    task = build_task(name)
    for shape in task.test_shapes():
        out = task.sample(gen(0), 1, **shape)
        if name == "copy":
            T = 2 * shape["length"] + 1
        elif name == "repeat_copy":
            L, R = shape["length"], shape["repeats"]
            T = L + 2 + L * R + 1
        elif name == "associative_recall":
            T = 4 * shape["items"] + 8
        elif name == "ngrams":
            T = shape["length"]
        else:
            T = shape["n_in"] + 1 + shape["n_out"]
        check_layout(out, 1, T, task.input_size, task.output_size)


# --------------------------------------------------------------------------------------------
# 3. Determinism
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(TASKS))
def test_same_seed_same_batch(name):
    task = build_task(name)
    a = task.sample(gen(42), BATCH, **SMALL_SHAPES[name])
    b = task.sample(gen(42), BATCH, **SMALL_SHAPES[name])
    assert a.keys() == b.keys()
    assert set(a) >= {"inputs", "targets", "mask"}
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize("name", sorted(TASKS))
def test_different_seeds_different_batches(name):
    task = build_task(name)
    a = task.sample(gen(1), BATCH, **SMALL_SHAPES[name])
    b = task.sample(gen(2), BATCH, **SMALL_SHAPES[name])
    assert not torch.equal(a["inputs"], b["inputs"])
    assert not torch.equal(a["targets"], b["targets"])


@pytest.mark.parametrize("name", sorted(TASKS))
def test_training_stream_is_reproducible(name):
    task = build_task(name)

    def stream(seed):
        g = gen(seed)
        batches = []
        for _ in range(3):
            shape = task.train_shape(g)
            batches.append((shape, task.sample(g, 2, **shape)))
        return batches

    first, second = stream(8), stream(8)
    for (s1, b1), (s2, b2) in zip(first, second):
        assert s1 == s2
        for key in b1:
            assert torch.equal(b1[key], b2[key])
    # consecutive batches of one stream differ
    assert not torch.equal(first[0][1]["inputs"], first[1][1]["inputs"]) or (
        first[0][0] != first[1][0]
    )


# --------------------------------------------------------------------------------------------
# 4. Bad shapes and options
# --------------------------------------------------------------------------------------------


def one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def test_copy_length_zero_rejected():
    with pytest.raises(ShapeError) as exc:
        build_task("copy").sample(gen(0), 2, length=0)
    msg = one_line(exc)
    assert "length" in msg and ">= 1" in msg and "got 0" in msg


def test_associative_recall_one_item_rejected():
    with pytest.raises(ShapeError) as exc:
        build_task("associative_recall").sample(gen(0), 2, items=1)
    msg = one_line(exc)
    assert "items" in msg and ">= 2" in msg


def test_priority_sort_n_out_above_n_in_rejected():
    with pytest.raises(ShapeError) as exc:
        build_task("priority_sort").sample(gen(0), 2, n_in=5, n_out=6)
    msg = one_line(exc)
    assert "n_out" in msg and "1..5" in msg and "got 6" in msg


def test_non_integer_shape_rejected():
    with pytest.raises(ShapeError) as exc:
        build_task("copy").sample(gen(0), 2, length=2.5)
    assert "integer" in one_line(exc)


def test_unknown_shape_keyword_rejected():
    with pytest.raises(ShapeError) as exc:
        build_task("copy").sample(gen(0), 2, length=3, repeats=2)
    msg = one_line(exc)
    assert "unknown: repeats" in msg and "length" in msg


def test_missing_shape_keyword_rejected():
    with pytest.raises(ShapeError) as exc:
        build_task("repeat_copy").sample(gen(0), 2, length=3)
    assert "missing: repeats" in one_line(exc)


def test_unknown_task_rejected():
    with pytest.raises(ShapeError) as exc:
        build_task("sorting")
    msg = one_line(exc)
    assert "'sorting'" in msg
    for name in ("copy", "repeat_copy", "associative_recall", "ngrams", "priority_sort"):
        assert name in msg


def test_unknown_task_option_rejected():
    with pytest.raises(ShapeError) as exc:
        build_task("copy", widht=4)
    msg = one_line(exc)
    assert "unknown task option widht" in msg and "width" in msg


def test_shape_error_is_value_error():
    assert issubclass(ShapeError, ValueError)
    with pytest.raises(ValueError):
        build_task("ngrams").sample(gen(0), 1, length=1)

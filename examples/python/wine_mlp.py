# The seeds' wine-quality MLP in Python, on the host's tensor kernels
# (wray.tensor): 11 -> 10 -> 8 -> 1, ReLU, ReLU, sigmoid; Kaiming/Xavier
# uniform initialisation; binary cross-entropy; SGD lr 0.01 momentum 0.9;
# batches of 32 — the Rust port's model (examples/wine_mlp) with the
# gradients written out. The UCI red-wine data, target quality >= 6,
# features standardised, scikit-learn's 25 % test split (random_state=0:
# numpy's permutation, reproduced below).
#
#   wray build examples/python/wine_mlp.py
#   wray run --dir examples/data::/data examples/python/wine_mlp.wasm -- [epochs [seed]]
import csv
import math
import random
import sys
import time

import wray
from wray.tensor import tensor, zeros


def numpy_permutation(n, seed):
    """numpy.random.RandomState(seed).permutation(n), exactly: MT19937
    seeded as numpy's legacy seeding does, and its bounded draws."""
    mt = [0] * 624
    mt[0] = seed & 0xFFFFFFFF
    for i in range(1, 624):
        mt[i] = (1812433253 * (mt[i - 1] ^ (mt[i - 1] >> 30)) + i) & 0xFFFFFFFF
    index = 624

    def next32():
        nonlocal index
        if index >= 624:
            for i in range(624):
                y = (mt[i] & 0x80000000) | (mt[(i + 1) % 624] & 0x7FFFFFFF)
                mt[i] = mt[(i + 397) % 624] ^ (y >> 1) ^ (0x9908B0DF if y & 1 else 0)
            index = 0
        y = mt[index]
        index += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9D2C5680
        y ^= (y << 15) & 0xEFC60000
        return y ^ (y >> 18)

    def interval(mx):
        mask = mx
        for s in (1, 2, 4, 8, 16):
            mask |= mask >> s
        while True:
            v = next32() & mask
            if v <= mx:
                return v

    idx = list(range(n))
    for i in range(n - 1, 0, -1):
        j = interval(i)
        idx[i], idx[j] = idx[j], idx[i]
    return idx


def load(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header, rows = rows[0], [[float(v) for v in r] for r in rows[1:] if r]
    q = header.index("quality")
    x = [[v for i, v in enumerate(r) if i != q] for r in rows]
    y = [1.0 if r[q] >= 6 else 0.0 for r in rows]
    perm = numpy_permutation(len(x), 0)
    n_test = math.ceil(0.25 * len(x))
    test, train = perm[:n_test], perm[n_test:]
    cols = len(x[0])
    mean = [sum(x[i][c] for i in train) / len(train) for c in range(cols)]
    scale = [math.sqrt(sum((x[i][c] - mean[c]) ** 2 for i in train) / len(train)) or 1.0 for c in range(cols)]

    def std(rows):
        return [[(r[c] - mean[c]) / scale[c] for c in range(cols)] for r in rows]

    return std([x[i] for i in train]), [y[i] for i in train], std([x[i] for i in test]), [y[i] for i in test]


def linear(rng, fan_in, fan_out, init):
    bound = math.sqrt(6.0 / fan_in) if init == "kaiming" else math.sqrt(6.0 / (fan_in + fan_out))
    w = tensor([[rng.uniform(-bound, bound) for _ in range(fan_out)] for _ in range(fan_in)])
    return [w, zeros([1, fan_out])]


@wray.remote
def train(x_train, y_train, x_test, y_test, epochs, seed=0):
    rng = random.Random(seed)
    params = linear(rng, 11, 10, "kaiming") + linear(rng, 10, 8, "kaiming") + linear(rng, 8, 1, "xavier")
    velocity = [zeros(list(p.shape)) for p in params]
    w1, b1, w2, b2, w3, b3 = params
    X, Y = tensor(x_train), tensor([[v] for v in y_train])
    order = list(range(len(y_train)))
    start = time.time()
    loss = float("nan")
    for _ in range(epochs):
        rng.shuffle(order)
        for at in range(0, len(order), 32):
            rows = order[at:at + 32]
            xb, yb, n = X.gather_rows(rows), Y.gather_rows(rows), len(rows)
            z1 = xb @ w1 + b1
            h1 = z1.relu()
            z2 = h1 @ w2 + b2
            h2 = z2.relu()
            p = (h2 @ w3 + b3).sigmoid()
            # Binary cross-entropy through the sigmoid: d loss / d logits.
            dz3 = (p - yb) * (1.0 / n)
            dz2 = z2.relu_backward(dz3.matmul(w3, transpose_b=True))
            dz1 = z1.relu_backward(dz2.matmul(w2, transpose_b=True))
            grads = [
                xb.matmul(dz1, transpose_a=True), dz1.sum(axis=0),
                h1.matmul(dz2, transpose_a=True), dz2.sum(axis=0),
                h2.matmul(dz3, transpose_a=True), dz3.sum(axis=0),
            ]
            for param, grad, v in zip(params, grads, velocity):
                param.sgd_step(grad, v, lr=0.01, momentum=0.9)
        ps = p.clamp(1e-7, 1 - 1e-7)
        loss = -((yb * ps.log() + (1 - yb) * (1 - ps).log()).mean(axis=0).item())
    train_s = time.time() - start
    h = (tensor(x_test) @ w1 + b1).relu()
    h = (h @ w2 + b2).relu()
    p = (h @ w3 + b3).sigmoid().tolist()
    accuracy = sum((pi[0] > 0.5) == (yi > 0.5) for pi, yi in zip(p, y_test)) / len(y_test)
    return {"accuracy": accuracy, "loss": loss, "train_s": train_s, "device": params[0].device}


def main():
    epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 150
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    path = "/data/winequality-red.csv"
    try:
        data = load(path)
    except OSError as e:
        sys.exit(f"cannot read {path}: {e} (grant the directory: wray run --dir examples/data::/data ...)")
    report = wray.get(train.remote(*data, epochs, seed))
    print(f"device: {report['device']}")
    print(f"epochs: {epochs}, final batch loss {report['loss']:.4f}")
    print(f"train time: {report['train_s']:.3f} s")
    print(f"test accuracy: {report['accuracy']:.4f}")

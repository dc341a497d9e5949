# The host's tensors from Python (wray.tensor): the kernels wray::nn runs,
# on the CPU path here (the GPU path where a task holds GPU on a node that
# has one). Element-wise operations, matmul, reductions, bytes and the
# object store, then a task that fits y = 2x + 1 by gradient descent with
# the host's matmul and SGD step.
#
#   wray build examples/python/tensors.py
#   wray run examples/python/tensors.wasm
import random

import wray
from wray.tensor import from_bytes, from_object, tensor, zeros


@wray.remote
def fit(seed, steps=200):
    rng = random.Random(seed)
    xs = [rng.uniform(-1.0, 1.0) for _ in range(64)]
    X = tensor([[x, 1.0] for x in xs])          # [64, 2]: x and a bias column
    Y = tensor([[2.0 * x + 1.0] for x in xs])   # [64, 1]
    w, velocity = zeros([2, 1]), zeros([2, 1])
    for _ in range(steps):
        err = X @ w - Y                                        # [64, 1]
        grad = X.matmul(err, transpose_a=True) * (2.0 / 64)    # d(mean squared error)/dw
        w.sgd_step(grad, velocity, lr=0.5)
    return [round(v, 3) for v in w.reshape(2).tolist()]


def main():
    x = tensor([[1.0, 2.0], [3.0, 4.0]])
    print("shape:", x.shape, "device:", x.device)
    print("x @ x:", (x @ x).tolist())
    print("relu(x - 2.5) * 2 + 1:", ((x - 2.5).relu() * 2 + 1).tolist())
    print("sum along axis 1:", x.sum(axis=1).tolist())
    print("softmax rows sum to:", [round(sum(row), 5) for row in x.softmax().tolist()])
    print("bytes round trip:", from_bytes(x.to_bytes(), [2, 2]).tolist() == x.tolist())
    print("through the object store:", from_object(x.to_object()).tolist())
    print("fitted w, b:", wray.get(fit.remote(0)))
    try:
        x @ tensor([[1.0, 2.0, 3.0]])
    except ValueError as e:
        print("shapes that do not fit:", type(e).__name__)

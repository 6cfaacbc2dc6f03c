"""A training iteration reuses its scratch memory: nothing of size T x B x H is allocated again."""

import tracemalloc

import numpy as np

from blekota.optim import Adam


def test_training_iterations_allocate_no_activation_sized_arrays(rng, make_model):
    T, B, H, layers = 50, 16, 32, 2
    model = make_model(H, layers, "float32")
    x = rng.integers(0, 256, (T + 1, B))
    grads = np.empty_like(model.params)
    optimizer = Adam(model.params.size, model.dtype, lr=1e-3)
    h = None

    def iteration(h):
        _, h = model.window(x, h, grads)
        optimizer.step(model.params, grads)
        return h

    h = iteration(h)  # the first window of a shape allocates its workspace
    tracemalloc.start()
    try:
        for _ in range(3):
            h = iteration(h)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    activation_bytes = T * B * H * model.dtype.itemsize
    assert peak < activation_bytes / 4

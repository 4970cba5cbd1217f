"""Where the seconds of one training epoch go: batching, forward, loss, backward, update, and the
matrix products alone as the floor.

    python benchmarks/trainer_profile.py                       # 784-128-10, Adam, batch 128
    python benchmarks/trainer_profile.py --hidden 256 128 --optimizer sgd --threads 1

It runs ``nn.fit``'s loop by hand (the same calls in the same order) with a clock around each
part, for a few epochs on the 50,000 training images, then times the same epoch's matrix
products on contiguous batches with nothing else. The difference between the two is what the
trainer spends on top of the BLAS. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import numpy as np

import nn_helpers as nn


def profile_epochs(params, X, y, optimizer, batch_size: int, epochs: int, seed: int) -> dict:
    """Seconds per epoch of each part of the training loop, averaged over ``epochs``."""
    parts, clock = defaultdict(float), time.perf_counter
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        batches = nn.iterate_minibatches(X, y, batch_size, rng=rng)
        t0 = clock()
        for X_batch, y_batch in batches:
            t1 = clock()
            logits, caches = nn._mlp_forward(params, X_batch, "relu")
            finite = np.isfinite(logits).all()
            t2 = clock()
            loss, dlogits = nn._softmax_cross_entropy(logits, y_batch)
            t3 = clock()
            grads = nn.mlp_backward(dlogits, caches)
            t4 = clock()
            optimizer.step(params, grads)
            t5 = clock()
            np.count_nonzero(logits.argmax(axis=1) == y_batch)
            t6 = clock()
            for part, seconds in (("batching", t1 - t0), ("forward", t2 - t1), ("loss", t3 - t2),
                                  ("backward", t4 - t3), ("update", t5 - t4),
                                  ("accuracy", t6 - t5)):
                parts[part] += seconds
            t0 = clock()
            assert finite
    return {part: seconds / epochs for part, seconds in parts.items()}


def matmul_floor(params, X, batch_size: int) -> float:
    """Seconds for one epoch of the forward and backward matrix products alone."""
    Ws = [params[f"W{i}"] for i in range(1, nn.num_layers(params) + 1)]
    start = time.perf_counter()
    for i in range(0, len(X), batch_size):
        acts = [X[i:i + batch_size]]
        for W in Ws:
            acts.append(acts[-1] @ W)
        dZ = acts[-1]
        for j in range(len(Ws) - 1, -1, -1):
            acts[j].T @ dZ  # dW
            if j:
                dZ = dZ @ Ws[j].T
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hidden", type=int, nargs="+", default=[128])
    parser.add_argument("--optimizer", choices=sorted(nn.OPTIMIZERS), default="adam")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None,
                        help="BLAS threads (default: nn.DEFAULT_BLAS_THREADS; 0: one per core)")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    threads = nn.limit_blas_threads(args.threads)
    data = nn.load_mnist_splits(args.data_dir)
    sizes = [784, *args.hidden, 10]
    params = nn.init_mlp(sizes, rng=0)
    optimizer = nn.OPTIMIZERS[args.optimizer](args.lr)
    parts = profile_epochs(params, data.X_train, data.y_train, optimizer, args.batch_size,
                           args.epochs, seed=0)
    total = sum(parts.values())
    floor = matmul_floor(params, data.X_train, args.batch_size)
    print(f"{'-'.join(map(str, sizes))}, {args.optimizer} lr {args.lr:g}, batch "
          f"{args.batch_size}, {len(data.X_train):,} images, {threads} BLAS thread(s)")
    for part, seconds in sorted(parts.items(), key=lambda kv: -kv[1]):
        print(f"  {part:10s} {seconds:6.3f} s per epoch  {100 * seconds / total:4.0f}%")
    print(f"  {'total':10s} {total:6.3f} s per epoch")
    print(f"  matrix products alone: {floor:.3f} s per epoch ({100 * floor / total:.0f}% of the "
          f"total)")


if __name__ == "__main__":
    main()

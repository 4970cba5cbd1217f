"""A class on one server: the same heavy cell run by several students at once, with and without a
limit on the BLAS threads of each process.

    python benchmarks/sharing.py                       # 1, 2 and 4 at once; BLAS default and 1
    python benchmarks/sharing.py --students 1 4 --threads 1

The heavy cell is notebook 05's kind of training: 784-256-128-10, Adam, 2 epochs on the 50,000
training images, batch 128. Each "student" is a fresh process that loads the data, waits at a
barrier until all are ready, then trains; its wall-clock seconds are reported. ``--threads 0``
leaves the BLAS as it comes (one thread per core, what NumPy does by default); ``--threads N``
limits each process to N threads with threadpoolctl, as ``nn.limit_blas_threads`` does in every
notebook's setup cell. Run it on an otherwise quiet machine.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import time


def student(threads: int, data_dir, barrier, results) -> None:
    import numpy as np

    import nn_helpers as nn

    nn.limit_blas_threads(threads)
    data = nn.load_mnist_splits(data_dir)
    params = nn.init_mlp([784, 256, 128, 10], rng=np.random.default_rng(0))
    barrier.wait()
    start = time.perf_counter()
    nn.fit(params, data.X_train, data.y_train, data.X_val, data.y_val, optimizer=nn.Adam(1e-3),
           epochs=2, batch_size=128, rng=0, verbose=False)
    results.put(time.perf_counter() - start)


def run(n_students: int, threads: int, data_dir) -> list[float]:
    """Seconds each of ``n_students`` simultaneous processes took for the heavy cell."""
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(n_students), ctx.Queue()
    procs = [ctx.Process(target=student, args=(threads, data_dir, barrier, results))
             for _ in range(n_students)]
    for p in procs:
        p.start()
    times = [results.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    return sorted(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--threads", type=int, nargs="+", default=[0, 1],
                        help="BLAS threads per process; 0: the BLAS default (all cores)")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each setting")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores; heavy cell: 784-256-128-10, Adam, 2 epochs on 50,000 images")
    alone = {}
    for threads in args.threads:
        label = "BLAS default" if threads == 0 else f"{threads} thread(s)"
        for n in args.students:
            times = [t for _ in range(args.repeats) for t in run(n, threads, args.data_dir)]
            median = statistics.median(times)
            alone.setdefault(threads, median if n == 1 else None)
            ratio = (f"  {median / alone[threads]:.1f}x its time alone"
                     if alone[threads] and n > 1 else "")
            print(f"{label:13s} {n} at once: {min(times):5.1f} to {max(times):5.1f} s each, "
                  f"median {median:5.1f} s{ratio}", flush=True)


if __name__ == "__main__":
    main()

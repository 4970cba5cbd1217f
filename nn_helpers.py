"""Shared helpers for the "neural network from scratch" notebook series.

Each section is the finished version of what one notebook builds by hand, in the order of the
series: data (01), plot style (01), layers and activations (03), losses (03), initialisation (02),
the model (03/04), gradient checking (04), optimizers and schedules (06), training (05),
evaluation (05) and saving (05).

Conventions: batch-first arrays, ``X`` of shape ``(N, D)``; a dense layer computes
``X @ W + b`` with ``W`` of shape ``(fan_in, fan_out)``; parameters live in a dict
``{"W1", "b1", "W2", "b2", ...}``; every layer is a pair ``out, cache = *_forward(...)`` and
``grads = *_backward(dout, cache)``. Randomness always comes in as ``rng`` (a seed or a
``np.random.Generator``). Importing this module has no side effects.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import math
import os
import re
import sys
import tempfile
import time
import urllib.request
import zipfile
import zlib
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

# =================================================================================================
# Data (taught in 01_data)
# =================================================================================================

#: Environment variable that points the loader at a folder holding the four MNIST files.
DATA_ENV_VAR = "MNIST_DATA_DIR"

#: The four canonical files: name -> (expected shape, SHA-256 of the *decompressed* bytes).
#: Hashing the decompressed bytes accepts every correct copy, whatever gzip settings produced
#: the .gz wrapper (mirrors and re-compressed copies differ in their compressed bytes).
MNIST_FILES = {
    "train-images-idx3-ubyte.gz": (
        (60000, 28, 28), "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    "train-labels-idx1-ubyte.gz": (
        (60000,), "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    "t10k-images-idx3-ubyte.gz": (
        (10000, 28, 28), "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    "t10k-labels-idx1-ubyte.gz": (
        (10000,), "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
}

#: HTTPS mirrors tried in order when a file is missing (each serves the four .gz files).
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://yann.lecun.com/exdb/mnist/",
)

# IDX type codes (third byte of the magic number) -> big-endian NumPy dtype.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_MAX_DOWNLOAD_BYTES = 64 * 2**20  # the largest MNIST file is ~9.9 MB compressed


class MNISTDataError(RuntimeError):
    """The MNIST files are missing, unreadable, corrupt or not the canonical ones."""


def default_data_dir() -> Path:
    """The per-user cache folder: ``$XDG_CACHE_HOME/nn-from-scratch/mnist``, where
    ``XDG_CACHE_HOME`` defaults to ``~/.cache``."""
    cache_root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache_root) / "nn-from-scratch" / "mnist"


def candidate_data_dirs(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The folders the loader searches, in order: ``data_dir``, ``$MNIST_DATA_DIR``, the cache."""
    dirs = []
    if data_dir is not None:
        dirs.append(Path(data_dir).expanduser())
    if os.environ.get(DATA_ENV_VAR):
        dirs.append(Path(os.environ[DATA_ENV_VAR]).expanduser())
    dirs.append(default_data_dir())
    return list(dict.fromkeys(dirs))  # drop repeats, keep order


def parse_idx(raw: bytes, source: str = "<bytes>") -> np.ndarray:
    """Parse the bytes of one (decompressed) IDX file into an array.

    The format: two zero bytes, a type code, the number of dimensions ``ndim``; then ``ndim``
    big-endian uint32 sizes; then the values, row-major and big-endian.

    Raises
    ------
    MNISTDataError
        On a wrong magic number, or a body shorter or longer than the header announces.
    """
    if len(raw) < 4:
        raise MNISTDataError(f"{source}: {len(raw)} bytes is too short for an IDX header (4+).")
    zero1, zero2, type_code, ndim = raw[0], raw[1], raw[2], raw[3]
    if zero1 != 0 or zero2 != 0 or type_code not in _IDX_DTYPES:
        raise MNISTDataError(
            f"{source}: wrong magic number {raw[:4].hex()}; an IDX file starts with 00 00, a type "
            f"code in {sorted(hex(c) for c in _IDX_DTYPES)} and the number of dimensions. "
            "This is not an IDX file (or still gzip-compressed).")
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise MNISTDataError(f"{source}: truncated header ({len(raw)} of {header_len} bytes).")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[type_code])
    expected = header_len + math.prod(shape) * dtype.itemsize
    if len(raw) != expected:
        raise MNISTDataError(
            f"{source}: the header announces shape {shape} ({expected} bytes in all) but the file "
            f"has {len(raw)} bytes; it is truncated or corrupt. Delete it and load again.")
    data = np.frombuffer(raw, dtype=dtype, offset=header_len).reshape(shape)
    return data.astype(dtype.newbyteorder("="))  # a writable copy in native byte order


def _gunzip(blob: bytes, source: str) -> bytes:
    try:
        return gzip.decompress(blob)
    except (OSError, EOFError, zlib.error) as err:
        raise MNISTDataError(
            f"{source}: not a complete gzip file ({err}). It is truncated or corrupt: delete it "
            "and load again, or replace it with a good copy.") from None


def _verify(raw: bytes, name: str, source: str) -> np.ndarray:
    """Check the SHA-256 of the decompressed bytes, parse, and check the shape."""
    shape, sha256 = MNIST_FILES[name]
    digest = hashlib.sha256(raw).hexdigest()
    if digest != sha256:
        raise MNISTDataError(
            f"{source}: SHA-256 of the decompressed data is {digest}, expected {sha256} for "
            f"{name}. The file is corrupt or not the canonical MNIST file: delete it and load "
            "again, or replace it with a good copy.")
    array = parse_idx(raw, source)
    if array.shape != shape:  # only reachable with a hash collision or an edited table
        raise MNISTDataError(f"{source}: shape {array.shape}, expected {shape}.")
    return array


def _download(name: str, target: Path, mirrors, timeout: float
              ) -> tuple[np.ndarray | None, list[str]]:
    """Fetch ``name`` from the first mirror that serves a verified copy; write it atomically."""
    failures = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + name
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                blob = response.read(_MAX_DOWNLOAD_BYTES + 1)
            if len(blob) > _MAX_DOWNLOAD_BYTES:
                raise MNISTDataError(f"{url}: larger than {_MAX_DOWNLOAD_BYTES} bytes")
            array = _verify(_gunzip(blob, url), name, url)
        except (OSError, http.client.HTTPException, MNISTDataError, ValueError) as err:
            # URLError, refused connections and timeouts are all OSError
            failures.append(f"{url}: {err}")
            continue
        try:
            target.mkdir(parents=True, exist_ok=True)
            _write_atomically(target / name, lambda f, blob=blob: f.write(blob))
        except OSError as err:
            raise MNISTDataError(
                f"Downloaded {name} but could not save it in {target} ({err}). Choose a writable "
                f"folder with load_mnist(data_dir=...) or ${DATA_ENV_VAR}.") from None
        return array, failures
    return None, failures


def _write_atomically(path: Path, write: Callable) -> None:
    """Call ``write(f)`` on a temporary file in the same folder, then rename it over ``path``: a
    reader never sees a half-written file, and an interrupted write leaves nothing behind."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_mnist(data_dir: str | os.PathLike | None = None, *, download: bool = True,
               mirrors=MNIST_MIRRORS, timeout: float = 10.0):
    """Load the raw MNIST arrays, downloading missing files when a network is available.

    Each file is looked for in ``data_dir``, then ``$MNIST_DATA_DIR``, then
    ``default_data_dir()``, and taken from the first folder that has it. A missing file is
    downloaded into the first of those folders, trying each mirror in turn. Every file, found or
    downloaded, is verified by the SHA-256 of its decompressed bytes.

    Returns
    -------
    X_train : (60000, 28, 28) uint8
    y_train : (60000,) uint8
    X_test : (10000, 28, 28) uint8
    y_test : (10000,) uint8

    Raises
    ------
    MNISTDataError
        A file is corrupt (naming it and what was expected), or files are missing and could not
        be downloaded (naming the files, the folders searched, each mirror's failure, and how to
        place the files by hand).
    """
    dirs = candidate_data_dirs(data_dir)
    arrays, missing, failures = {}, [], []
    for name in MNIST_FILES:
        path = next((d / name for d in dirs if (d / name).is_file()), None)
        if path is None:
            missing.append(name)
            continue
        try:
            blob = path.read_bytes()
        except OSError as err:
            raise MNISTDataError(f"{path}: cannot be read ({err}).") from None
        arrays[name] = _verify(_gunzip(blob, str(path)), name, str(path))
    if missing and download:
        for name in list(missing):
            array, tried = _download(name, dirs[0], mirrors, timeout)
            failures += tried
            if array is not None:
                arrays[name] = array
                missing.remove(name)
    if missing:
        raise MNISTDataError(_missing_message(missing, dirs, download, mirrors, failures))
    return tuple(arrays[name] for name in
                 ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                  "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"))


def _missing_message(missing, dirs, download, mirrors, failures) -> str:
    lines = [f"MNIST files missing: {', '.join(missing)}.", "Looked in, in this order:"]
    lines += [f"  - {d}" for d in dirs]
    if not download:
        lines.append("Downloading was switched off (download=False).")
    elif not mirrors:
        lines.append("No download mirrors were given.")
    else:
        lines.append("Tried to download them:")
        lines += [f"  - {f}" for f in failures]
    lines += [
        "To fix it, either connect to the internet and run this again, or copy the four .gz files",
        f"({', '.join(MNIST_FILES)}) from a classmate, your instructor or a USB stick into",
        f"  {dirs[0]}",
        f"or into any folder and set the environment variable {DATA_ENV_VAR} to that folder.",
    ]
    return "\n".join(lines)


def scale_pixels(images: np.ndarray, dtype=np.float32) -> np.ndarray:
    """Map uint8 pixels 0..255 to floats in [0, 1]. Returns a new array of ``dtype``."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise TypeError(f"scale_pixels expects uint8 pixels 0..255, got dtype {images.dtype}; "
                        "the images may already be scaled.")
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"scale_pixels needs a floating-point dtype, got {dtype}; an integer one "
                        "would round every pixel below 255 down to 0.")
    out = np.empty(images.shape, dtype=dtype)
    np.divide(images, 255, out=out, dtype=dtype)  # correctly rounded, the same as images / 255
    return out


def flatten_images(images: np.ndarray) -> np.ndarray:
    """(N, 28, 28) -> (N, 784): one row of pixels per image (a view where possible)."""
    images = np.asarray(images)
    if images.ndim < 2:
        raise ValueError(f"flatten_images expects a batch of images (N, H, W), got shape "
                         f"{images.shape}.")
    return images.reshape(images.shape[0], math.prod(images.shape[1:]))


def _check_labels(y, num_classes: int, name: str = "y", n: int | None = None) -> np.ndarray:
    """Validate integer class labels of shape (N,) in [0, num_classes)."""
    y = np.asarray(y)
    if y.ndim != 1:
        hint = " (one-hot? use y.argmax(axis=1))" if y.ndim == 2 else ""
        raise ValueError(f"{name} must be integer labels of shape (N,), got shape {y.shape}{hint}.")
    if not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"{name} must hold integers, got dtype {y.dtype}; convert with "
                        f"{name}.astype(np.int64).")
    if n is not None and len(y) != n:
        raise ValueError(f"{name} has {len(y)} labels but there are {n} samples.")
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        bad = int(np.flatnonzero((y < 0) | (y >= num_classes))[0])
        raise ValueError(f"{name} must hold labels in [0, {num_classes}), got values from "
                         f"{y.min()} to {y.max()} (first bad one {y[bad]} at index {bad}).")
    return y


def one_hot(y, num_classes: int = 10, dtype=np.float32) -> np.ndarray:
    """Integer labels (N,) -> one-hot rows (N, num_classes), by indexing the identity matrix."""
    y = _check_labels(y, num_classes)
    return np.eye(num_classes, dtype=dtype)[y]


def train_val_split(X, y, n_val: int, *, rng):
    """Carve a random validation set of ``n_val`` samples out of (X, y).

    Returns ``X_train, y_train, X_val, y_val``; each part keeps the original order of its samples.
    """
    X, y = np.asarray(X), np.asarray(y)
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} samples but y has {len(y)}.")
    if isinstance(n_val, bool) or not isinstance(n_val, (int, np.integer)) \
            or not 0 < n_val < len(X):
        raise ValueError(f"n_val must be between 1 and {len(X) - 1}, got {n_val}.")
    perm = np.random.default_rng(rng).permutation(len(X))
    val_idx, train_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])
    return X[train_idx], y[train_idx], X[val_idx], y[val_idx]


class MNISTSplits(NamedTuple):
    """The series' standard split; images flattened to (N, 784) and scaled to [0, 1]."""
    X_train: np.ndarray  # (50000, 784)
    y_train: np.ndarray  # (50000,) int64
    X_val: np.ndarray    # (10000, 784)
    y_val: np.ndarray    # (10000,) int64
    X_test: np.ndarray   # (10000, 784), held out: touched once, at the very end
    y_test: np.ndarray   # (10000,) int64


def load_mnist_splits(data_dir=None, *, n_val: int = 10_000, seed: int = 0, dtype=np.float32,
                      download: bool = True) -> MNISTSplits:
    """Load MNIST as the series uses it: train / validation / test, flattened and scaled.

    The validation set is ``n_val`` images drawn from the 60,000 training images with
    ``np.random.default_rng(seed)``; the 10,000 test images stay apart.
    """
    X_train_full, y_train_full, X_test, y_test = load_mnist(data_dir, download=download)
    X_train, y_train, X_val, y_val = train_val_split(X_train_full, y_train_full, n_val, rng=seed)
    prep = lambda X: scale_pixels(flatten_images(X), dtype)  # noqa: E731
    lab = lambda y: y.astype(np.int64)  # noqa: E731
    return MNISTSplits(prep(X_train), lab(y_train), prep(X_val), lab(y_val),
                       prep(X_test), lab(y_test))


def iterate_minibatches(X, y, batch_size: int, *, rng=None, shuffle: bool = True):
    """Yield ``(X_batch, y_batch)`` pairs that cover every sample exactly once.

    With ``shuffle`` the order is one fresh permutation from ``rng`` per call (one call per
    epoch); the last batch holds the ``len(X) % batch_size`` leftover samples, if any. Bad
    arguments raise at the call, not at the first batch.
    """
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} samples but y has {len(y)}.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    if shuffle:
        if rng is None:
            raise ValueError("shuffle=True needs rng= (a seed or np.random.Generator).")
        order = np.random.default_rng(rng).permutation(len(X))
        return ((X[order[i:i + batch_size]], y[order[i:i + batch_size]])
                for i in range(0, len(X), batch_size))
    return ((X[i:i + batch_size], y[i:i + batch_size]) for i in range(0, len(X), batch_size))


# =================================================================================================
# Running a notebook (every notebook's setup cell)
# =================================================================================================

#: Environment variable that sets the seed of a run; the test command's second pass sets it.
SEED_ENV_VAR = "NN_SEED"
#: Environment variable that sets how many threads NumPy's BLAS may use in a notebook.
THREADS_ENV_VAR = "NN_BLAS_THREADS"


def _env_int(name: str, minimum: int) -> int | None:
    """The integer value of environment variable ``name``, or None when it is unset or empty."""
    text = os.environ.get(name, "").strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < minimum:
        raise ValueError(f"${name} must be an integer >= {minimum}, got {text!r}; unset it or "
                         f"set it to a number such as {minimum}.")
    return value


def series_seed(default: int = 0) -> int:
    """The seed of this run: ``$NN_SEED`` when set, else ``default``.

    Every notebook derives all of its randomness from this one number, one generator per section
    (``np.random.default_rng([SEED, k])``), so the test command can re-run the whole series under
    another seed without editing a notebook.
    """
    value = _env_int(SEED_ENV_VAR, 0)
    return default if value is None else value


def limit_blas_threads(n: int | None = None) -> int | None:
    """Limit the threads of NumPy's BLAS (the matrix products) in this process to ``n``.

    ``n=None`` takes ``$NN_BLAS_THREADS``, and leaves the BLAS as it is when that is unset too.
    Works in-process (through threadpoolctl), so it can be called in a running kernel. Returns the
    limit now in force, or None when nothing was changed.
    """
    if n is None:
        n = _env_int(THREADS_ENV_VAR, 1)
    elif isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer number of threads, got {n!r}.")
    if n is None:
        return None
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=int(n), user_api="blas")
    return int(n)


class expect_error:
    """Context manager for a cell that shows an error on purpose: the block must raise one of
    ``types``; its type and message are printed (no traceback, so no file paths of this machine),
    and anything else, or nothing at all, fails the cell.

    >>> with nn.expect_error(ValueError):
    ...     nn.one_hot([3], num_classes=2)
    """

    def __init__(self, *types: type[BaseException]):
        if not types or not all(isinstance(t, type) and issubclass(t, BaseException)
                                for t in types):
            raise TypeError(f"expect_error needs one or more exception classes, got {types!r}.")
        self.types = types

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        names = " or ".join(t.__name__ for t in self.types)
        if exc_type is None:
            raise AssertionError(f"expected {names}, but the block ran without an error.")
        if not issubclass(exc_type, self.types):
            return False  # an unexpected error propagates with its traceback
        print(f"{exc_type.__name__}: {exc}")
        return True


# =================================================================================================
# Plot style (set up in 01_data, used by every notebook)
# =================================================================================================

#: Okabe-Ito colours: distinguishable with the common colour-vision deficiencies.
SERIES_COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000",
                 "#F0E442")

#: Width x height in inches of a row of panels, sized for a projector.
FIGSIZE = (10, 4)

_STYLE = {
    "figure.figsize": FIGSIZE, "figure.dpi": 72, "savefig.dpi": 72,
    "figure.constrained_layout.use": True,
    "font.size": 14, "axes.titlesize": 16, "axes.labelsize": 14, "figure.titlesize": 17,
    "xtick.labelsize": 12, "ytick.labelsize": 12, "legend.fontsize": 12,
    "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False,
    "lines.linewidth": 2.2, "image.cmap": "gray_r",
}


def use_series_style() -> None:
    """Apply the series' plot style (large fonts, colour-blind-safe colours, projector size)."""
    import matplotlib as mpl
    from cycler import cycler

    mpl.rcParams.update(_STYLE)
    mpl.rcParams["axes.prop_cycle"] = cycler(color=SERIES_COLORS)


def _as_images(images) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim == 2 and images.shape[1] == 784:
        return images.reshape(-1, 28, 28)
    if images.ndim == 3:
        return images
    raise ValueError(f"expected images of shape (N, 28, 28) or (N, 784), got {images.shape}.")


def show_digits(images, labels=None, *, predicted=None, confidence=None, n_cols: int = 10,
                title: str | None = None, cell_inches: float = 1.0):
    """A grid of digits. With ``predicted``, each title reads ``pred 3 (97%) / true 8`` in red
    where the prediction is wrong.

    Parameters
    ----------
    images : (N, 28, 28) or (N, 784)
    labels, predicted : (N,) ints, optional
    confidence : (N,) floats in [0, 1], optional, the probability given to ``predicted``

    Returns ``fig, axes``; end the cell with ``plt.show()``.
    """
    import matplotlib.pyplot as plt

    images = _as_images(images)
    n = len(images)
    n_cols = min(n_cols, n)
    n_rows = -(-n // n_cols)
    extra = 0.45 if predicted is not None else 0.25
    fig, axes = plt.subplots(n_rows, n_cols, squeeze=False,
                             figsize=(n_cols * cell_inches, n_rows * (cell_inches + extra) + 0.6))
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(images[i], cmap="gray_r", vmin=0, vmax=images.max() or 1)
        if predicted is not None:
            text = f"pred {predicted[i]}"
            if confidence is not None:
                text += f" ({100 * confidence[i]:.0f}%)"
            wrong = labels is not None and predicted[i] != labels[i]
            if labels is not None:
                text += f"\ntrue {labels[i]}"
            ax.set_title(text, fontsize=11, color=SERIES_COLORS[1] if wrong else "black")
        elif labels is not None:
            ax.set_title(str(labels[i]), fontsize=13)
    if title:
        fig.suptitle(title)
    return fig, axes


def plot_history(history: dict, title: str | None = None):
    """Loss and accuracy per epoch, train and validation, side by side. Returns ``fig, axes``."""
    import matplotlib.pyplot as plt

    epochs = history["epoch"]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=FIGSIZE)
    ax_loss.plot(epochs, history["train_loss"], label="train (running mean)")
    ax_loss.plot(epochs, history["val_loss"], label="validation")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", title="Loss")
    ax_acc.plot(epochs, 100 * np.asarray(history["train_acc"]), label="train (running mean)")
    ax_acc.plot(epochs, 100 * np.asarray(history["val_acc"]), label="validation")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy")
    for ax in (ax_loss, ax_acc):
        ax.legend()
    if title:
        fig.suptitle(title)
    return fig, (ax_loss, ax_acc)


def plot_confusion_matrix(cm: np.ndarray, title: str = "Confusion matrix"):
    """Heat map of a (C, C) confusion matrix (rows: true class, columns: predicted), with the
    counts written in. Returns ``fig, ax``."""
    import matplotlib.pyplot as plt

    cm = np.asarray(cm)
    fig, ax = plt.subplots(figsize=(7.5, 6.5))
    shown = np.log1p(cm)  # log scale so the few errors stay visible beside the large diagonal
    im = ax.imshow(shown, cmap="Blues")
    for (i, j), count in np.ndenumerate(cm):
        if count:
            ax.text(j, i, str(count), ha="center", va="center", fontsize=10,
                    color="white" if shown[i, j] > 0.6 * shown.max() else "black")
    ax.set(xticks=range(len(cm)), yticks=range(len(cm)), xlabel="predicted digit",
           ylabel="true digit", title=title)
    ax.grid(False)
    fig.colorbar(im, ax=ax, label="log(1 + count)")
    return fig, ax


def show_weights(W: np.ndarray, n: int = 16, n_cols: int = 8, title: str | None = None):
    """First-layer weights as 28x28 images: column ``j`` of ``W`` (784, H) is what hidden unit
    ``j`` looks for. Blue is positive, red negative, on a scale symmetric around 0."""
    import matplotlib.pyplot as plt

    W = np.asarray(W)
    if W.ndim != 2 or W.shape[0] != 784:
        raise ValueError(f"expected first-layer weights of shape (784, H), got {W.shape}.")
    n = min(n, W.shape[1])
    n_rows = -(-n // n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, squeeze=False,
                             figsize=(1.25 * n_cols, 1.25 * n_rows + 0.6))
    for j, ax in enumerate(axes.flat):
        ax.axis("off")
        if j < n:
            w = W[:, j].reshape(28, 28)
            lim = np.abs(w).max() or 1.0
            ax.imshow(w, cmap="RdBu", vmin=-lim, vmax=lim)
    if title:
        fig.suptitle(title)
    return fig, axes


# =================================================================================================
# Layers and activations (taught in 03_forward, backward passes in 04_backprop)
# =================================================================================================

def dense_forward(X: np.ndarray, W: np.ndarray, b: np.ndarray):
    """Affine layer ``Z = X @ W + b``.

    X: (N, D), W: (D, M), b: (M,) -> Z: (N, M); cache = (X, W).
    """
    if X.ndim != 2 or W.ndim != 2 or b.ndim != 1:
        raise ValueError(f"dense_forward expects X (N, D), W (D, M), b (M,); got X {X.shape}, "
                         f"W {W.shape}, b {b.shape}.")
    if X.shape[1] != W.shape[0] or W.shape[1] != b.shape[0]:
        raise ValueError(f"dense_forward: X {X.shape} @ W {W.shape} + b {b.shape} do not fit; "
                         f"X needs {W.shape[0]} features and b {W.shape[1]} entries.")
    return X @ W + b, (X, W)


def dense_backward(dZ: np.ndarray, cache, need_dX: bool = True):
    """Backward pass of ``dense_forward``.

    dZ: (N, M) -> dX: (N, D) (``None`` when ``need_dX`` is False, which saves the largest
    matrix product of the first layer), dW: (D, M), db: (M,).
    """
    X, W = cache
    dW = X.T @ dZ
    db = dZ.sum(axis=0)
    dX = dZ @ W.T if need_dX else None
    return dX, dW, db


def relu_forward(Z):
    """ReLU ``max(0, z)``; cache = Z."""
    return np.maximum(Z, 0), Z


def relu_backward(dA, Z):
    """dZ = dA where z > 0, else 0 (the derivative at exactly 0 is taken as 0)."""
    return dA * (Z > 0)


def leaky_relu_forward(Z, alpha: float = 0.01):
    """Leaky ReLU ``z`` for z > 0, ``alpha * z`` otherwise; cache = (Z, alpha)."""
    return np.where(Z > 0, Z, alpha * Z), (Z, alpha)


def leaky_relu_backward(dA, cache):
    Z, alpha = cache
    return np.where(Z > 0, dA, alpha * dA)


def sigmoid_forward(Z):
    """Logistic sigmoid ``1 / (1 + exp(-z))``, computed as ``exp(-log(1 + exp(-z)))`` with
    ``np.logaddexp`` so that no ``exp`` overflows and tiny values stay accurate; cache = A."""
    A = np.exp(-np.logaddexp(0, -Z))
    return A, A


def sigmoid_backward(dA, A):
    return dA * A * (1 - A)


def tanh_forward(Z):
    A = np.tanh(Z)
    return A, A


def tanh_backward(dA, A):
    return dA * (1 - A * A)


#: Activation name -> (forward, backward).
ACTIVATIONS = {
    "relu": (relu_forward, relu_backward),
    "leaky_relu": (leaky_relu_forward, leaky_relu_backward),
    "sigmoid": (sigmoid_forward, sigmoid_backward),
    "tanh": (tanh_forward, tanh_backward),
}


def _check_activation(name: str) -> None:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}.")


def activation_forward(Z, name: str):
    """Apply the activation called ``name``; returns A (same shape as Z) and a cache."""
    _check_activation(name)
    A, cache = ACTIVATIONS[name][0](Z)
    return A, (name, cache)


def activation_backward(dA, cache):
    name, inner = cache
    return ACTIVATIONS[name][1](dA, inner)


# =================================================================================================
# Softmax and cross-entropy (taught in 03_forward, gradient in 04_backprop)
# =================================================================================================

def _check_logits(logits) -> None:
    if logits.ndim != 2:
        raise ValueError(f"logits must have shape (N, C), got {logits.shape}.")
    if not np.isfinite(logits).all():
        raise ValueError("logits contain NaN or inf; the forward pass has blown up (a learning "
                         "rate that is too large, or inputs that were not scaled to [0, 1]).")


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax (N, C) -> (N, C). Subtracting each row's own maximum keeps every
    ``exp`` in (0, 1] without changing the result."""
    _check_logits(logits)
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise ``log(softmax(logits))`` (N, C), without ever taking the log of 0."""
    _check_logits(logits)
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def cross_entropy(logits: np.ndarray, y) -> float:
    """Mean cross-entropy of integer labels ``y`` (N,) under logits (N, C)."""
    _check_logits(logits)
    y = _check_labels(y, logits.shape[1], n=len(logits))
    return float(-log_softmax(logits)[np.arange(len(y)), y].mean())


def softmax_cross_entropy(logits: np.ndarray, y):
    """Mean cross-entropy and its gradient with respect to the logits.

    logits: (N, C), y: (N,) ints -> loss: float, dlogits: (N, C) = (softmax - one_hot) / N.
    """
    _check_logits(logits)
    n, c = logits.shape
    y = _check_labels(y, c, n=n)
    log_probs = log_softmax(logits)
    loss = float(-log_probs[np.arange(n), y].mean())
    dlogits = np.exp(log_probs)
    dlogits[np.arange(n), y] -= 1
    dlogits /= n
    return loss, dlogits


# =================================================================================================
# Initialisation (taught in 02_initialization)
# =================================================================================================

#: Scheme -> standard deviation of W as a function of (fan_in, fan_out, scale).
INIT_SCHEMES = {
    "zeros": lambda fan_in, fan_out, scale: 0.0,
    "normal": lambda fan_in, fan_out, scale: scale,  # one constant scale for every layer
    "lecun": lambda fan_in, fan_out, scale: math.sqrt(1.0 / fan_in),
    "xavier": lambda fan_in, fan_out, scale: math.sqrt(2.0 / (fan_in + fan_out)),
    "he": lambda fan_in, fan_out, scale: math.sqrt(2.0 / fan_in),
}


def init_weights(fan_in: int, fan_out: int, scheme: str = "he", *, rng, dtype=np.float32,
                 scale: float = 0.01) -> np.ndarray:
    """Draw W (fan_in, fan_out) from N(0, std^2), std given by ``scheme``:

    zeros 0; normal ``scale``; lecun sqrt(1/fan_in); xavier (Glorot) sqrt(2/(fan_in+fan_out));
    he sqrt(2/fan_in).
    """
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"unknown init scheme {scheme!r}; choose one of {sorted(INIT_SCHEMES)}.")
    if not (fan_in >= 1 and fan_out >= 1):
        raise ValueError(f"fan_in and fan_out must be positive, got {fan_in} and {fan_out}.")
    std = INIT_SCHEMES[scheme](fan_in, fan_out, scale)
    if std == 0.0:
        return np.zeros((fan_in, fan_out), dtype=dtype)
    rng = np.random.default_rng(rng)
    return (rng.standard_normal((fan_in, fan_out)) * std).astype(dtype)


def init_mlp(layer_sizes, init: str = "he", *, rng, dtype=np.float32, scale: float = 0.01):
    """Parameters of an MLP, e.g. ``layer_sizes=[784, 128, 10]``.

    Returns ``{"W1": (784, 128), "b1": (128,), "W2": (128, 10), "b2": (10,)}``; biases start at 0.
    """
    sizes = list(layer_sizes)
    if len(sizes) < 2 or any(not isinstance(s, (int, np.integer)) or s < 1 for s in sizes):
        raise ValueError(f"layer_sizes must be two or more positive ints such as [784, 128, 10], "
                         f"got {layer_sizes!r}.")
    rng = np.random.default_rng(rng)
    params = {}
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        params[f"W{i}"] = init_weights(fan_in, fan_out, init, rng=rng, dtype=dtype, scale=scale)
        params[f"b{i}"] = np.zeros(fan_out, dtype=dtype)
    return params


# =================================================================================================
# The model (forward in 03_forward, backward in 04_backprop)
# =================================================================================================

def num_layers(params: dict) -> int:
    """Number of dense layers in ``params``, after checking the names and shapes fit together."""
    names = set(params)
    n = sum(1 for k in names if re.fullmatch(r"W\d+", k))
    expected = {f"{p}{i}" for i in range(1, n + 1) for p in "Wb"}
    if n == 0 or names != expected:
        raise ValueError(f"params must be named W1, b1, ..., Wn, bn; got {sorted(names)}.")
    for i in range(1, n + 1):
        W, b = params[f"W{i}"], params[f"b{i}"]
        if W.ndim != 2 or b.shape != (W.shape[1],):
            raise ValueError(f"W{i} {W.shape} and b{i} {b.shape} do not fit: need W (fan_in, "
                             f"fan_out) and b (fan_out,).")
        if i > 1 and params[f"W{i - 1}"].shape[1] != W.shape[0]:
            raise ValueError(f"W{i - 1} {params[f'W{i - 1}'].shape} is followed by W{i} "
                             f"{W.shape}: fan_out of one layer must be fan_in of the next.")
    return n


def mlp_forward(params: dict, X: np.ndarray, activation: str = "relu"):
    """Forward pass: (dense, activation) for each hidden layer, then a final dense layer.

    X: (N, D) -> logits: (N, C), caches: one ``(dense_cache, activation_cache)`` per layer.
    """
    _check_activation(activation)
    L = num_layers(params)
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] != params["W1"].shape[0]:
        hint = "; flatten the images first" if X.ndim == 3 else ""
        raise ValueError(f"expected X with {params['W1'].shape[0]} features, shape (N, "
                         f"{params['W1'].shape[0]}), got shape {X.shape}{hint}.")
    A, caches = X, []
    for i in range(1, L + 1):
        Z, dense_cache = dense_forward(A, params[f"W{i}"], params[f"b{i}"])
        if i < L:
            A, act_cache = activation_forward(Z, activation)
        else:
            A, act_cache = Z, None
        caches.append((dense_cache, act_cache))
    return A, caches


def mlp_backward(dlogits: np.ndarray, caches) -> dict:
    """Backward pass of ``mlp_forward``: dlogits (N, C) -> grads with the names and shapes of
    params."""
    grads, dA = {}, dlogits
    for i in range(len(caches), 0, -1):
        dense_cache, act_cache = caches[i - 1]
        dZ = dA if act_cache is None else activation_backward(dA, act_cache)
        dA, grads[f"W{i}"], grads[f"b{i}"] = dense_backward(dZ, dense_cache, need_dX=i > 1)
    return grads


def mlp_loss_and_grads(params: dict, X, y, activation: str = "relu"):
    """Mean cross-entropy of the MLP on (X, y) and the gradient of every parameter."""
    logits, caches = mlp_forward(params, X, activation)
    loss, dlogits = softmax_cross_entropy(logits, y)
    return loss, mlp_backward(dlogits, caches)


# =================================================================================================
# Gradient checking (taught in 04_backprop)
# =================================================================================================

def numerical_gradient(f: Callable[[], float], x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Centred finite differences ``(f(x + h e_i) - f(x - h e_i)) / 2h`` for every entry of x.

    ``f`` takes no argument and reads ``x``, which is nudged in place and restored. Use float64:
    in float32 the rounding error of f swamps the difference.
    """
    if x.dtype != np.float64:
        raise TypeError(f"numerical_gradient needs float64 arrays, got {x.dtype}: float32 "
                        "rounding makes finite differences useless. Use x.astype(np.float64).")
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + h
        f_plus = f()
        x[idx] = old - h
        f_minus = f()
        x[idx] = old
        grad[idx] = (f_plus - f_minus) / (2 * h)
    return grad


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """``||a - b|| / (||a|| + ||b||)``: 0 when equal, about 1 when unrelated; below 1e-7 in
    float64 means a gradient is right."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"relative_error needs equal shapes, got {a.shape} and {b.shape}.")
    denom = np.linalg.norm(a) + np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / denom) if denom > 0 else 0.0


def check_mlp_gradients(params: dict, X, y, activation: str = "relu", h: float = 1e-5) -> dict:
    """Relative error between backprop and finite differences for every parameter (float64)."""
    params = {k: np.array(v, dtype=np.float64) for k, v in params.items()}
    X = np.asarray(X, dtype=np.float64)
    _, grads = mlp_loss_and_grads(params, X, y, activation)
    loss = lambda: mlp_loss_and_grads(params, X, y, activation)[0]  # noqa: E731
    return {k: relative_error(grads[k], numerical_gradient(loss, params[k], h)) for k in params}


# =================================================================================================
# Optimizers and learning-rate schedules (taught in 06_optimizers)
# =================================================================================================

class Optimizer:
    """Base class: ``step(params, grads)`` updates every array of ``params`` in place.

    State (velocities, moment estimates) is kept per parameter name, so one optimizer serves one
    model. ``lr`` may be changed between steps (that is what a schedule does).
    """

    def __init__(self, lr: float):
        if not lr > 0:
            raise ValueError(f"lr must be a positive number, got {lr!r}.")
        self.lr = float(lr)
        self.state: dict = {}
        self.t = 0

    def step(self, params: dict, grads: dict) -> None:
        if params.keys() != grads.keys():
            raise ValueError(f"params and grads must have the same names, got {sorted(params)} "
                             f"and {sorted(grads)}.")
        for name, p in params.items():
            if grads[name].shape != p.shape:
                raise ValueError(f"grad {name} has shape {grads[name].shape}, param has "
                                 f"{p.shape}.")
        self.t += 1  # only once every check has passed: a refused step changes nothing
        for name, p in params.items():
            self._update(name, p, grads[name])

    def _zeros(self, name, p, key="v"):
        """The state array ``key`` of parameter ``name``, created as zeros on first use."""
        state = self.state.get((name, key))
        if state is None:  # not setdefault: that would allocate a discarded array every step
            state = self.state[(name, key)] = np.zeros_like(p)
        return state

    def _update(self, name, p, g):
        raise NotImplementedError

    def __repr__(self):
        fields = ", ".join(f"{k}={v}" for k, v in vars(self).items() if k not in ("state", "t"))
        return f"{type(self).__name__}({fields})"


class SGD(Optimizer):
    """theta <- theta - lr * g"""

    def _update(self, name, p, g):
        p -= self.lr * g


class Momentum(Optimizer):
    """Classical (heavy-ball) momentum: v <- beta * v - lr * g;  theta <- theta + v.

    The velocity accumulates whole steps: with a constant gradient the step grows to
    ``lr / (1 - beta)``, ten times plain SGD's for beta = 0.9.
    """

    def __init__(self, lr: float, beta: float = 0.9):
        super().__init__(lr)
        self.beta = beta

    def _update(self, name, p, g):
        v = self._zeros(name, p)
        v *= self.beta
        v -= self.lr * g
        p += v


class EMAMomentum(Momentum):
    """Momentum as an exponential average of gradients (the form of source tutorial 000):
    v <- beta * v + (1 - beta) * g;  theta <- theta - lr * v.

    The same trajectory as ``Momentum`` with ``lr * (1 - beta)`` (for a constant lr), so its
    steps are ten times smaller for beta = 0.9 and its lr must be ten times larger.
    """

    def _update(self, name, p, g):
        v = self._zeros(name, p)
        v *= self.beta
        v += (1 - self.beta) * g
        p -= self.lr * v


class Nesterov(Momentum):
    """Nesterov momentum, evaluated at the current parameters:
    v <- beta * v - lr * g;  theta <- theta + beta * v - lr * g.

    The same as taking the gradient at the look-ahead point theta + beta * v, rewritten so the
    gradient is the one at the stored parameters.
    """

    def _update(self, name, p, g):
        v = self._zeros(name, p)
        v *= self.beta
        v -= self.lr * g
        p += self.beta * v - self.lr * g


class RMSProp(Optimizer):
    """s <- rho * s + (1 - rho) * g^2;  theta <- theta - lr * g / (sqrt(s) + eps)"""

    def __init__(self, lr: float = 1e-3, rho: float = 0.9, eps: float = 1e-8):
        super().__init__(lr)
        self.rho, self.eps = rho, eps

    def _update(self, name, p, g):
        s = self._zeros(name, p, "s")
        s *= self.rho
        s += (1 - self.rho) * g * g
        p -= self.lr * g / (np.sqrt(s) + self.eps)


class Adam(Optimizer):
    """m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;  m_hat = m / (1 - b1^t);
    v_hat = v / (1 - b2^t);  theta <- theta - lr m_hat / (sqrt(v_hat) + eps)

    The bias correction undoes the pull of the zero-initialised averages towards 0 in the first
    steps.
    """

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8):
        super().__init__(lr)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps

    def _update(self, name, p, g):
        m, v = self._zeros(name, p, "m"), self._zeros(name, p, "v")
        m *= self.beta1
        m += (1 - self.beta1) * g
        v *= self.beta2
        v += (1 - self.beta2) * g * g
        m_hat_scale = 1.0 / (1 - self.beta1 ** self.t)
        v_hat_scale = 1.0 / (1 - self.beta2 ** self.t)
        p -= (self.lr * m_hat_scale) * m / (np.sqrt(v * v_hat_scale) + self.eps)


#: Optimizer name -> class, for building one from a string.
OPTIMIZERS = {"sgd": SGD, "momentum": Momentum, "ema_momentum": EMAMomentum,
              "nesterov": Nesterov, "rmsprop": RMSProp, "adam": Adam}


def constant_lr(lr0: float) -> Callable[[int], float]:
    """Schedule that keeps ``lr0`` for every epoch."""
    return lambda epoch: lr0


def step_decay(lr0: float, drop: float = 0.5, every: int = 5) -> Callable[[int], float]:
    """lr(epoch) = lr0 * drop ** (epoch // every): multiply by ``drop`` every ``every`` epochs."""
    if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
        raise ValueError(f"every must be a positive integer, got {every!r}.")
    return lambda epoch: lr0 * drop ** (epoch // every)


def cosine_decay(lr0: float, total: int, lr_min: float = 0.0) -> Callable[[int], float]:
    """lr(epoch) = lr_min + (lr0 - lr_min) * (1 + cos(pi * epoch / total)) / 2, from lr0 at
    epoch 0 down to lr_min at epoch ``total`` (and after)."""
    if total < 1:
        raise ValueError(f"total must be at least 1, got {total}.")
    return lambda epoch: lr_min + 0.5 * (lr0 - lr_min) * (1 + math.cos(math.pi * min(epoch, total)
                                                                        / total))


# =================================================================================================
# Training (taught in 05_training)
# =================================================================================================

class TrainingDivergedError(FloatingPointError):
    """The loss became NaN or inf during training. ``history`` holds the epochs completed
    before it happened (the same dict ``fit`` returns), so a sweep can still plot them."""

    def __init__(self, message: str, history: dict | None = None):
        super().__init__(message)
        self.history = history if history is not None else {}


def fit(params: dict, X_train, y_train, X_val, y_val, *, optimizer: Optimizer, epochs: int,
        batch_size: int = 128, activation: str = "relu", rng, schedule=None,
        verbose: bool = True, callback=None) -> dict:
    """Train ``params`` in place with mini-batches and return the history.

    Each epoch visits every training sample once in a fresh shuffled order, sets
    ``optimizer.lr = schedule(epoch)`` first when a schedule is given, and ends with an
    evaluation on the validation set. ``callback(epoch, params)``, if given, runs after each
    epoch (epoch counted from 1) and its time is in neither ``train_seconds`` nor
    ``eval_seconds``: use it to record anything extra, such as the test accuracy in a benchmark.

    Returns
    -------
    history : dict of lists, one entry per epoch: ``epoch`` (1, 2, ...), ``train_loss`` and
        ``train_acc`` (running means over the epoch's batches, measured before each update),
        ``val_loss``, ``val_acc``, ``lr``, ``train_seconds`` and ``eval_seconds``.

    Raises
    ------
    TrainingDivergedError
        When the loss becomes NaN or inf, with the epoch, batch and advice; its ``history``
        attribute holds the epochs completed before.
    """
    _check_activation(activation)
    y_train = _check_labels(y_train, params[f"W{num_layers(params)}"].shape[1], "y_train",
                            n=len(X_train))
    rng = np.random.default_rng(rng)
    history = {k: [] for k in ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr",
                               "train_seconds", "eval_seconds")}
    for epoch in range(epochs):
        if schedule is not None:
            # A NumPy-scalar lr would promote float32 updates to float64 under NumPy 2.
            optimizer.lr = float(schedule(epoch))
        start = time.perf_counter()
        loss_sum = correct = 0.0
        batches = iterate_minibatches(X_train, y_train, batch_size, rng=rng)
        for batch, (X_batch, y_batch) in enumerate(batches):
            logits, caches = mlp_forward(params, X_batch, activation)
            if not np.isfinite(logits).all():
                raise TrainingDivergedError(_diverged_message(epoch, batch, optimizer), history)
            loss, dlogits = softmax_cross_entropy(logits, y_batch)
            optimizer.step(params, mlp_backward(dlogits, caches))
            loss_sum += loss * len(y_batch)
            correct += np.count_nonzero(logits.argmax(axis=1) == y_batch)
        train_seconds = time.perf_counter() - start
        start = time.perf_counter()
        val_logits = predict_logits(params, X_val, activation)
        if not np.isfinite(val_logits).all():  # the epoch's last update blew up
            raise TrainingDivergedError(_diverged_message(epoch, batch, optimizer), history)
        val_loss = cross_entropy(val_logits, np.asarray(y_val))
        val_acc = accuracy(np.asarray(y_val), val_logits.argmax(axis=1))
        _append(history, epoch=epoch + 1, train_loss=loss_sum / len(X_train),
                train_acc=correct / len(X_train), val_loss=val_loss, val_acc=val_acc,
                lr=optimizer.lr, train_seconds=train_seconds,
                eval_seconds=time.perf_counter() - start)
        if callback is not None:
            callback(epoch + 1, params)
        if verbose:
            print(f"epoch {epoch + 1:3d}/{epochs}  train loss {loss_sum / len(X_train):.4f}  "
                  f"val loss {val_loss:.4f}  val acc {100 * val_acc:.2f}%  "
                  f"({train_seconds:.1f} s)", file=sys.stdout, flush=True)
    return history


def _append(history: dict, **values) -> None:
    for key, value in values.items():
        history[key].append(value)


def _diverged_message(epoch: int, batch: int, optimizer: Optimizer) -> str:
    return (f"the loss became NaN or inf at epoch {epoch + 1}, batch {batch + 1}, with "
            f"{optimizer!r}. The updates are too large: lower the learning rate (try "
            f"lr={optimizer.lr / 10:g}), check that the inputs are scaled to [0, 1], and "
            "re-initialise the parameters before training again (they now hold huge, inf or NaN "
            "values).")


# =================================================================================================
# Evaluation (taught in 05_training)
# =================================================================================================

def predict_logits(params: dict, X, activation: str = "relu", batch_size: int = 10_000):
    """Logits (N, C) for X (N, D), computed in batches so memory stays small."""
    parts = [mlp_forward(params, X[i:i + batch_size], activation)[0]
             for i in range(0, len(X), batch_size)]
    return np.concatenate(parts)


def predict(params: dict, X, activation: str = "relu") -> np.ndarray:
    """Predicted class (N,) for each row of X (N, D)."""
    return predict_logits(params, X, activation).argmax(axis=1)


def accuracy(y_true, y_pred) -> float:
    """Share of equal labels, in [0, 1]."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"accuracy compares two label vectors of the same shape (N,), got "
                         f"{y_true.shape} and {y_pred.shape}.")
    return float(np.mean(y_true == y_pred))


def evaluate(params: dict, X, y, activation: str = "relu"):
    """Mean cross-entropy and accuracy of the model on (X, y)."""
    logits = predict_logits(params, X, activation)
    y = np.asarray(y)
    return cross_entropy(logits, y), accuracy(y, logits.argmax(axis=1))


def confusion_matrix(y_true, y_pred, num_classes: int = 10) -> np.ndarray:
    """Counts (C, C): entry [i, j] is how many samples of class i were predicted as j."""
    y_true = _check_labels(y_true, num_classes, "y_true")
    y_pred = _check_labels(y_pred, num_classes, "y_pred", n=len(y_true))
    counts = np.bincount(y_true.astype(np.int64) * num_classes + y_pred,
                         minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


# =================================================================================================
# Saving and loading parameters (taught in 05_training)
# =================================================================================================

def save_params(path, params: dict) -> Path:
    """Save ``params`` to ``path`` as an ``.npz`` archive, atomically (temporary file in the same
    folder, then rename), so an interrupted save never leaves a broken file."""
    num_layers(params)
    path = Path(path)
    arrays = {k: np.asarray(v) for k, v in params.items()}
    _write_atomically(path, lambda f: np.savez(f, **arrays))
    return path


def load_params(path, layer_sizes=None) -> dict:
    """Load parameters saved by ``save_params``, checking names, shapes and dtypes.

    With ``layer_sizes`` (e.g. ``[784, 128, 10]``) the shapes must match that architecture.
    Never unpickles: object arrays are refused.
    """
    path = Path(path)
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):  # an .npy file holds one array
            raise ValueError("a single array, not an .npz archive of named arrays")
        with archive:
            params = {k: archive[k] for k in archive.files}
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file; save the model first with "
                                "save_params(path, params).") from None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        reason = ("it holds pickled Python objects, which are never loaded because unpickling "
                  "can run arbitrary code" if "pickle" in str(err) else str(err))
        raise ValueError(f"{path}: not a readable parameter archive (expected an .npz file of "
                         f"named arrays written by save_params): {reason}.") from None
    try:
        L = num_layers(params)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    for name, value in params.items():
        if value.dtype not in (np.float32, np.float64):
            raise ValueError(f"{path}: {name} has dtype {value.dtype}, expected float32 or "
                             "float64.")
    if layer_sizes is not None:
        sizes = [params["W1"].shape[0]] + [params[f"W{i}"].shape[1] for i in range(1, L + 1)]
        if sizes != list(layer_sizes):
            raise ValueError(f"{path}: holds a network of layer sizes {sizes}, expected "
                             f"{list(layer_sizes)}.")
    return params


def count_params(params: dict) -> int:
    """Total number of scalars in ``params``."""
    return int(sum(np.asarray(v).size for v in params.values()))


# =================================================================================================
# Exercise checks (every notebook's exercises)
# =================================================================================================

def check_exercise(name: str, got, expected, *, rtol: float = 1e-5, atol: float = 1e-8,
                   hint: str = "") -> None:
    """Compare an exercise answer with the expected value: print ``Correct: {name}`` when they
    agree, raise ``AssertionError`` saying what differs (and ``hint``) when they do not.

    Strict about types, lenient about rounding:

    - a number must arrive as a number of the same kind: a str never passes, a bool is not an
      int, an int is not a float and a float is not an int (NumPy integers and floats count as
      ints and floats);
    - an expected NumPy array needs an array of the same shape and dtype (floats and bools
      exactly, integers of any width); an expected NumPy scalar needs its dtype too;
    - floats agree within ``rtol`` (relative to the expected value) and ``atol``, as in
      ``np.isclose``, also inside arrays, lists, tuples and dicts; NaN agrees with NaN at the same
      place;
    - lists and tuples are compared item by item, dicts key by key, recursively; a list where a
      tuple is expected (or the other way round) is reported as such.

    The message names what is wrong (type, shape, dtype, which entries, by roughly how much) but
    never prints the expected value, so it cannot simply be typed in.
    """
    for label, tolerance in (("rtol", rtol), ("atol", atol)):
        if not isinstance(tolerance, (int, float)) or isinstance(tolerance, bool) or tolerance < 0:
            raise ValueError(f"{label} must be a number >= 0, got {tolerance!r}.")
    problem = _answer_difference(got, expected, rtol, atol)
    if problem is not None:
        raise AssertionError(f"{name}: {problem}" + (f"\nHint: {hint}" if hint else ""))
    print(f"Correct: {name}")


def _answer_difference(got, expected, rtol: float, atol: float) -> str | None:
    """What is wrong with ``got`` as an answer that should equal ``expected``; None if nothing."""
    if got is None and expected is not None:
        return ("the answer is None: replace None with your answer, or, if a function computes "
                "it, did the function forget to `return` its result?")
    if isinstance(expected, dict):
        return _dict_difference(got, expected, rtol, atol)
    if isinstance(expected, (list, tuple)):
        return _sequence_difference(got, expected, rtol, atol)
    if isinstance(expected, np.ndarray):
        return _array_difference(got, expected, rtol, atol)
    if isinstance(expected, (int, float, complex, np.number, np.bool_)):
        return _number_difference(got, expected, rtol, atol)
    if isinstance(expected, str):
        return _text_difference(got, expected)
    if type(got) is not type(expected):
        return f"expected {_kind(expected)}, got {_kind(got)}."
    try:
        same = bool(got == expected)
    except Exception as err:  # noqa: BLE001 - any comparison failure is the answer's problem
        return f"it cannot be compared with the expected value ({type(err).__name__})."
    return None if same else "it differs from the expected value."


def _kind(value) -> str:
    """A short description of a value's type, for messages: 'an int', 'a NumPy float32 scalar'."""
    if value is None:
        return "None"
    if isinstance(value, (bool, np.bool_)):
        return "a bool"
    if isinstance(value, np.ndarray):
        return f"a NumPy array of shape {value.shape} and dtype {value.dtype}"
    if isinstance(value, np.generic):
        return f"a NumPy {value.dtype} scalar"
    names = {int: "an int", float: "a float", complex: "a complex number", str: "a str",
             list: "a list", tuple: "a tuple", dict: "a dict"}
    for kind, words in names.items():
        if isinstance(value, kind):
            return words
    return f"a {type(value).__name__}"


def _is_integer(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _number_difference(got, expected, rtol: float, atol: float) -> str | None:
    """Compare two scalars: their kinds first (bool, integer, float, dtype), then their values."""
    if isinstance(expected, (bool, np.bool_)):
        if not isinstance(got, (bool, np.bool_)):
            return f"expected True or False (a bool), got {_kind(got)}."
        return None if bool(got) == bool(expected) else "the truth value is wrong."
    wanted = _number_words(expected)
    if isinstance(got, np.ndarray):
        extra = "; take its value with float(...) or .item()" if got.size == 1 else ""
        return f"expected {wanted}, got {_kind(got)}{extra}."
    if isinstance(got, (bool, np.bool_)):
        return f"expected {wanted}, got a bool: True and False are not numbers here."
    if not isinstance(got, (int, float, complex, np.number)):
        extra = "; compute the number instead of writing it as text" if isinstance(got, str) else ""
        return f"expected {wanted}, got {_kind(got)}{extra}."
    problem = _number_kind_problem(got, expected)
    if problem is not None:
        return problem
    if _is_integer(expected):
        if int(got) == int(expected):
            return None
        return "it is too large." if got > expected else "it is too small."
    if np.isclose(got, expected, rtol=rtol, atol=atol, equal_nan=True):
        return None
    if isinstance(expected, (complex, np.complexfloating)):
        return "it differs from the expected value."
    return _miss(float(got), float(expected))


def _number_words(expected) -> str:
    if _is_integer(expected):
        return "an integer"
    if isinstance(expected, np.generic):
        return f"a NumPy {expected.dtype} scalar"
    return "a complex number" if isinstance(expected, complex) else "a float"


def _number_kind_problem(got, expected) -> str | None:
    """Why ``got`` is the wrong kind of number for ``expected`` (both plain numbers), or None."""
    if _is_integer(expected):
        if _is_integer(got):
            return None
        return (f"expected an integer, got {_kind(got)}; count with integers (// or int(...)), "
                "not with floats.")
    if _is_integer(got):
        return (f"expected {_number_words(expected)}, got {_kind(got)}: an int does not pass for a "
                "float, return the float your computation gives.")
    if isinstance(got, (complex, np.complexfloating)) and not isinstance(
            expected, (complex, np.complexfloating)):
        return f"expected a real number, got {_kind(got)}."
    if isinstance(expected, np.generic):
        got_dtype = got.dtype if isinstance(got, np.generic) else np.dtype(type(got))
        if got_dtype != expected.dtype:
            where = "a Python float (float64)" if not isinstance(got, np.generic) else _kind(got)
            return (f"expected a NumPy {expected.dtype} scalar, got {where}; keep the computation "
                    f"in {expected.dtype}.")
    return None


def _miss(got: float, expected: float) -> str:
    """How a float misses the expected one, in words that do not give the expected value away."""
    if math.isnan(got):
        return "the answer is NaN (not a number): look for 0/0, inf - inf or the log of a negative."
    if math.isnan(expected):
        return "expected NaN (not a number) here."
    if math.isinf(got):
        return "the answer is infinite: an overflow, or a division by zero?"
    if math.isinf(expected):
        return "expected an infinite value here."
    if expected == 0:
        return f"it should be much closer to zero (it is too {'large' if got > 0 else 'small'})."
    if got == 0:
        return "it is zero, and should not be."
    if (got > 0) != (expected > 0):
        if math.isclose(abs(got), abs(expected), rel_tol=1e-3):
            return "its sign is flipped (its size is right)."
        return "it has the wrong sign."
    size = "" if expected > 0 else "in size "
    direction = "too large" if abs(got) > abs(expected) else "too small"
    factor = max(got / expected, expected / got)
    if factor >= 2:
        return f"it is {direction} {size}by a factor of about {float(f'{factor:.1g}'):g}."
    relative = abs(got - expected) / abs(expected)
    if relative < 0.05:
        return f"it is slightly {direction} {size}(by less than 5%)."
    return f"it is {direction} {size}by about {max(10, round(relative * 10) * 10)}%."


def _array_difference(got, expected: np.ndarray, rtol: float, atol: float) -> str | None:
    """Compare with an expected array: type, shape, dtype, then the entries."""
    if isinstance(got, np.generic) and expected.ndim == 0:
        got = np.asarray(got)
    if not isinstance(got, np.ndarray):
        extra = "; build it with np.array(...)" if isinstance(got, (list, tuple)) else ""
        return f"expected a NumPy array of shape {expected.shape}, got {_kind(got)}{extra}."
    if got.shape != expected.shape:
        return _shape_problem(got.shape, expected.shape)
    problem = _dtype_problem(got.dtype, expected.dtype)
    if problem is not None:
        return problem
    if expected.dtype.kind in "fc":
        close = np.isclose(got, expected, rtol=rtol, atol=atol, equal_nan=True)
    else:
        close = np.asarray(got == expected, dtype=bool)
    if close.all():
        return None
    return _entries_problem(got, expected, ~close)


def _shape_problem(got: tuple, expected: tuple) -> str:
    message = f"expected shape {expected}, got shape {got}"
    if len(expected) == 2 and got == expected[::-1]:
        message += " (is it transposed?)"
    elif tuple(n for n in got if n != 1) == tuple(n for n in expected if n != 1):
        message += "; it has an extra or a missing axis of length 1 (keepdims, [:, 0], reshape)"
    return message + "."


def _dtype_words(dtype: np.dtype) -> str:
    kinds = {"b": "booleans", "i": "integers", "u": "integers", "f": "floats",
             "c": "complex numbers"}
    return f"{kinds[dtype.kind]} ({dtype})" if dtype.kind in kinds else f"dtype {dtype}"


def _dtype_problem(got: np.dtype, expected: np.dtype) -> str | None:
    """Integers of any width pass for integers; floats, complex and bools need the exact dtype."""
    if expected.kind in "iu":
        if got.kind in "iu":
            return None
        return (f"expected {_dtype_words(expected)}, got {_dtype_words(got)}; convert with "
                ".astype(...).")
    if got == expected or (expected.kind not in "fcb" and got.kind == expected.kind):
        return None
    if got.kind == expected.kind:
        return (f"expected dtype {expected}, got {got}; keep the precision of the inputs (look for "
                f"an .astype(...) or a constant that changes it).")
    return f"expected {_dtype_words(expected)}, got {_dtype_words(got)}; convert with .astype(...)."


def _entries_problem(got: np.ndarray, expected: np.ndarray, wrong: np.ndarray) -> str:
    """Which entries differ and how, without the expected values."""
    if expected.ndim == 0:
        head = "the value differs"
    else:
        places = [tuple(int(i) for i in index) for index in np.argwhere(wrong)]
        shown = ", ".join(str(p[0]) if len(p) == 1 else str(p) for p in places[:5])
        shown = f"[{shown}]" if expected.ndim == 1 else shown
        more = f" and {len(places) - 5} more" if len(places) > 5 else ""
        which = "entry" if len(places) == 1 else "entries"
        head = f"{len(places)} of {expected.size} entries differ ({which} {shown}{more})"
    got_wrong, expected_wrong = got[wrong], expected[wrong]
    if expected.dtype.kind == "f":
        return f"{head}; {_float_entries_detail(got_wrong, expected_wrong)}."
    if expected.dtype.kind in "iu":
        larger = int(np.count_nonzero(got_wrong > expected_wrong))
        counts = [f"{n} too {words}" for n, words in ((larger, "large"),
                  (len(got_wrong) - larger, "small")) if n]
        return f"{head}: {' and '.join(counts)}."
    return f"{head}."


def _float_entries_detail(got: np.ndarray, expected: np.ndarray) -> str:
    """The pattern of the wrong float entries: NaN, inf, a flipped sign, a common factor."""
    got, expected = got.astype(np.float64), expected.astype(np.float64)
    for mask, words in ((np.isnan(got) & ~np.isnan(expected), "NaN where numbers are expected"),
                        (np.isnan(expected) & ~np.isnan(got), "numbers where NaN is expected"),
                        (np.isinf(got) & ~np.isinf(expected), "infinite")):
        if mask.any():
            return f"{np.count_nonzero(mask)} of them are {words}"
    if np.allclose(got, -expected, rtol=1e-3, atol=0):
        return "their sign is flipped (their size is right)"
    if np.all(expected != 0) and np.all(got / expected > 0):
        ratio = got / expected
        if ratio.max() <= 1.01 * ratio.min():
            factor = float(np.median(ratio))
            direction = "large" if factor > 1 else "small"
            size = max(factor, 1 / factor)
            return f"they are all about {size:.2g} times too {direction}"
    with np.errstate(divide="ignore", invalid="ignore"):
        worst = int(np.argmax(np.abs(got - expected) / np.maximum(np.abs(expected), 1e-300)))
    return "the worst of them: " + _miss(float(got[worst]), float(expected[worst])).rstrip(".")


def _sequence_difference(got, expected, rtol: float, atol: float) -> str | None:
    """Compare with an expected list or tuple: the container, its length, then item by item."""
    wanted = "tuple" if isinstance(expected, tuple) else "list"
    if not isinstance(got, (list, tuple)):
        return f"expected a {wanted} of {len(expected)} items, got {_kind(got)}."
    if isinstance(got, tuple) != isinstance(expected, tuple):
        example = "(a, b), not [a, b]" if wanted == "tuple" else "[a, b], not (a, b)"
        return f"expected a {wanted}, got {_kind(got)}: write {example}."
    if len(got) != len(expected):
        return f"expected a {wanted} of {len(expected)} items, got {len(got)} items."
    problems = [(i, problem) for i, (g, e) in enumerate(zip(got, expected))
                if (problem := _answer_difference(g, e, rtol, atol)) is not None]
    return _first_problems(problems, len(expected), "items", lambda i: f"[{i}]")


def _dict_difference(got, expected: dict, rtol: float, atol: float) -> str | None:
    """Compare with an expected dict: the keys, then the values key by key."""
    if not isinstance(got, dict):
        return f"expected a dict with keys {list(expected)}, got {_kind(got)}."
    missing = [key for key in expected if key not in got]
    extra = [key for key in got if key not in expected]
    if missing or extra:
        parts = ([f"missing keys {missing}"] if missing else []) + (
            [f"unexpected keys {extra}"] if extra else [])
        return "; ".join(parts) + "."
    problems = [(key, problem) for key, value in expected.items()
                if (problem := _answer_difference(got[key], value, rtol, atol)) is not None]
    return _first_problems(problems, len(expected), "keys", repr)


def _first_problems(problems: list, total: int, what: str, name: Callable) -> str | None:
    """Summarise the per-item problems of a container, with the first one in full."""
    if not problems:
        return None
    first, message = problems[0]
    if len(problems) == 1:
        return f"{what[:-1]} {name(first)}: {message}"
    names = ", ".join(name(item) for item, _ in problems[:5])
    more = f" and {len(problems) - 5} more" if len(problems) > 5 else ""
    return (f"{len(problems)} of {total} {what} differ ({names}{more}); "
            f"{what[:-1]} {name(first)}: {message}")


def _text_difference(got, expected: str) -> str | None:
    if not isinstance(got, str):
        return f"expected a str, got {_kind(got)}."
    if got == expected:
        return None
    if got.strip() == expected.strip():
        return "it differs only in spaces at the start or the end."
    if got.lower() == expected.lower():
        return "it differs only in upper and lower case."
    return "the text differs from the expected one."

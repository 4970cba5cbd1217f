"""What the exercises' check cells call: one ``check_<name>`` function per exercise.

A check runs the student's function on the notebook's own inputs and on cases of its own,
compares the results with references kept here, out of the students' sight, and prints
``Correct: ...``, or raises ``AssertionError`` with what is wrong: the case, the type, shape or
dtype, which entries, roughly by how much, and the likely mistake, but never an expected value.
A stub that still raises ``NotImplementedError`` fails as "not written yet". A check never
changes the notebook's state: the student's function gets copies, and a function that changes
its arguments fails. Where an exercise could have damaged the notebook's own arrays (a network
the rest of the notebook uses), the check looks at them too.

``CHECKS`` maps each exercise ("05-2") to its check. Importing this module has no side effects.
"""

from __future__ import annotations

import copy
import inspect
import io
import math
import tokenize

import numpy as np

import nn_helpers as nn

# ---- shared machinery ----------------------------------------------------------------------------


def _call(function, name: str, *args, **kwargs):
    """Call the student's function ``name``; a stub that is not written yet fails plainly."""
    if not callable(function):
        raise AssertionError(f"{name} should be a function, got {nn._kind(function)}; run the "
                             "cell that defines it.")
    try:
        return function(*args, **kwargs)
    except NotImplementedError:
        raise AssertionError(f"{name} is not written yet: fill in its body in the cell above "
                             "(it still raises NotImplementedError).") from None


def _expect(label: str, got, expected, *, rtol: float = 1e-7, atol: float = 1e-12,
            hint: str = "", mistakes=()) -> None:
    """Fail with what differs between ``got`` and ``expected``; a known mistake (a pair of the
    wrong result it gives and an explanation) is named instead of the bare difference."""
    problem = nn._answer_difference(got, expected, rtol, atol)
    if problem is None:
        return
    for wrong, explanation in mistakes:
        if nn._answer_difference(got, wrong, rtol, atol) is None:
            problem = explanation
            break
    raise AssertionError(f"{label}: {problem}" + (f"\nHint: {hint}" if hint else ""))


def _unchanged(label: str, argument: str, before, after) -> None:
    """Fail when the student's function changed one of its arguments."""
    problem = nn._answer_difference(after, before, 0.0, 0.0)
    if problem is not None:
        raise AssertionError(f"{label} changed its argument {argument} ({problem.rstrip('.')}): "
                             "work on a copy; the caller's data must stay as it was.")


def _run(function, name: str, label: str, *args, **kwargs):
    """Call ``function`` on deep copies of the arguments and check that it left them alone."""
    copies = copy.deepcopy(args)
    result = _call(function, name, *copies, **kwargs)
    for position, (before, after) in enumerate(zip(args, copies)):
        _unchanged(label, _ordinal(position), before, after)
    return result


def _ordinal(position: int) -> str:
    return ["one", "two", "three", "four", "five"][position] if position < 5 else str(position + 1)


def _names_used(function) -> set[str]:
    """The names in a function's code (not in its comments or strings); empty if unknown."""
    try:
        source = inspect.getsource(function)
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (OSError, TypeError, tokenize.TokenError, IndentationError):
        return set()
    return {token.string for token in tokens if token.type == tokenize.NAME}


def _avoid(function, name: str, forbidden: dict) -> None:
    """Fail when ``function`` uses a name the exercise rules out (name -> why)."""
    for word, why in forbidden.items():
        if word in _names_used(function):
            raise AssertionError(f"{name} uses `{word}`: {why}")


def _passed(title: str, note: str = "") -> None:
    print(f"Correct: {title}" + (f" ({note})" if note else ""))


def _describe(value) -> str:
    """A short description of an argument for a message: arrays by shape, the rest by value."""
    if isinstance(value, np.ndarray):
        return f"a {value.dtype} array of shape {value.shape}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ---- 01 · data -----------------------------------------------------------------------------------

_MADE_UP_SIZES = [(5,), (300, 2), (3, 256), (2, 3, 4), (1, 1, 1, 1), (70_000,)]


def _idx_bytes(sizes: tuple) -> bytes:
    header = bytes([0, 0, 0x08, len(sizes)]) + b"".join(n.to_bytes(4, "big") for n in sizes)
    return header + bytes(math.prod(sizes))


def check_idx_sizes(idx_sizes, idx_files: dict) -> None:
    """01 · Exercise 1: ``idx_sizes(data)`` on the decompressed MNIST files in ``idx_files``
    (name -> bytes) and on made-up headers."""
    _avoid(idx_sizes, "idx_sizes", {
        word: "the exercise asks you to decode the header with int.from_bytes only."
        for word in ("frombuffer", "read_idx", "parse_idx")})
    cases = list(idx_files.items()) + [(f"a made-up file of shape {sizes}", _idx_bytes(sizes))
                                 for sizes in _MADE_UP_SIZES]
    for label, data in cases:
        ndim = data[3]
        little = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "little") for i in range(ndim))
        _expect(f"idx_sizes on {label}", _call(idx_sizes, "idx_sizes", data),
                tuple(int(n) for n in nn.parse_idx(data).shape),
                hint="the sizes start at byte 4, 4 bytes each; byte 3 says how many there are",
                mistakes=[(little, "you read the sizes little-endian; IDX stores them big-endian "
                                   "(most significant byte first).")])
    _passed("idx_sizes", f"{len(idx_files)} MNIST files and {len(_MADE_UP_SIZES)} made-up headers")


def check_class_counts(class_counts, y_val: np.ndarray) -> None:
    """01 · Exercise 2: ``class_counts(y, num_classes=10)`` from the one-hot matrix."""
    _avoid(class_counts, "class_counts", {
        "bincount": "the exercise asks you to count with the one-hot matrix, not np.bincount.",
        "unique": "the exercise asks you to count with the one-hot matrix, not np.unique."})
    hint = "each column of the one-hot matrix marks one class; sum down the columns (axis=0)"
    label = "class_counts(data.y_val)"
    _expect(label, _run(class_counts, "class_counts", label, y_val),
            np.bincount(y_val, minlength=10), hint=hint)
    for y, k in [([3, 3, 3], 5), ([0, 2, 2, 1, 2], 3), (list(range(10)), 10)]:
        labels = np.array(y)
        label = f"class_counts(np.array({y}), {k})"
        _expect(label, _run(class_counts, "class_counts", label, labels, k),
                np.bincount(labels, minlength=k), hint=hint)
    _passed("class_counts", "the validation labels and 3 made-up label vectors")


def _batches_reference(n: int, batch_size: int) -> tuple[int, int]:
    n_batches = -(-n // batch_size)
    return n_batches, n - (n_batches - 1) * batch_size


def check_batches_per_epoch(batches_per_epoch, n_train: int = 50_000) -> None:
    """01 · Exercise 3: ``batches_per_epoch(n, batch_size)`` with the formula of section 5."""
    why = "the exercise asks for the formula of section 5, not for a loop over the batches."
    _avoid(batches_per_epoch, "batches_per_epoch",
           {"iterate_minibatches": why, "for": why, "while": why})
    cases = [(n_train, b) for b in (100, 128, 333, 1000)] + [(10, 3), (10, 5), (10, 20), (1, 1)]
    for n, b in cases:
        n_batches, last = _batches_reference(n, b)
        _expect(f"batches_per_epoch({n}, {b})", _call(batches_per_epoch, "batches_per_epoch",
                                                      n, b), (n_batches, last),
                hint="ceil(N / B) is -(-N // B) in integer arithmetic; the last batch holds what "
                     "the full ones leave over",
                mistakes=[((n // b, b), "the last, partial batch is missing: the number of "
                                        "batches rounds up, not down."),
                          ((n_batches, n % b), "when the batch size divides N, the last batch is "
                                               "a full one, not an empty one.")])
    _passed("batches_per_epoch", f"{len(cases)} cases")


def _nearest_mean_reference(X_train, y_train, X, num_classes: int = 10,
                            rows: int = 2000) -> np.ndarray:
    means = np.stack([X_train[y_train == k].mean(axis=0, dtype=np.float64)
                      for k in range(num_classes)])
    X = np.asarray(X)
    nearest = []
    # squared distances from one product, in float64: the same argmin as the norms. A block of
    # rows at a time, so no float64 copy of all of X and no temporaries as large as it are made
    # (they were two thirds of the check's time on the validation set).
    for start in range(0, len(X), rows):
        block = X[start:start + rows].astype(np.float64)
        squared = (np.einsum("ij,ij->i", block, block)[:, None] - 2 * (block @ means.T)
                   + (means * means).sum(axis=1))
        nearest.append(squared.argmin(axis=1))
    return np.concatenate(nearest) if nearest else np.zeros(0, dtype=np.intp)


def check_nearest_mean(nearest_mean_predict, data) -> None:
    """01 · Exercise 4: ``nearest_mean_predict(X_train, y_train, X)`` on made-up clusters, then
    on the validation set (where rounding may flip a handful of near ties)."""
    rng = np.random.default_rng(4)
    centres = 4 * rng.standard_normal((10, 6))
    for dtype in (np.float64, np.float32):
        y_train, y_new = rng.permutation(np.arange(200) % 10), np.arange(50) % 10
        X_train = (centres[y_train] + 0.5 * rng.standard_normal((200, 6))).astype(dtype)
        X_new = (centres[y_new] + 0.5 * rng.standard_normal((50, 6))).astype(dtype)
        label = f"nearest_mean_predict on made-up {np.dtype(dtype).name} clusters"
        got = _run(nearest_mean_predict, "nearest_mean_predict", label, X_train, y_train, X_new)
        _expect(label, got, _nearest_mean_reference(X_train, y_train, X_new),
                hint="mean image of each class (10, D); distances (N, 10) from one product "
                     "X @ means.T; argmin along axis 1")
    got = _call(nearest_mean_predict, "nearest_mean_predict", data.X_train, data.y_train,
                data.X_val)
    expected = _nearest_mean_reference(data.X_train, data.y_train, data.X_val)
    label = "nearest_mean_predict(data.X_train, data.y_train, data.X_val)"
    if not (isinstance(got, np.ndarray) and got.shape == expected.shape
            and got.dtype.kind in "iu"):
        _expect(label, got, expected)   # says what is wrong with the type, shape or dtype
    differ = int(np.count_nonzero(got != expected))
    if differ > len(expected) // 1000:
        raise AssertionError(f"{label}: {differ} of {len(expected)} predictions are not the "
                             "nearest mean, more than rounding explains.")
    _passed("nearest_mean_predict", "made-up clusters and the validation set")


# ---- 02 · initialisation -------------------------------------------------------------------------

_NETWORKS = [[784, 256, 128, 10], [784, 128, 10], [784, 100, 200, 10], [784, 10], [3, 2, 1],
             [5, 5, 5, 5, 5]]


def _count_reference(sizes) -> int:
    return sum(n_in * n_out + n_out for n_in, n_out in zip(sizes[:-1], sizes[1:]))


def _check_parameter_count(function, name: str) -> None:
    for sizes in _NETWORKS:
        weights_only = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
        _expect(f"{name}({sizes})", _call(function, name, list(sizes)), _count_reference(sizes),
                hint="layer l has W_l of shape (n_{l-1}, n_l) and b_l of shape (n_l,)",
                mistakes=[(weights_only, "that counts the weights but not the biases (each "
                                         "layer has fan_out of them).")])
    _passed(name, f"{len(_NETWORKS)} networks")


def check_count_parameters(count_parameters) -> None:
    """02 · Exercise 1: ``count_parameters(layer_sizes)`` from the shape rule."""
    _check_parameter_count(count_parameters, "count_parameters")


def check_leaky_relu_std(leaky_relu_std) -> None:
    """02 · Exercise 2: ``leaky_relu_std(n_in, alpha)``, He's derivation redone for leaky ReLU."""
    cases = [(256, 0.2), (784, 0.01), (128, 0.5), (100, 1.0), (64, 0.0)]
    for n_in, alpha in cases:
        kept = (1 + alpha ** 2) / 2
        expected = math.sqrt(1 / (n_in * kept))
        _expect(f"leaky_relu_std({n_in}, {alpha})",
                _call(leaky_relu_std, "leaky_relu_std", n_in, alpha), expected, rtol=1e-6,
                hint="split E[a^2] into the half with z >= 0 and the half with z < 0, where "
                     "a = alpha z",
                mistakes=[(math.sqrt(2 / n_in), "that is He's value for ReLU: leaky ReLU's "
                                                "negative half keeps alpha^2 / 2 of E[z^2] too."),
                          (math.sqrt(2 / ((1 + alpha) * n_in)), "use alpha^2, not alpha: the "
                           "negative half is scaled by alpha, its square by alpha^2."),
                          (1 / (n_in * kept), "that is the variance sigma_w^2; return its "
                                              "square root, the standard deviation.")])
    _passed("leaky_relu_std", f"{len(cases)} fan-ins and slopes")


def _shrunk_loss_reference(params, X, y, factor: float) -> float:
    scaled = dict(params, W2=params["W2"] * factor)
    return float(nn.cross_entropy(nn.mlp_forward(scaled, X)[0], y))


def check_shrunk_initial_loss(shrunk_initial_loss, answer_3, params_3, X_small, y_small,
                              factors) -> None:
    """02 · Exercise 3: ``shrunk_initial_loss(params, X, y, factor)``, then ``answer_3``, the
    largest factor in ``factors`` that brings the initial loss within 0.02 of ln 10."""
    name = "shrunk_initial_loss"
    std, he = float(np.std(params_3["W2"])), math.sqrt(2 / params_3["W2"].shape[0])
    if not 0.5 * he < std < 2 * he:
        raise AssertionError(f"params_3['W2'] no longer looks like a fresh He initialisation "
                             f"(its spread is {'smaller' if std < he else 'larger'}): did a cell "
                             "change params_3 in place? Re-run the cell that creates it, and let "
                             f"{name} scale a copy of W2.")
    rng = np.random.default_rng(3)
    small = {"W1": rng.standard_normal((12, 8)) / 3, "b1": 0.1 * rng.standard_normal(8),
             "W2": rng.standard_normal((8, 3)), "b2": 0.1 * rng.standard_normal(3)}
    X, y = rng.standard_normal((20, 12)), rng.integers(0, 3, size=20)
    for factor in (1.0, 0.5, 0.0):
        label = f"{name} on a small 12-8-3 network, factor {factor}"
        _expect(label, _run(shrunk_initial_loss, name, label, small, X, y, factor),
                _shrunk_loss_reference(small, X, y, factor), rtol=1e-6,
                hint="multiply a copy of W2 by the factor, run the forward pass, take the "
                     "cross-entropy of its logits")
    ln10 = math.log(10)
    losses = {}
    for factor in factors:
        label = f"{name}(params_3, X_small, y_small, {factor})"
        losses[factor] = _shrunk_loss_reference(params_3, X_small, y_small, factor)
        _expect(label, _run(shrunk_initial_loss, name, label, params_3, X_small, y_small, factor),
                losses[factor], rtol=1e-5)
    good = [factor for factor, loss in losses.items() if abs(loss - ln10) < 0.02]
    _check_choice("answer_3", answer_3, list(factors), good, "FACTORS",
                  "keeps the initial loss within 0.02 of ln 10")
    _passed(f"{name} and answer_3", "a small network, params_3 and the largest factor")


def _check_choice(name: str, answer, candidates: list, good: list, listed: str,
                  condition: str) -> None:
    """``answer`` must be the largest candidate that meets a condition (``good``)."""
    if answer is None:
        raise AssertionError(f"{name} is still None: store your answer in it.")
    if isinstance(answer, (bool, np.bool_)) or not isinstance(answer, (float, np.floating)):
        raise AssertionError(f"{name} should be a float from {listed}, got {nn._kind(answer)}.")
    matches = [c for c in candidates if math.isclose(answer, c, rel_tol=1e-9, abs_tol=1e-15)]
    if not matches:
        raise AssertionError(f"{name} should be one of the values of {listed}.")
    answer = matches[0]
    if answer not in good:
        raise AssertionError(f"{name}: the value you chose does not meet the condition (it "
                             f"should be the largest that {condition}).")
    if answer != max(good):
        raise AssertionError(f"{name}: a larger value of {listed} {condition} too; the exercise "
                             "asks for the largest.")


def _distinct_reference(W: np.ndarray, tol: float = 1e-3) -> int:
    s = np.linalg.svd(W, compute_uv=False)
    return int(np.sum(s > tol * s[0]))


def check_distinct_units(distinct_units, params_4) -> None:
    """02 · Exercise 4: ``distinct_units(W, tol=1e-3)`` on matrices of known rank, then on the
    network ``params_4`` started with every weight at 0.01 and trained for 20 steps."""
    name = "distinct_units"
    rng = np.random.default_rng(5)
    u, noise = rng.standard_normal(30), 1e-6 * rng.standard_normal((30, 8))
    cases = [("a rank-1 matrix", np.outer(u, np.ones(8)), {}),
             ("a rank-3 matrix", rng.standard_normal((30, 3)) @ rng.standard_normal((3, 8)), {}),
             ("a random 20 x 5 matrix", rng.standard_normal((20, 5)), {}),
             ("a rank-1 matrix plus tiny noise", np.outer(u, np.ones(8)) + noise, {}),
             ("a rank-1 matrix plus tiny noise, tol=1e-9", np.outer(u, np.ones(8)) + noise,
              {"tol": 1e-9})]
    for label, W, options in cases:
        label = f"{name} on {label}"
        _expect(label, _run(distinct_units, name, label, W, **options),
                _distinct_reference(W, **options),
                hint="the singular values come from np.linalg.svd, largest first")
    if not isinstance(params_4, dict) or set(params_4) != {"W1", "b1", "W2", "b2"}:
        raise AssertionError(f"params_4 should be the dict of the 784-32-10 network (W1, b1, W2, "
                             f"b2), got {nn._kind(params_4)}.")
    for key, shape in (("W1", (784, 32)), ("W2", (32, 10))):
        if np.shape(params_4[key]) != shape:
            raise AssertionError(f"params_4['{key}'] should have shape {shape}, got "
                                 f"{np.shape(params_4[key])}.")
    if np.all(params_4["W1"] == 0.01):
        raise AssertionError("params_4 still holds its starting weights: train it for 20 steps "
                             "with train_steps(params_4, 'relu', 20, lr=0.5, rng=rng).")
    units = _distinct_reference(params_4["W1"])
    if units != 1:
        raise AssertionError(f"params_4['W1'] has {units} distinct hidden units: did every "
                             "weight start at exactly 0.01 (biases 0)?")
    _expect(f"{name}(params_4['W1'])", _call(distinct_units, name, params_4["W1"].copy()), units)
    _passed(f"{name} and params_4", "1 distinct hidden unit of 32 after 20 steps")


# ---- 03 · the forward pass -----------------------------------------------------------------------

def check_count_mlp_params(count_mlp_params) -> None:
    """03 · Exercise 1: ``count_mlp_params(layer_sizes)``."""
    _check_parameter_count(count_mlp_params, "count_mlp_params")


def _logsumexp_reference(Z: np.ndarray) -> np.ndarray:
    Z64 = Z.astype(np.float64)
    m = Z64.max(axis=1)
    return (m + np.log(np.exp(Z64 - m[:, None]).sum(axis=1))).astype(Z.dtype)


def check_logsumexp(logsumexp) -> None:
    """03 · Exercise 2: ``logsumexp(Z)`` row by row, also where naive exp overflows."""
    rng = np.random.default_rng(6)
    cases = [("Z_ex2", np.array([[1000.0, 999.0, 998.0], [-1000.0, -1001.0, -1002.0],
                                 [0.0, 0.0, 0.0]])),
             ("random float64 logits (5, 7)", 3 * rng.standard_normal((5, 7))),
             ("random float32 logits (4, 10)", (10 * rng.standard_normal((4, 10))).astype(
                 np.float32)),
             ("a single column (3, 1)", np.array([[2.0], [-800.0], [0.5]])),
             ("float32 logits near 100", (100 + rng.standard_normal((3, 5))).astype(np.float32))]
    for label, Z in cases:
        label = f"logsumexp on {label}"
        tolerance = {"rtol": 1e-5, "atol": 1e-6} if Z.dtype == np.float32 else {}
        _expect(label, _run(logsumexp, "logsumexp", label, Z), _logsumexp_reference(Z),
                hint="subtract each row's maximum before exp, and add it back after the log; "
                     "return one number per row, in Z's dtype", **tolerance)
    _passed("logsumexp", f"{len(cases)} arrays, float64 and float32")


def check_zero_output_loss(zero_output_loss, params, X_val, y_val) -> None:
    """03 · Exercise 3: ``zero_output_loss(params, X, y)`` with W2 and b2 at zero, leaving
    ``params`` as it was; the notebook's own ``params`` must be untouched too."""
    name = "zero_output_loss"
    if not np.any(params["W2"]):
        raise AssertionError("params['W2'] in this notebook is all zeros now: an exercise cell "
                             "changed the network of section 6, which this check needs as it was. "
                             "Re-run the "
                             f"cell that creates params (section 6) and make {name} zero a copy.")
    label = f"{name}(params, X_val, y_val)"
    copies = {key: value.copy() for key, value in params.items()}
    got = _call(zero_output_loss, name, copies, X_val, y_val)
    _unchanged(label, "params", params, copies)
    _expect(label, got, math.log(10), rtol=1e-6,
            hint="with all logits 0 every class gets probability 1/10")
    rng = np.random.default_rng(7)
    small = {"W1": rng.standard_normal((5, 4)), "b1": rng.standard_normal(4),
             "W2": rng.standard_normal((4, 3)), "b2": rng.standard_normal(3)}
    X, y = rng.standard_normal((6, 5)), np.array([0, 2, 1, 2, 0, 1])
    label = f"{name} on a 5-4-3 network (3 classes)"
    _expect(label, _run(zero_output_loss, name, label, small, X, y), math.log(3), rtol=1e-6,
            mistakes=[(math.log(10), "that is the loss of 10 classes, whatever the network: "
                                     "compute the loss from the network, don't type it in.")])
    _passed(name, "ln C for C classes, and params untouched")


def check_margin_loss(margin_loss) -> None:
    """03 · Exercise 4: ``margin_loss(g)``, the cross-entropy of ten logits with margin g."""
    margins = (0.0, 2.0, 5.0, -3.0, 0.5, 10.0)
    for g in margins:
        _expect(f"margin_loss({g})", _call(margin_loss, "margin_loss", g),
                math.log1p(9 * math.exp(-g)), rtol=1e-6,
                hint="ten logits: g for the true class, 0 for the nine others; then cross_entropy",
                mistakes=[(math.log1p(9 * math.exp(g)), "your loss grows with the margin: the "
                           "true class's logit should be g above the others, not below.")])
    _passed("margin_loss", f"margins {', '.join(f'{g:g}' for g in margins)}")


# ---- 04 · backpropagation ------------------------------------------------------------------------

def _one_hot_case(rng, n: int, c: int, dtype=np.float64):
    logits = rng.standard_normal((n, c)).astype(dtype)
    return logits, nn.one_hot(rng.integers(0, c, size=n), c, dtype=dtype)


def check_mse_dlogits(mse_dlogits) -> None:
    """04 · Exercise 1: ``mse_dlogits(logits, Y_onehot)``, the gradient of the squared error."""
    rng = np.random.default_rng(8)
    cases = [_one_hot_case(rng, 6, 3), _one_hot_case(rng, 4, 10),
             _one_hot_case(rng, 5, 3, np.float32)]
    for logits, Y in cases:
        n = len(logits)
        label = f"mse_dlogits on {_describe(logits)}"
        tolerance = {"rtol": 1e-5, "atol": 1e-7} if logits.dtype == np.float32 else {}
        _expect(label, _run(mse_dlogits, "mse_dlogits", label, logits, Y), (logits - Y) / n,
                hint="differentiate (1/2N) sum (l - y)^2 entry by entry; N is the number of rows",
                mistakes=[(logits - Y, f"it is {n} times too large: the loss is a mean over the "
                                       "N samples, divide by N."),
                          (2 * (logits - Y) / n, "the 1/2 in the loss cancels the 2 of the "
                                                 "square."),
                          ((Y - logits) / n, "the sign is flipped: dL/dlogits = (logits - Y) / N."),
                          ((logits - Y) / 6, "divide by the number of rows of the logits you "
                                             "were given, not by the notebook's N."),
                          ((logits - Y) / logits.size, "divide by N only: the loss sums over "
                                                       "the classes.")],
                **tolerance)
    _passed("mse_dlogits", f"{len(cases)} batches, float64 and float32")


def check_tanh_backward_from_Z(tanh_backward_from_Z) -> None:
    """04 · Exercise 2: ``tanh_backward_from_Z(dA, Z)`` from Z alone."""
    rng = np.random.default_rng(9)
    Z_ex = np.linspace(-3, 3, 12).reshape(3, 4)
    Z32 = rng.standard_normal((5, 7)).astype(np.float32)
    Z_big = np.array([[-20.0, -5.0, 0.0, 5.0, 20.0]])
    cases = [("dA_ex, Z_ex", np.cos(Z_ex), Z_ex),
             ("float32 arrays (5, 7)", rng.standard_normal((5, 7)).astype(np.float32), Z32),
             ("large |z|", np.ones_like(Z_big), Z_big)]
    for label, dA, Z in cases:
        label = f"tanh_backward_from_Z on {label}"
        tolerance = {"rtol": 1e-5, "atol": 1e-7} if Z.dtype == np.float32 else {}
        expected = (dA * (1 - np.tanh(Z) ** 2)).astype(Z.dtype)
        _expect(label, _run(tanh_backward_from_Z, "tanh_backward_from_Z", label, dA, Z),
                expected, hint="d tanh(z)/dz = 1 - tanh(z)^2, times dA entry by entry",
                mistakes=[(dA * (1 - Z ** 2), "you used 1 - Z^2, the formula in terms of the "
                                              "output A = tanh(Z); from Z it is 1 - tanh(Z)^2."),
                          ((1 - np.tanh(Z) ** 2).astype(Z.dtype), "multiply by dA: the chain "
                           "rule passes the gradient from above through.")],
                **tolerance)
    _passed("tanh_backward_from_Z", f"{len(cases)} cases, float64 and float32")


def check_leaky_relu_derivative(leaky_relu_derivative) -> None:
    """04 · Exercise 3: ``leaky_relu_derivative(Z, alpha)``, in Z's dtype."""
    rng = np.random.default_rng(10)
    cases = [("Z_ex, alpha=0.2", np.linspace(-3, 3, 12).reshape(3, 4), 0.2),
             ("float32 Z (4, 6), alpha=0.01", rng.standard_normal((4, 6)).astype(np.float32),
              0.01),
             ("Z with exact zeros, alpha=0.2", np.array([-1.0, 0.0, 2.0, 0.0]), 0.2)]
    for label, Z, alpha in cases:
        label = f"leaky_relu_derivative on {label}"
        _expect(label, _run(leaky_relu_derivative, "leaky_relu_derivative", label, Z, alpha),
                np.where(Z > 0, 1.0, alpha).astype(Z.dtype),
                hint="1 where z > 0, alpha elsewhere; np.where(...) gives float64, so convert "
                     "with .astype(Z.dtype)",
                mistakes=[(np.where(Z >= 0, 1.0, alpha).astype(Z.dtype), "at z = 0 the "
                           "derivative is alpha here: 1 only where z > 0.")])
    _passed("leaky_relu_derivative", f"{len(cases)} cases, float64 and float32")


def _input_gradient(params, X, y) -> np.ndarray:
    """d(cross-entropy)/dX of an MLP, by walking nn's caches down to the input."""
    logits, caches = nn.mlp_forward(params, X)
    _, dA = nn.softmax_cross_entropy(logits, y)
    for dense_cache, act_cache in reversed(caches):
        dZ = dA if act_cache is None else nn.activation_backward(dA, act_cache)
        dA, _, _ = nn.dense_backward(dZ, dense_cache)
    return dA


def check_pixel_gradient(pixel_gradient, step_params, X_batch, y_batch) -> None:
    """04 · Exercise 4: ``pixel_gradient(params, image, label)``, d loss / d pixels."""
    rng = np.random.default_rng(11)
    other = nn.init_mlp([784, 16, 10], "he", rng=rng, dtype=np.float64)
    other["b1"], other["b2"] = 0.1 * rng.standard_normal(16), 0.1 * rng.standard_normal(10)
    cases = [("step_params and the first image of X_batch", step_params, 0),
             ("step_params and image 5 of X_batch", step_params, 5),
             ("another 784-16-10 network", other, 7)]
    for label, params, i in cases:
        image, label_i = X_batch[i:i + 1], y_batch[i:i + 1]
        label = f"pixel_gradient on {label}"
        _expect(label, _run(pixel_gradient, "pixel_gradient", label, params, image, label_i),
                _input_gradient(params, image, label_i), rtol=1e-6, atol=1e-10,
                hint="go down the layers: dlogits, dA1 = dlogits W2^T, the ReLU mask, then "
                     "dX = dZ1 W1^T")
    _passed("pixel_gradient", f"{len(cases)} images and networks")


# ---- 05 · training -------------------------------------------------------------------------------

def check_update_ratio(update_ratio, ex_params, ex_grads, lr: float) -> None:
    """05 · Exercise 1: ``update_ratio(W_before, W_after)`` for one SGD and one Adam step."""
    name = "update_ratio"
    W, dW = ex_params["W1"], ex_grads["W1"]
    norm_W = float(np.linalg.norm(W.astype(np.float64)))
    sgd_after = {k: v.copy() for k, v in ex_params.items()}
    nn.SGD(0.1).step(sgd_after, ex_grads)
    adam_after = {k: v.copy() for k, v in ex_params.items()}
    nn.Adam(lr).step(adam_after, ex_grads)
    toy_before, toy_after = np.array([[3.0, 4.0]]), np.array([[3.3, 4.4]])
    cases = [("one SGD step on W1", W, sgd_after["W1"],
              0.1 * float(np.linalg.norm(dW.astype(np.float64))) / norm_W, 1e-4),
             ("Adam's first step on W1", W, adam_after["W1"],
              lr * math.sqrt(np.count_nonzero(dW)) / norm_W, 1e-3),
             ("W_before [[3, 4]], W_after [[3.3, 4.4]]", toy_before, toy_after, 0.1, 1e-9),
             ("no change at all", toy_before, toy_before.copy(), 0.0, 1e-9)]
    for label, before, after, expected, rtol in cases:
        label = f"{name} for {label}"
        _expect(label, _run(update_ratio, name, label, before, after), expected, rtol=rtol,
                hint="divide the norm of the change, W_after - W_before, by the norm of W_before",
                mistakes=[(float(np.linalg.norm(after - before) / np.linalg.norm(after)),
                           "divide by the norm of W_before, the weights before the step.")])
    _passed(name, "an SGD step, an Adam step and two made-up snapshots")


def _early_stopping_reference(val_losses, patience: int) -> tuple[int, int]:
    best_epoch, best_loss = 1, val_losses[0]
    for epoch, loss in enumerate(val_losses[1:], start=2):
        if loss < best_loss:
            best_epoch, best_loss = epoch, loss
        elif epoch - best_epoch >= patience:
            return epoch, best_epoch
    return len(val_losses), best_epoch


def check_early_stopping(early_stopping) -> None:
    """05 · Exercise 2: ``early_stopping(val_losses, patience)`` -> (stop_epoch, best_epoch)."""
    curve = [0.50, 0.35, 0.30, 0.28, 0.29, 0.27, 0.30, 0.31, 0.33, 0.35]
    cases = [(curve, p) for p in (1, 2, 3, 5)] + [
        ([3.0, 2.0, 1.0], 1), ([1.0, 0.9, 0.9, 0.9], 2), ([0.5], 3), ([1.0, 2.0, 3.0, 4.0], 1),
        (np.array(curve), 2)]
    for losses, patience in cases:
        label = f"early_stopping({_describe(losses)}, patience={patience})"
        got = _run(early_stopping, "early_stopping", label, losses, patience)
        problem = _early_stopping_problem(got, list(losses), patience)
        if problem is not None:
            raise AssertionError(f"{label}: {problem}")
    _passed("early_stopping", f"{len(cases)} curves and patiences")


def _early_stopping_problem(got, losses: list, patience: int) -> str | None:
    """What is wrong with ``got`` as early_stopping(losses, patience), naming stop_epoch and
    best_epoch; None if it is right."""
    stop, best = _early_stopping_reference(losses, patience)
    never_stops = stop == len(losses)
    if got is None:
        if never_stops:
            return ("it returned None. On this curve training never stops early: does your "
                    "function reach a `return` when its loop ends without stopping? It must then "
                    "return the last epoch and the best one, (stop_epoch, best_epoch).")
        return ("it returned None: a `print` instead of a `return`, or a path through the "
                "function without `return`? It must return (stop_epoch, best_epoch), a tuple "
                "of two ints.")
    shape = nn._answer_difference(got, (stop, best), 0.0, 0.0)
    if shape is None:
        return None
    if not isinstance(got, tuple) or len(got) != 2:
        return shape + " Return (stop_epoch, best_epoch)."
    names = ("stop_epoch (the first item)", "best_epoch (the second item)")
    for name, value, expected in zip(names, got, (stop, best)):
        if value is None:
            return f"{name} is None; both must be ints, counted from 1."
        kind = nn._answer_difference(value, expected, 0.0, 0.0)
        if kind is not None and not kind.startswith("it is too"):
            return f"{name}: {kind}"
    got = (int(got[0]), int(got[1]))
    if got == (stop - 1, best - 1):
        return ("both epochs are one too small: count the epochs from 1, not from 0 (the first "
                "loss in val_losses is that of epoch 1).")
    if got == (best, stop) and best != stop:
        return "stop_epoch and best_epoch are swapped: return (stop_epoch, best_epoch)."
    ties = _early_stopping_reference([x - 1e-12 * i for i, x in enumerate(losses)], patience)
    if got == ties:
        return ("you count an equal loss as an improvement: only a loss strictly lower than the "
                "best so far improves on it.")
    if got[1] == best and got[0] != stop and never_stops:
        return ("stop_epoch is wrong (it is too " + ("large" if got[0] > stop else "small")
                + "): on this curve `patience` epochs in a row without improvement never "
                "happen, so training runs to the last epoch, counted from 1. best_epoch is "
                "right.")
    if got == _early_stopping_reference(losses, patience + 1):
        return ("stop_epoch is too large: your function waits for patience + 1 epochs in a row "
                "without improvement before it stops, one more than `patience`. Stop right "
                "after the `patience`-th such epoch." + (
                    " best_epoch is right." if got[1] == best else
                    " (best_epoch differs too: going on past the right stop, your function "
                    "found a lower loss later.)"))
    if patience > 1 and got == _early_stopping_reference(losses, patience - 1):
        return ("stop_epoch is too small: your function stops after patience - 1 epochs in a "
                "row without improvement, one fewer than `patience`." + (
                    " best_epoch is right." if got[1] == best else
                    " (best_epoch differs too: your function stopped before the epoch with the "
                    "lowest loss.)"))
    if got[1] == best and abs(got[0] - stop) == 1:
        return (f"stop_epoch is one too {'large' if got[0] > stop else 'small'}, best_epoch is "
                "right. Count stop_epoch from 1, like best_epoch, and stop right after the "
                "`patience`-th epoch in a row that did not improve on the best.")
    if got[0] == stop:
        return (f"stop_epoch is right, best_epoch is too {'large' if got[1] > best else 'small'}: "
                "it is the epoch with the lowest loss up to the stop (the first such epoch, if "
                "several tie), counted from 1.")
    return (f"stop_epoch is too {'large' if got[0] > stop else 'small'}"
            + (", best_epoch is right." if got[1] == best else
               f" and best_epoch is too {'large' if got[1] > best else 'small'}.")
            + "\nHint: after each epoch, count the epochs since the last strict improvement; "
            "stop when that count reaches `patience`.")


def check_per_class_accuracy(per_class_accuracy, cm, y_test, test_pred) -> None:
    """05 · Exercise 3: ``per_class_accuracy(cm)`` from the confusion matrix alone."""
    made_up = np.array([[5, 1, 0], [2, 6, 2], [0, 0, 4]])
    truth = np.array([np.mean(test_pred[y_test == digit] == digit) for digit in range(10)])
    cases = [("cm", cm, truth), ("a made-up 3 x 3 matrix", made_up, np.array([5 / 6, 0.6, 1.0]))]
    for label, matrix, expected in cases:
        label = f"per_class_accuracy({label})"
        got = _run(per_class_accuracy, "per_class_accuracy", label, matrix)
        with np.errstate(divide="ignore", invalid="ignore"):
            by_columns = np.diag(matrix) / matrix.sum(axis=0)
        _expect(label, got, expected, rtol=1e-9,
                hint="the diagonal holds the right answers; the rows are the true classes, the "
                     "columns the predictions",
                mistakes=[(by_columns, "you divided by the column sums, which count how often "
                                       "each class was predicted. The accuracy of class i is a "
                                       "share of the images that are an i: divide by the sums "
                                       "that count those.")])
    _passed("per_class_accuracy", "the test set's cm and a made-up matrix")


def check_lr_for_ratio(lr_for_ratio, ex_params, ex_grads) -> None:
    """05 · Exercise 4: ``lr_for_ratio(W, dW, target=1e-3)``."""
    cases = [(key, {}) for key in ("W1", "W2", "W3") if key in ex_params] + [
        ("W1", {"target": 1e-2})]
    for key, options in cases:
        W, dW = ex_params[key], ex_grads[key]
        target = options.get("target", 1e-3)
        norm_W = float(np.linalg.norm(W.astype(np.float64)))
        norm_dW = float(np.linalg.norm(dW.astype(np.float64)))
        extra = "".join(f", {k}={v:g}" for k, v in options.items())
        label = f"lr_for_ratio(ex_params['{key}'], ex_grads['{key}']{extra})"
        _expect(label, _run(lr_for_ratio, "lr_for_ratio", label, W, dW, **options),
                target * norm_W / norm_dW, rtol=1e-4,
                hint="the ratio of an SGD step is lr * |dW| / |W|; solve it for lr",
                mistakes=[(target * norm_dW / norm_W, "upside down: you multiplied by what you "
                                                      "should divide by. Write the ratio of an "
                                                      "SGD step and solve it for lr again.")])
    _passed("lr_for_ratio", f"{len(cases)} weight matrices and targets")


# ---- 06 · optimizers -----------------------------------------------------------------------------

def _adagrad_reference(p, g, state, lr, eps=1e-8):
    state["s"] = state.get("s", np.zeros_like(p)) + g ** 2
    p -= lr * g / (np.sqrt(state["s"]) + eps)


def check_adagrad(adagrad, adagrad_path, quadratic: dict) -> None:
    """06 · Exercise 1: the update rule ``adagrad(p, g, state, lr, eps=1e-8)`` on gradients of
    its own, then ``adagrad_path``, 50 steps on the quadratic at lr 1.0."""
    name = "adagrad"
    rng = np.random.default_rng(12)
    gradients = [np.array([0.5, -1.0]), np.array([0.1, 3.0]), np.array([0.0, 0.0])]
    for dtype, eps, shape in ((np.float64, 1e-8, (2,)), (np.float64, 0.5, (2,)),
                              (np.float32, 1e-8, (3, 4))):
        p = rng.standard_normal(shape).astype(dtype)
        p_ref, state, state_ref = p.copy(), {}, {}
        for step, g in enumerate(gradients, start=1):
            g = np.resize(g, shape).astype(dtype)
            before = p.copy()
            _call(adagrad, name, p, g, state, lr=0.1, eps=eps)
            _adagrad_reference(p_ref, g, state_ref, lr=0.1, eps=eps)
            label = f"{name}, step {step} on a {np.dtype(dtype).name} array {shape}, eps={eps:g}"
            if np.array_equal(p, before) and not np.array_equal(p_ref, before):
                raise AssertionError(f"{label}: p did not change; update it in place (p -= ...), "
                                     "as the other update rules do: run() reads p after the call.")
            _expect(label, p, p_ref, rtol=1e-5 if dtype == np.float32 else 1e-10,
                    hint="s is a running sum of the squared gradients, with no decay, kept in "
                         "state from one call to the next")
    path, p, state = [quadratic["start"].astype(np.float64)], quadratic["start"].astype(
        np.float64), {}
    for _ in range(50):
        _adagrad_reference(p, quadratic["grad"](p), state, lr=1.0)
        path.append(p.copy())
    _expect("adagrad_path", adagrad_path, np.array(path), rtol=1e-9,
            hint="adagrad_path = run(adagrad, 'quadratic', 50, lr=1.0)")
    _passed(f"{name} and adagrad_path", "3 made-up runs and the quadratic")


def _stable_reference(update, quadratic: dict, lr: float, steps: int) -> bool:
    p, state = quadratic["start"].astype(np.float64), {}
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(steps):
            update(p, quadratic["grad"](p), state, lr=lr)
    return bool(abs(p[1]) < abs(quadratic["start"][1]))


def _stable_lrs(update, quadratic: dict, lrs: list, steps: int) -> list:
    """The lrs of ``lrs`` for which ``_stable_reference`` holds, all runs at once: row i of ``p``
    is the run at ``lrs[i]``. The update rules are element-wise, so every row computes exactly
    what its own run would (201 runs in 300 vectorised steps instead of 60,300 Python steps);
    the gradient is evaluated on the transposed points, one (x, y) pair per column."""
    start = quadratic["start"].astype(np.float64)
    p, state = np.tile(start, (len(lrs), 1)), {}
    column = np.asarray(lrs, dtype=np.float64)[:, None]
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(steps):
            update(p, np.asarray(quadratic["grad"](p.T)).T, state, lr=column)
    return [lr for lr, y in zip(lrs, p[:, 1]) if abs(y) < abs(start[1])]


def check_nesterov_limit(is_stable, nesterov_limit, nesterov, quadratic: dict) -> None:
    """06 · Exercise 2: ``is_stable(update, lr, steps=300)``, then ``nesterov_limit``, the
    largest stable lr of ``np.linspace(0.02, 0.04, 201)`` for Nesterov."""
    for lr, steps in ((0.02, 300), (0.027, 300), (0.0275, 300), (0.035, 300), (0.0275, 20)):
        label = f"is_stable(nesterov, {lr}" + (f", steps={steps})" if steps != 300 else ")")
        options = {} if steps == 300 else {"steps": steps}
        _expect(label, _call(is_stable, "is_stable", nesterov, lr, **options),
                _stable_reference(nesterov, quadratic, lr, steps),
                hint="run the rule with run(update, 'quadratic', steps, lr=lr) and compare the "
                     "final |y| with the starting |y|")
    grid = [float(lr) for lr in np.linspace(0.02, 0.04, 201)]
    stable = _stable_lrs(nesterov, quadratic, grid, 300)
    _check_choice("nesterov_limit", nesterov_limit, grid, stable, "np.linspace(0.02, 0.04, 201)",
                  "is stable for Nesterov over 300 steps")
    _passed("is_stable and nesterov_limit", f"largest stable lr {float(nesterov_limit):.4f}")


def _warmup_cosine_reference(lr0: float, warmup: int, total: int, epoch: int) -> float:
    if epoch < warmup:
        return lr0 * (epoch + 1) / warmup
    span = total - warmup
    return 0.5 * lr0 * (1 + math.cos(math.pi * min(epoch - warmup, span) / span))


def check_warmup_cosine(warmup_cosine) -> None:
    """06 · Exercise 3: ``warmup_cosine(lr0, warmup, total)`` returns a schedule."""
    cases = [(0.1, 3, 18, 20), (1.0, 1, 5, 8), (0.01, 5, 10, 13)]
    for lr0, warmup, total, epochs in cases:
        call = f"warmup_cosine({lr0}, {warmup}, {total})"
        schedule = _call(warmup_cosine, "warmup_cosine", lr0, warmup, total)
        if not callable(schedule):
            raise AssertionError(f"{call} should return a schedule, a function of the epoch, "
                                 f"got {nn._kind(schedule)}.")
        got = [_call(schedule, f"the schedule of {call}", e) for e in range(epochs)]
        expected = [_warmup_cosine_reference(lr0, warmup, total, e) for e in range(epochs)]
        from_zero = [lr0 * e / warmup if e < warmup else x for e, x in enumerate(expected)]
        unshifted = [x if e < warmup else _warmup_cosine_reference(lr0, 0, total, e)
                     for e, x in enumerate(expected)]
        _expect(f"{call} at epochs 0 to {epochs - 1}", got, expected, rtol=1e-9, atol=1e-12,
                hint="epochs 0 .. warmup-1 rise as lr0 (e + 1) / warmup; then a cosine over the "
                     "remaining total - warmup epochs, started at epoch warmup",
                mistakes=[(from_zero, "the warmup starts at lr0 / warmup in epoch 0, "
                                      "lr0 (e + 1) / warmup, not at 0."),
                          (unshifted, "after the warmup, shift the epoch: the cosine starts at "
                                      "epoch `warmup` and lasts total - warmup epochs.")])
    _passed("warmup_cosine", f"{len(cases)} schedules")


def _last_step_reference(update, steps: int, **hyper) -> float:
    p, state, before = np.zeros(1), {}, np.zeros(1)
    for _ in range(steps):
        before = p.copy()
        update(p, np.ones(1), state, **hyper)
    return float(abs(p - before)[0])


def check_last_step(last_step, momentum, sgd) -> None:
    """06 · Exercise 4: ``last_step(update, steps, **hyper)``, the size of the last step under a
    constant gradient."""
    cases = [(momentum, "momentum", 500, {"lr": 0.01, "beta": 0.95}),
             (momentum, "momentum", 3, {"lr": 0.01, "beta": 0.95}),
             (momentum, "momentum", 20, {"lr": 0.1, "beta": 0.9}),
             (sgd, "sgd", 10, {"lr": 0.05})]
    for update, update_name, steps, hyper in cases:
        options = ", ".join(f"{k}={v}" for k, v in hyper.items())
        label = f"last_step({update_name}, {steps}, {options})"
        expected = _last_step_reference(update, steps, **hyper)
        mistakes = [(_position(update, steps, **hyper), "that is where p ended up, not the size "
                                                         "of its last step.")]
        if "beta" in hyper:
            mistakes.append((hyper["lr"] / (1 - hyper["beta"]), "that is the limit lr / (1 - beta)"
                             " of the formula; measure the last step of the run instead."))
        _expect(label, _call(last_step, "last_step", update, steps, **hyper), expected,
                rtol=1e-9, hint="keep a copy of p before each call; the last step is "
                                "|p - p_before| after the last call",
                mistakes=mistakes)
    top = _call(last_step, "last_step", momentum, 500, lr=0.01, beta=0.95)
    _passed("last_step", f"momentum's last step after 500 steps: {top:.6f}")


def _position(update, steps: int, **hyper) -> float:
    p, state = np.zeros(1), {}
    for _ in range(steps):
        update(p, np.ones(1), state, **hyper)
    return float(abs(p[0]))


# ---- 07 · regularization -------------------------------------------------------------------------

def _max_norm_reference(W: np.ndarray, c: float) -> np.ndarray:
    norms = np.linalg.norm(W.astype(np.float64), axis=0, keepdims=True)
    return (W * np.minimum(1.0, c / np.maximum(norms, 1e-300))).astype(W.dtype)


def check_max_norm(max_norm) -> None:
    """07 · Exercise 1: ``max_norm(W, c)`` scales every column longer than c to length c."""
    rng = np.random.default_rng(71)
    cases = [(rng.normal(size=(6, 4)), 1.5), (rng.normal(size=(784, 16)).astype(np.float32), 3.0),
             (rng.normal(scale=0.01, size=(5, 3)), 2.0), (np.zeros((3, 2)), 1.0)]
    for W, c in cases:
        label = f"max_norm({_describe(W)}, {c})"
        got = _run(max_norm, "max_norm", label, W, c)
        rows = (W * np.minimum(1.0, c / np.maximum(np.linalg.norm(W, axis=1, keepdims=True),
                                                     1e-300))).astype(W.dtype)
        everything = (W * min(1.0, c / max(np.linalg.norm(W), 1e-300))).astype(W.dtype)
        _expect(label, got, _max_norm_reference(W, c),
                rtol=1e-5 if W.dtype == np.float32 else 1e-10, atol=1e-12,
                hint="a unit's incoming weights are a column W[:, j]; scale only the columns "
                     "whose length is above c, each by c / its length",
                mistakes=[(rows, "it constrains the rows; a hidden unit's incoming weights are "
                                 "the columns of W (fan_in, fan_out): use axis=0."),
                          (everything, "it scales the whole matrix by one factor; each column "
                                       "gets its own.")])
    _passed("max_norm", f"{len(cases)} matrices, float32 and float64, short and long columns")


def _noise_reference(X: np.ndarray, std: float, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, std, size=X.shape)
    return np.clip(X + noise, 0, 1).astype(X.dtype)


def check_add_pixel_noise(add_pixel_noise) -> None:
    """07 · Exercise 2: ``add_pixel_noise(X, std, rng)`` adds clipped Gaussian noise."""
    rng = np.random.default_rng(72)
    cases = [(rng.random((20, 784), dtype=np.float32), 0.1, 5),
             (rng.random((3, 10)), 0.5, 6), (np.zeros((4, 784), dtype=np.float32), 0.0, 7)]
    for X, std, seed in cases:
        label = f"add_pixel_noise({_describe(X)}, {std}, np.random.default_rng({seed}))"
        got = _run(add_pixel_noise, "add_pixel_noise", label, X, std,
                   rng=np.random.default_rng(seed))
        noise = np.random.default_rng(seed).normal(0, std, size=X.shape)
        _expect(label, got, _noise_reference(X, std, seed), rtol=1e-6, atol=1e-7,
                hint="draw the noise once with rng.normal(0, std, size=X.shape), add it, clip to "
                     "[0, 1] and convert back to X's dtype",
                mistakes=[((X + noise).astype(X.dtype), "some pixels leave [0, 1]: clip the "
                                                        "result (np.clip)."),
                          ((X + noise), "keep the dtype of X (.astype(X.dtype)): float64 "
                                        "noise turns float32 images into float64.")])
    _passed("add_pixel_noise", f"{len(cases)} image batches")


def _classic_dropout_reference(A: np.ndarray, p: float, seed: int, train: bool) -> np.ndarray:
    if train:
        return A * (np.random.default_rng(seed).random(A.shape) >= p).astype(A.dtype)
    return A * A.dtype.type(1 - p)


def check_classic_dropout(classic_dropout) -> None:
    """07 · Exercise 3: ``classic_dropout(A, p, rng, train)``, dropout without scaling in
    training and times 1 - p in evaluation."""
    rng = np.random.default_rng(73)
    cases = [(rng.normal(size=(8, 5)), 0.5), (rng.random((64, 32), dtype=np.float32), 0.2)]
    for A, p in cases:
        for train in (True, False):
            seed = 9 + int(train)
            label = (f"classic_dropout({_describe(A)}, {p}, np.random.default_rng({seed}), "
                     f"train={train})")
            got = _run(classic_dropout, "classic_dropout", label, A, p,
                       rng=np.random.default_rng(seed), train=train)
            expected = _classic_dropout_reference(A, p, seed, train)
            keep = (np.random.default_rng(seed).random(A.shape) >= p).astype(A.dtype)
            other_masks = [A * (1 - keep),
                           A * (np.random.default_rng(seed).random(A.shape, dtype=np.float32)
                                >= p).astype(A.dtype)]
            mask_words = ("your keep-mask is not `rng.random(A.shape) >= p`: reversed (< p), or "
                          "drawn another way (another dtype or function draws other numbers).")
            mistakes = ([(A * keep / A.dtype.type(1 - p), "that is inverted dropout: the classic "
                                                          "form does not scale in training.")]
                        + [(wrong, mask_words) for wrong in other_masks]
                        if train else [(A, "in evaluation the classic form multiplies every "
                                           "unit by 1 - p (the inverted form is the one that "
                                           "leaves it alone)."),
                                       (A * A.dtype.type(p), "in evaluation multiply by the "
                                                             "probability of keeping a unit.")])
            _expect(label, got, expected, rtol=1e-6, atol=0, mistakes=mistakes,
                    hint="train: keep where rng.random(A.shape) >= p, unchanged; evaluation: "
                         "A * (1 - p), in A's dtype")
    _passed("classic_dropout", "training and evaluation, float32 and float64")


#: Each exercise's check, by notebook and exercise number.
CHECKS = {
    "01-1": check_idx_sizes, "01-2": check_class_counts, "01-3": check_batches_per_epoch,
    "01-4": check_nearest_mean,
    "02-1": check_count_parameters, "02-2": check_leaky_relu_std,
    "02-3": check_shrunk_initial_loss, "02-4": check_distinct_units,
    "03-1": check_count_mlp_params, "03-2": check_logsumexp, "03-3": check_zero_output_loss,
    "03-4": check_margin_loss,
    "04-1": check_mse_dlogits, "04-2": check_tanh_backward_from_Z,
    "04-3": check_leaky_relu_derivative, "04-4": check_pixel_gradient,
    "05-1": check_update_ratio, "05-2": check_early_stopping, "05-3": check_per_class_accuracy,
    "05-4": check_lr_for_ratio,
    "06-1": check_adagrad, "06-2": check_nesterov_limit, "06-3": check_warmup_cosine,
    "06-4": check_last_step,
    "07-1": check_max_norm, "07-2": check_add_pixel_noise, "07-3": check_classic_dropout,
}

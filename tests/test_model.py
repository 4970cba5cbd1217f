"""Unit tests of the model half of nn_helpers: layers and activations, softmax and cross-entropy,
initialisation, the MLP, and gradient checking.

Every backward pass is compared with centred finite differences computed by a loop written here
(independent of ``nn.numerical_gradient``), in float64, on several random shapes.
"""

import math

import numpy as np
import pytest

import nn_helpers as nn

SHAPES = [(1, 1, 1), (3, 4, 2), (5, 2, 7), (8, 6, 3)]  # (N, D, M)
ACTIVATION_NAMES = ["relu", "leaky_relu", "sigmoid", "tanh"]


# -------------------------------------------------------------------------------------------------
# Reference implementations written for the tests (independent of nn_helpers)
# -------------------------------------------------------------------------------------------------

def centred_diff(f, x, h=1e-6):
    """(f(x + h e_i) - f(x - h e_i)) / 2h for every entry of the float64 array x (nudged in
    place, then restored)."""
    assert x.dtype == np.float64
    grad = np.empty_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)  # views: x and grad are contiguous here
    assert np.shares_memory(flat, x)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        up = f()
        flat[i] = old - h
        down = f()
        flat[i] = old
        gflat[i] = (up - down) / (2 * h)
    return grad


def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    denom = np.linalg.norm(a) + np.linalg.norm(b)
    return 0.0 if denom == 0 else float(np.linalg.norm(a - b) / denom)


REF_ACTIVATIONS = {
    "relu": lambda z: np.where(z > 0, z, 0.0),
    "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z),
    "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
    "tanh": np.tanh,
}


def ref_mlp_logits(params, X, activation):
    L = len(params) // 2
    A = X
    for i in range(1, L + 1):
        Z = A @ params[f"W{i}"] + params[f"b{i}"]
        A = REF_ACTIVATIONS[activation](Z) if i < L else Z
    return A


def ref_cross_entropy(logits, y):
    m = logits.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(logits - m).sum(axis=1))
    return float(np.mean(lse - logits[np.arange(len(y)), y]))


def away_from_zero(rng, shape, margin=0.1):
    """Random values with |z| >= margin, both signs: no ReLU kink within reach of h."""
    return rng.choice([-1.0, 1.0], size=shape) * (margin + rng.random(shape) * 2.0)


# -------------------------------------------------------------------------------------------------
# Dense layer
# -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("N, D, M", SHAPES)
def test_dense_forward_values_and_shape(N, D, M):
    rng = np.random.default_rng(N * 100 + D * 10 + M)
    X, W, b = rng.normal(size=(N, D)), rng.normal(size=(D, M)), rng.normal(size=M)
    Z, cache = nn.dense_forward(X, W, b)
    assert Z.shape == (N, M)
    expected = np.array([[sum(X[n, d] * W[d, m] for d in range(D)) + b[m] for m in range(M)]
                         for n in range(N)])
    np.testing.assert_allclose(Z, expected, rtol=1e-12, atol=1e-12)
    assert cache[0] is X and cache[1] is W


@pytest.mark.parametrize("N, D, M", SHAPES)
def test_dense_backward_matches_finite_differences(N, D, M):
    rng = np.random.default_rng(1000 + N * 100 + D * 10 + M)
    X, W, b = rng.normal(size=(N, D)), rng.normal(size=(D, M)), rng.normal(size=M)
    R = rng.normal(size=(N, M))  # upstream gradient: loss = sum(R * Z)
    loss = lambda: float(np.sum(R * nn.dense_forward(X, W, b)[0]))  # noqa: E731
    _, cache = nn.dense_forward(X, W, b)
    dX, dW, db = nn.dense_backward(R, cache)
    assert dX.shape == X.shape and dW.shape == W.shape and db.shape == b.shape
    assert rel_err(dX, centred_diff(loss, X)) < 1e-8
    assert rel_err(dW, centred_diff(loss, W)) < 1e-8
    assert rel_err(db, centred_diff(loss, b)) < 1e-8


def test_dense_backward_need_dX_false_skips_dX_only():
    rng = np.random.default_rng(1)
    X, W, b = rng.normal(size=(4, 3)), rng.normal(size=(3, 2)), rng.normal(size=2)
    dZ = rng.normal(size=(4, 2))
    _, cache = nn.dense_forward(X, W, b)
    dX, dW, db = nn.dense_backward(dZ, cache, need_dX=False)
    assert dX is None
    _, dW_full, db_full = nn.dense_backward(dZ, cache)
    np.testing.assert_array_equal(dW, dW_full)
    np.testing.assert_array_equal(db, db_full)


@pytest.mark.parametrize("X_shape, W_shape, b_shape, match", [
    ((5, 28, 28), (784, 10), (10,), r"dense_forward expects X \(N, D\).*X \(5, 28, 28\)"),
    ((5, 784), (784,), (10,), r"dense_forward expects X \(N, D\), W \(D, M\)"),
    ((5, 784), (784, 10), (1, 10), r"b \(M,\).*b \(1, 10\)"),
    ((5, 783), (784, 10), (10,), r"do not fit; X needs 784 features"),
    ((5, 784), (784, 10), (9,), r"do not fit.*b 10 entries"),
])
def test_dense_forward_rejects_bad_shapes(X_shape, W_shape, b_shape, match):
    with pytest.raises(ValueError, match=match):
        nn.dense_forward(np.zeros(X_shape), np.zeros(W_shape), np.zeros(b_shape))


# -------------------------------------------------------------------------------------------------
# Activations
# -------------------------------------------------------------------------------------------------

def test_activation_forward_values():
    z = np.array([[-3.0, -0.5, 0.0, 0.5, 3.0]])
    np.testing.assert_array_equal(nn.relu_forward(z)[0], [[0, 0, 0, 0.5, 3.0]])
    np.testing.assert_allclose(nn.leaky_relu_forward(z)[0], [[-0.03, -0.005, 0, 0.5, 3.0]])
    np.testing.assert_allclose(nn.leaky_relu_forward(z, alpha=0.2)[0], [[-0.6, -0.1, 0, 0.5, 3]])
    sig = [1 / (1 + math.exp(3)), 1 / (1 + math.exp(0.5)), 0.5, 1 / (1 + math.exp(-0.5)),
           1 / (1 + math.exp(-3))]
    np.testing.assert_allclose(nn.sigmoid_forward(z)[0], [sig], rtol=1e-14)
    np.testing.assert_allclose(nn.tanh_forward(z)[0], [[math.tanh(v) for v in z[0]]],
                               rtol=1e-14)


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_activation_forward_matches_reference(name):
    Z = np.random.default_rng(3).normal(scale=3, size=(6, 5))
    A, _ = nn.activation_forward(Z, name)
    np.testing.assert_allclose(A, REF_ACTIVATIONS[name](Z), rtol=1e-13, atol=1e-15)


def test_sigmoid_extreme_inputs_do_not_overflow():
    z = np.array([[-1000.0, -50.0, 50.0, 1000.0]])
    with np.errstate(over="raise", invalid="raise"):  # an overflow would raise
        A, cache = nn.sigmoid_forward(z)
        dZ = nn.sigmoid_backward(np.ones_like(z), cache)
    np.testing.assert_allclose(A, [[0.0, 0.0, 1.0, 1.0]], atol=1e-20)
    assert np.isfinite(dZ).all()
    # tiny probabilities keep their relative accuracy (1 - tanh(25) would round them to 0)
    assert A[0, 1] == pytest.approx(1 / (1 + math.exp(50)), rel=1e-12)


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
@pytest.mark.parametrize("N, D, M", SHAPES)
def test_activation_backward_matches_finite_differences(name, N, D, M):
    rng = np.random.default_rng([ACTIVATION_NAMES.index(name), N, D, M])
    Z = away_from_zero(rng, (N, D * M))  # kinks of relu / leaky relu stay far from Z +- h
    R = rng.normal(size=Z.shape)
    loss = lambda: float(np.sum(R * nn.activation_forward(Z, name)[0]))  # noqa: E731
    _, cache = nn.activation_forward(Z, name)
    dZ = nn.activation_backward(R, cache)
    assert dZ.shape == Z.shape
    assert rel_err(dZ, centred_diff(loss, Z)) < 1e-8


@pytest.mark.parametrize("alpha", [0.01, 0.2])
def test_leaky_relu_backward_uses_its_alpha(alpha):
    rng = np.random.default_rng(4)
    Z = away_from_zero(rng, (4, 5))
    R = rng.normal(size=Z.shape)
    _, cache = nn.leaky_relu_forward(Z, alpha)
    dZ = nn.leaky_relu_backward(R, cache)
    loss = lambda: float(np.sum(R * nn.leaky_relu_forward(Z, alpha)[0]))  # noqa: E731
    assert rel_err(dZ, centred_diff(loss, Z)) < 1e-8
    np.testing.assert_allclose(dZ, np.where(Z > 0, R, alpha * R))


def test_relu_derivative_at_zero_is_zero():
    Z = np.zeros((2, 3))
    np.testing.assert_array_equal(nn.relu_backward(np.ones_like(Z), Z), np.zeros_like(Z))


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_activation_keeps_float32(name):
    Z = np.random.default_rng(5).normal(size=(4, 3)).astype(np.float32)
    A, cache = nn.activation_forward(Z, name)
    dZ = nn.activation_backward(np.ones_like(A), cache)
    assert A.dtype == np.float32, f"{name} forward returned {A.dtype}"
    assert dZ.dtype == np.float32, f"{name} backward returned {dZ.dtype}"


def test_dense_keeps_float32():
    rng = np.random.default_rng(6)
    X = rng.normal(size=(4, 3)).astype(np.float32)
    W = rng.normal(size=(3, 2)).astype(np.float32)
    b = np.zeros(2, np.float32)
    Z, cache = nn.dense_forward(X, W, b)
    dX, dW, db = nn.dense_backward(np.ones_like(Z), cache)
    assert {Z.dtype, dX.dtype, dW.dtype, db.dtype} == {np.dtype(np.float32)}


@pytest.mark.parametrize("bad", ["Relu", "softmax", "", "linear"])
def test_unknown_activation_name(bad):
    with pytest.raises(ValueError, match=r"unknown activation .*choose one of \['leaky_relu', "
                                         r"'relu', 'sigmoid', 'tanh'\]"):
        nn.activation_forward(np.zeros((2, 2)), bad)
    params = nn.init_mlp([2, 3, 2], rng=0)
    with pytest.raises(ValueError, match="unknown activation"):
        nn.mlp_forward(params, np.zeros((1, 2)), bad)


# -------------------------------------------------------------------------------------------------
# Softmax and cross-entropy
# -------------------------------------------------------------------------------------------------

def test_softmax_small_example():
    probs = nn.softmax(np.array([[0.0, math.log(3.0)], [1.0, 1.0]]))
    np.testing.assert_allclose(probs, [[0.25, 0.75], [0.5, 0.5]], rtol=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_rows_sum_to_one_and_are_shift_invariant(dtype):
    rng = np.random.default_rng(7)
    logits = rng.normal(scale=5, size=(6, 10)).astype(dtype)
    probs = nn.softmax(logits)
    assert probs.dtype == dtype
    tol = 1e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=tol)
    assert (probs > 0).all()
    shifted = logits + rng.normal(scale=100, size=(6, 1)).astype(dtype)  # per-row constant
    np.testing.assert_allclose(nn.softmax(shifted), probs, rtol=1e-4 if dtype == np.float32
                               else 1e-11, atol=1e-7 if dtype == np.float32 else 1e-15)
    np.testing.assert_allclose(nn.log_softmax(shifted), nn.log_softmax(logits),
                               atol=5e-5 if dtype == np.float32 else 1e-11)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_and_cross_entropy_extreme_logits(dtype):
    logits = np.array([[1e4, 0.0, 0.0],      # one dominant logit
                       [-1e4, 0.0, 0.0],     # the true class (0) has a huge negative logit
                       [1e4, -1e4, 0.0],     # mixed
                       [-1e4, -1e4, -1e4]],  # all equal and very negative
                      dtype=dtype)
    y = np.array([0, 0, 1, 2])
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow to 0 is fine
        probs = nn.softmax(logits)
        log_probs = nn.log_softmax(logits)
        loss, dlogits = nn.softmax_cross_entropy(logits, y)
        ce = nn.cross_entropy(logits, y)
    for arr in (probs, log_probs, dlogits):
        assert np.isfinite(arr).all() and arr.dtype == dtype
    np.testing.assert_allclose(probs, [[1, 0, 0], [0, 0.5, 0.5], [1, 0, 0], [1 / 3] * 3],
                               atol=1e-7)
    # per-sample losses: ~0, 1e4 + ln 2, 2e4, ln 3
    per_sample = -log_probs[np.arange(4), y]
    np.testing.assert_allclose(per_sample, [0.0, 1e4 + math.log(2), 2e4, math.log(3)],
                               rtol=1e-6, atol=1e-6)
    expected_loss = (1e4 + math.log(2) + 2e4 + math.log(3)) / 4
    assert loss == pytest.approx(expected_loss, rel=1e-6)
    assert ce == pytest.approx(expected_loss, rel=1e-6)
    expected_grad = (np.array([[1, 0, 0], [0, 0.5, 0.5], [1, 0, 0], [1 / 3] * 3])
                     - np.eye(3)[y]) / 4
    np.testing.assert_allclose(dlogits, expected_grad, atol=1e-7)


def test_log_softmax_equals_log_of_softmax_where_finite():
    logits = np.random.default_rng(8).normal(scale=10, size=(20, 7))
    probs = nn.softmax(logits)
    finite = probs > 1e-300
    np.testing.assert_allclose(nn.log_softmax(logits)[finite], np.log(probs[finite]),
                               rtol=1e-10, atol=1e-12)


def test_log_softmax_is_finite_where_log_of_softmax_is_not():
    logits = np.array([[0.0, -1000.0]])
    assert nn.softmax(logits)[0, 1] == 0.0  # exp(-1000) underflows
    np.testing.assert_allclose(nn.log_softmax(logits), [[0.0, -1000.0]], atol=1e-12)


def test_cross_entropy_value_and_uniform_logits():
    logits = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, -1.0]])
    y = np.array([0, 1])
    assert nn.cross_entropy(logits, y) == pytest.approx(ref_cross_entropy(logits, y), rel=1e-12)
    # uniform logits: ln C whatever the labels (the "loss at initialisation" check)
    assert nn.cross_entropy(np.zeros((5, 10)), np.arange(5)) == pytest.approx(math.log(10))
    assert isinstance(nn.cross_entropy(logits, y), float)


@pytest.mark.parametrize("N, C", [(1, 2), (4, 3), (7, 10)])
def test_softmax_cross_entropy_gradient_matches_finite_differences(N, C):
    rng = np.random.default_rng(N * 10 + C)
    logits = rng.normal(scale=2, size=(N, C))
    y = rng.integers(0, C, size=N)
    loss, dlogits = nn.softmax_cross_entropy(logits, y)
    assert loss == pytest.approx(ref_cross_entropy(logits, y), rel=1e-12)
    assert loss == pytest.approx(nn.cross_entropy(logits, y), rel=1e-14)
    numeric = centred_diff(lambda: nn.softmax_cross_entropy(logits, y)[0], logits)
    assert rel_err(dlogits, numeric) < 1e-7
    np.testing.assert_allclose(dlogits.sum(axis=1), 0.0, atol=1e-15)  # softmax - one_hot
    assert isinstance(loss, float)


def test_softmax_cross_entropy_keeps_float32():
    logits = np.random.default_rng(9).normal(size=(5, 4)).astype(np.float32)
    loss, dlogits = nn.softmax_cross_entropy(logits, np.array([0, 1, 2, 3, 0]))
    assert dlogits.dtype == np.float32 and np.isfinite(loss)
    assert nn.log_softmax(logits).dtype == np.float32


@pytest.mark.parametrize("fn", [nn.cross_entropy, nn.softmax_cross_entropy],
                         ids=["cross_entropy", "softmax_cross_entropy"])
@pytest.mark.parametrize("y, error, match", [
    (np.array([0, 1, 3]), ValueError, r"labels in \[0, 3\).*3 .*at index 2"),
    (np.array([0, -1, 2]), ValueError, r"labels in \[0, 3\).*-1 at index 1"),
    (np.array([0.0, 1.0, 2.0]), TypeError, r"integers.*float64.*astype\(np.int64\)"),
    (np.eye(3, dtype=np.int64), ValueError, r"shape \(N,\).*\(3, 3\).*one-hot"),
    (np.array([0, 1]), ValueError, r"2 labels but there are 3 samples"),
])
def test_bad_labels_are_refused(fn, y, error, match):
    with pytest.raises(error, match=match):
        fn(np.zeros((3, 3)), y)


@pytest.mark.parametrize("fn", [nn.softmax, nn.log_softmax,
                                lambda z: nn.cross_entropy(z, np.array([0, 1])),
                                lambda z: nn.softmax_cross_entropy(z, np.array([0, 1]))],
                         ids=["softmax", "log_softmax", "cross_entropy", "softmax_cross_entropy"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_logits_are_refused(fn, bad):
    logits = np.zeros((2, 3))
    logits[1, 2] = bad
    with pytest.raises(ValueError, match="NaN or inf.*learning rate"):
        fn(logits)


@pytest.mark.parametrize("fn", [nn.softmax, nn.log_softmax,
                                lambda z: nn.softmax_cross_entropy(z, np.array([0, 1]))],
                         ids=["softmax", "log_softmax", "softmax_cross_entropy"])
def test_logits_must_be_2d(fn):
    with pytest.raises(ValueError, match=r"logits must have shape \(N, C\), got \(2,\)"):
        fn(np.zeros(2))


def test_cross_entropy_names_1d_logits_as_the_problem():
    # Found by these tests: cross_entropy checks the labels against num_classes=0 first and
    # reports "y must hold labels in [0, 0)", which points at the wrong argument.
    with pytest.raises(ValueError, match=r"logits must have shape \(N, C\), got \(2,\)"):
        nn.cross_entropy(np.zeros(2), np.array([0, 1]))


# -------------------------------------------------------------------------------------------------
# Initialisation
# -------------------------------------------------------------------------------------------------

FAN_IN, FAN_OUT = 100, 1000  # unequal fans so lecun, xavier and he all differ


@pytest.mark.parametrize("scheme, expected_std", [
    ("normal", 0.02),                                # the `scale` argument
    ("lecun", math.sqrt(1 / FAN_IN)),                # 0.1
    ("xavier", math.sqrt(2 / (FAN_IN + FAN_OUT))),   # 0.0426
    ("he", math.sqrt(2 / FAN_IN)),                   # 0.1414
])
def test_init_weights_std_matches_formula(scheme, expected_std):
    W = nn.init_weights(FAN_IN, FAN_OUT, scheme, rng=0, dtype=np.float64, scale=0.02)
    assert W.shape == (FAN_IN, FAN_OUT) and W.dtype == np.float64
    assert W.std() == pytest.approx(expected_std, rel=0.02)  # sampling error ~0.2 %
    assert abs(W.mean()) < 4 * expected_std / math.sqrt(W.size)
    # roughly Gaussian: ~68.3 % within one std
    assert np.mean(np.abs(W) < expected_std) == pytest.approx(0.6827, abs=0.01)


def test_init_weights_zeros_and_scale():
    W = nn.init_weights(5, 7, "zeros", rng=0)
    assert W.shape == (5, 7) and W.dtype == np.float32 and not W.any()
    W1 = nn.init_weights(300, 300, "normal", rng=0, scale=0.1, dtype=np.float64)
    W2 = nn.init_weights(300, 300, "normal", rng=0, scale=0.3, dtype=np.float64)
    np.testing.assert_allclose(W2, 3 * W1, rtol=1e-12)


@pytest.mark.parametrize("scheme", sorted(nn.INIT_SCHEMES))
def test_init_weights_reproducible_and_dtype(scheme):
    a = nn.init_weights(20, 30, scheme, rng=42)
    b = nn.init_weights(20, 30, scheme, rng=np.random.default_rng(42))
    assert a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    if scheme != "zeros":
        assert not np.array_equal(a, nn.init_weights(20, 30, scheme, rng=43))
    assert nn.init_weights(20, 30, scheme, rng=42, dtype=np.float64).dtype == np.float64


def test_unknown_init_scheme():
    with pytest.raises(ValueError, match=r"unknown init scheme 'glorot'; choose one of "
                                         r"\['he', 'lecun', 'normal', 'xavier', 'zeros'\]"):
        nn.init_weights(3, 4, "glorot", rng=0)
    with pytest.raises(ValueError, match="unknown init scheme 'kaiming'"):
        nn.init_mlp([3, 4, 2], "kaiming", rng=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_init_mlp_shapes_dtype_and_zero_biases(dtype):
    params = nn.init_mlp([6, 5, 4, 3], rng=0, dtype=dtype)
    assert list(params) == ["W1", "b1", "W2", "b2", "W3", "b3"]
    shapes = {k: v.shape for k, v in params.items()}
    assert shapes == {"W1": (6, 5), "b1": (5,), "W2": (5, 4), "b2": (4,), "W3": (4, 3),
                      "b3": (3,)}
    assert all(v.dtype == dtype for v in params.values())
    for i in (1, 2, 3):
        assert not params[f"b{i}"].any(), f"b{i} must start at zero"
        assert params[f"W{i}"].any()
    assert nn.num_layers(params) == 3 and nn.count_params(params) == 30 + 5 + 20 + 4 + 12 + 3


def test_init_mlp_reproducible_and_layers_differ():
    a = nn.init_mlp([8, 8, 8], rng=1)
    b = nn.init_mlp([8, 8, 8], rng=np.random.default_rng(1))
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["W1"], a["W2"]), "each layer needs its own draw"
    c = nn.init_mlp([8, 8, 8], rng=2)
    assert not np.array_equal(a["W1"], c["W1"])


def test_init_mlp_uses_the_scheme_per_layer():
    params = nn.init_mlp([400, 100, 100], "he", rng=0, dtype=np.float64)
    assert params["W1"].std() == pytest.approx(math.sqrt(2 / 400), rel=0.03)
    assert params["W2"].std() == pytest.approx(math.sqrt(2 / 100), rel=0.03)
    small = nn.init_mlp([400, 100, 100], "normal", rng=0, dtype=np.float64, scale=0.05)
    assert small["W2"].std() == pytest.approx(0.05, rel=0.03)


@pytest.mark.parametrize("sizes", [[784], [], [784, 0, 10], [784, -3, 10], [784, 128.0, 10],
                                   "784", [784, "128", 10]])
def test_init_mlp_rejects_bad_layer_sizes(sizes):
    with pytest.raises(ValueError, match=r"layer_sizes must be two or more positive ints"):
        nn.init_mlp(sizes, rng=0)


def test_init_weights_rejects_non_positive_fans():
    # Found by these tests: init_weights(0, 3) divides by zero (ZeroDivisionError) instead of
    # raising the ValueError that the project's conventions promise.
    for fan_in, fan_out in [(0, 3), (3, 0), (-1, 3)]:
        with pytest.raises(ValueError, match=r"fan_in and fan_out must be positive"):
            nn.init_weights(fan_in, fan_out, "he", rng=0)


# -------------------------------------------------------------------------------------------------
# The model
# -------------------------------------------------------------------------------------------------

def make_problem(sizes, seed, dtype=np.float64, N=5):
    rng = np.random.default_rng(seed)
    params = nn.init_mlp(sizes, "xavier", rng=rng, dtype=dtype)
    for k in params:
        if k.startswith("b"):  # non-zero, non-symmetric biases so no gradient hides
            params[k] = rng.normal(scale=0.5, size=params[k].shape).astype(dtype)
    X = rng.normal(size=(N, sizes[0])).astype(dtype)
    y = rng.integers(0, sizes[-1], size=N)
    return params, X, y


@pytest.mark.parametrize("activation", ACTIVATION_NAMES)
@pytest.mark.parametrize("sizes", [[4, 3], [4, 5, 3], [3, 6, 4, 5]])
def test_mlp_forward_matches_reference(sizes, activation):
    params, X, _ = make_problem(sizes, seed=len(sizes))
    logits, caches = nn.mlp_forward(params, X, activation)
    assert logits.shape == (len(X), sizes[-1])
    assert len(caches) == len(sizes) - 1
    assert caches[-1][1] is None, "the last layer has no activation"
    np.testing.assert_allclose(logits, ref_mlp_logits(params, X, activation), rtol=1e-12,
                               atol=1e-12)


def test_mlp_forward_keeps_float32_and_accepts_lists():
    params, X, _ = make_problem([4, 5, 3], seed=0, dtype=np.float32)
    assert nn.mlp_forward(params, X)[0].dtype == np.float32
    np.testing.assert_array_equal(nn.mlp_forward(params, X.tolist())[0].shape, (5, 3))


def test_mlp_forward_explains_unflattened_images():
    params = nn.init_mlp([784, 16, 10], rng=0)
    with pytest.raises(ValueError, match=r"expected X with 784 features, shape \(N, 784\), got "
                                         r"shape \(3, 28, 28\); flatten the images first"):
        nn.mlp_forward(params, np.zeros((3, 28, 28), np.float32))
    with pytest.raises(ValueError, match=r"784 features.*got shape \(3, 783\)"):
        nn.mlp_forward(params, np.zeros((3, 783), np.float32))
    with pytest.raises(ValueError, match=r"got shape \(784,\)"):
        nn.mlp_forward(params, np.zeros(784, np.float32))


@pytest.mark.parametrize("sizes, L", [([3, 2], 1), ([3, 4, 2], 2), ([3, 4, 5, 2], 3)])
def test_num_layers(sizes, L):
    assert nn.num_layers(nn.init_mlp(sizes, rng=0)) == L


@pytest.mark.parametrize("mutate, match", [
    (lambda p: p.pop("b2"), r"named W1, b1, \.\.\., Wn, bn; got \['W1', 'W2', 'b1'\]"),
    (lambda p: p.pop("W1"), r"named W1, b1"),
    (lambda p: p.update(W3=np.zeros((2, 2))), r"named W1, b1.*'W3'"),
    (lambda p: p.update(extra=np.zeros(2)), r"named W1, b1.*'extra'"),
    (lambda p: p.update(b1=np.zeros(5)), r"W1 \(3, 4\) and b1 \(5,\) do not fit"),
    (lambda p: p.update(b1=np.zeros((1, 4))), r"b1 \(1, 4\) do not fit"),
    (lambda p: p.update(W2=np.zeros((5, 2))), r"W1 \(3, 4\) is followed by W2 \(5, 2\).*fan_out"),
    (lambda p: p.clear(), r"named W1, b1.*got \[\]"),
])
def test_num_layers_rejects_bad_params(mutate, match):
    params = nn.init_mlp([3, 4, 2], rng=0)
    mutate(params)
    with pytest.raises(ValueError, match=match):
        nn.num_layers(params)
    with pytest.raises(ValueError, match=match):
        nn.mlp_forward(params, np.zeros((1, 3)))


# -------------------------------------------------------------------------------------------------
# Backpropagation through the whole MLP, and the gradient checker itself
# -------------------------------------------------------------------------------------------------

MLP_CASES = [([4, 3], 6), ([4, 5, 3], 5), ([3, 6, 4, 5], 4)]  # depth 1, 2, 3; (sizes, N)


@pytest.mark.parametrize("activation", ACTIVATION_NAMES)
@pytest.mark.parametrize("sizes, N", MLP_CASES, ids=["depth1", "depth2", "depth3"])
def test_mlp_backward_matches_independent_finite_differences(sizes, N, activation):
    params, X, y = make_problem(sizes, seed=10 * len(sizes) + N, N=N)
    loss, grads = nn.mlp_loss_and_grads(params, X, y, activation)
    assert loss == pytest.approx(ref_cross_entropy(ref_mlp_logits(params, X, activation), y),
                                 rel=1e-12)
    logits, caches = nn.mlp_forward(params, X, activation)
    grads2 = nn.mlp_backward(nn.softmax_cross_entropy(logits, y)[1], caches)
    assert set(grads) == set(params) == set(grads2)
    ref_loss = lambda: ref_cross_entropy(ref_mlp_logits(params, X, activation), y)  # noqa: E731
    for k in params:
        assert grads[k].shape == params[k].shape and grads[k].dtype == np.float64
        np.testing.assert_array_equal(grads[k], grads2[k])
        numeric = centred_diff(ref_loss, params[k])
        err = rel_err(grads[k], numeric)
        assert err < 1e-7, f"{k} ({activation}, depth {len(sizes) - 1}): relative error {err:.2e}"
        # nn.numerical_gradient agrees with this independent loop
        theirs = nn.numerical_gradient(ref_loss, params[k], h=1e-6)
        assert rel_err(theirs, numeric) < 1e-9


@pytest.mark.parametrize("activation", ACTIVATION_NAMES)
@pytest.mark.parametrize("sizes, N", MLP_CASES, ids=["depth1", "depth2", "depth3"])
def test_check_mlp_gradients_reports_small_errors(sizes, N, activation):
    params, X, y = make_problem(sizes, seed=20 * len(sizes) + N, N=N, dtype=np.float32)
    before = {k: v.copy() for k, v in params.items()}
    errors = nn.check_mlp_gradients(params, X, y, activation)
    assert set(errors) == set(params)
    assert max(errors.values()) < 1e-7, errors
    for k in params:  # the checker works on float64 copies, never on the caller's params
        assert params[k].dtype == np.float32
        np.testing.assert_array_equal(params[k], before[k])


def test_check_mlp_gradients_catches_a_wrong_backward(monkeypatch):
    params, X, y = make_problem([4, 5, 3], seed=0, N=6)
    assert max(nn.check_mlp_gradients(params, X, y, "tanh").values()) < 1e-7
    wrong = lambda dA, A: dA * (1 - A)  # noqa: E731  (forgot to square A)
    monkeypatch.setitem(nn.ACTIVATIONS, "tanh", (nn.tanh_forward, wrong))
    errors = nn.check_mlp_gradients(params, X, y, "tanh")
    assert errors["W1"] > 1e-3 and errors["b1"] > 1e-3, errors
    assert errors["W2"] < 1e-7 and errors["b2"] < 1e-7, "layers after the bug stay right"


# -------------------------------------------------------------------------------------------------
# numerical_gradient and relative_error
# -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(3,), (2, 3), (2, 2, 2)])
def test_numerical_gradient_known_function(shape):
    rng = np.random.default_rng(len(shape))
    x = rng.normal(size=shape)
    c = rng.normal(size=shape)
    x0 = x.copy()
    f = lambda: float(np.sum(c * np.sin(x)) + np.sum(x ** 3))  # noqa: E731
    grad = nn.numerical_gradient(f, x)
    np.testing.assert_allclose(grad, c * np.cos(x0) + 3 * x0 ** 2, rtol=1e-8, atol=1e-9)
    np.testing.assert_array_equal(x, x0)  # nudged in place and restored exactly
    assert grad.shape == x.shape and grad.dtype == np.float64


def test_numerical_gradient_step_size_matters():
    x = np.array([0.7])
    f = lambda: float(np.exp(x[0]))  # noqa: E731
    coarse = nn.numerical_gradient(f, x, h=0.5)[0]
    fine = nn.numerical_gradient(f, x, h=1e-5)[0]
    # centred difference error is h^2/6 f'''(x) to leading order
    assert coarse - math.exp(0.7) == pytest.approx(0.25 / 6 * math.exp(0.7), rel=0.02)
    assert fine == pytest.approx(math.exp(0.7), rel=1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int64])
def test_numerical_gradient_refuses_non_float64(dtype):
    x = np.ones(3, dtype=dtype)
    with pytest.raises(TypeError, match=r"needs float64 arrays, got .*x.astype\(np.float64\)"):
        nn.numerical_gradient(lambda: float(x.sum()), x)


def test_relative_error_properties():
    rng = np.random.default_rng(11)
    a, b = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    assert nn.relative_error(a, a) == 0.0
    assert nn.relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert nn.relative_error(a, -a) == pytest.approx(1.0)
    assert nn.relative_error(a, b) == pytest.approx(nn.relative_error(b, a))
    assert nn.relative_error(1e-9 * a, 1e-9 * b) == pytest.approx(nn.relative_error(a, b))
    assert 0 < nn.relative_error(a, b) <= 1.0
    assert nn.relative_error([1.0, 0.0], [0.0, 1.0]) == pytest.approx(math.sqrt(2) / 2)
    assert nn.relative_error(a, a * (1 + 1e-9)) == pytest.approx(0.5e-9, rel=1e-3)
    assert isinstance(nn.relative_error(a, b), float)
    with pytest.raises(ValueError, match=r"equal shapes, got \(4, 3\) and \(3, 4\)"):
        nn.relative_error(a, a.T)

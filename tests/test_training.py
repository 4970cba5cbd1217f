"""Unit tests of the training half of nn_helpers: optimizers and learning-rate schedules, fit,
evaluation, saving and loading parameters (check_exercise: tests/test_check_exercise.py).

The optimizer tests compare the first three updates with values worked out by hand here, from a
fixed gradient sequence, never with the optimizer's own formula.
"""

import math
import os

import numpy as np
import pytest

import nn_helpers as nn

# -------------------------------------------------------------------------------------------------
# Optimizers: three steps by hand
# -------------------------------------------------------------------------------------------------
# Parameter p0 and gradients g1, g2, g3 (one per step), small numbers so the arithmetic can be
# followed on paper. lr = 0.1 throughout; beta = 0.5 for the momentum family.

P0 = [1.0, -1.0]
G = [np.array([1.0, -2.0]), np.array([0.5, 0.5]), np.array([-1.0, 1.0])]


def run_three_steps(optimizer, dtype=np.float64):
    params = {"w": np.array(P0, dtype=dtype)}
    w = params["w"]
    trajectory = []
    for g in G:
        optimizer.step(params, {"w": g.astype(dtype)})
        assert params["w"] is w, "step must update the array in place"
        trajectory.append(params["w"].copy())
    return trajectory


def assert_steps(trajectory, expected, atol=1e-12):
    for t, (got, want) in enumerate(zip(trajectory, expected), start=1):
        np.testing.assert_allclose(got, want, rtol=0, atol=atol, err_msg=f"after step {t}")


def test_sgd_three_steps():
    # p <- p - 0.1 g
    p1 = [1.0 - 0.1 * 1.0, -1.0 - 0.1 * -2.0]          # [0.9, -0.8]
    p2 = [0.9 - 0.1 * 0.5, -0.8 - 0.1 * 0.5]           # [0.85, -0.85]
    p3 = [0.85 - 0.1 * -1.0, -0.85 - 0.1 * 1.0]        # [0.95, -0.95]
    assert_steps(run_three_steps(nn.SGD(0.1)), [p1, p2, p3])
    np.testing.assert_allclose(p3, [0.95, -0.95])


def test_momentum_three_steps():
    # v <- 0.5 v - 0.1 g;  p <- p + v
    # v1 = [-0.1, 0.2]                                  p1 = [0.9, -0.8]
    # v2 = [-0.05 - 0.05, 0.1 - 0.05] = [-0.1, 0.05]    p2 = [0.8, -0.75]
    # v3 = [-0.05 + 0.1, 0.025 - 0.1] = [0.05, -0.075]  p3 = [0.85, -0.825]
    assert_steps(run_three_steps(nn.Momentum(0.1, beta=0.5)),
                 [[0.9, -0.8], [0.8, -0.75], [0.85, -0.825]])


def test_ema_momentum_three_steps():
    # v <- 0.5 v + 0.5 g;  p <- p - 0.1 v
    # v1 = [0.5, -1.0]                                  p1 = [0.95, -0.9]
    # v2 = [0.25 + 0.25, -0.5 + 0.25] = [0.5, -0.25]    p2 = [0.9, -0.875]
    # v3 = [0.25 - 0.5, -0.125 + 0.5] = [-0.25, 0.375]  p3 = [0.925, -0.9125]
    assert_steps(run_three_steps(nn.EMAMomentum(0.1, beta=0.5)),
                 [[0.95, -0.9], [0.9, -0.875], [0.925, -0.9125]])


def test_nesterov_three_steps():
    # v <- 0.5 v - 0.1 g;  p <- p + 0.5 v - 0.1 g   (v as for Momentum)
    # p1 = [1 - 0.05 - 0.1, -1 + 0.1 + 0.2]         = [0.85, -0.7]
    # p2 = [0.85 - 0.05 - 0.05, -0.7 + 0.025 - 0.05] = [0.75, -0.725]
    # p3 = [0.75 + 0.025 + 0.1, -0.725 - 0.0375 - 0.1] = [0.875, -0.8625]
    assert_steps(run_three_steps(nn.Nesterov(0.1, beta=0.5)),
                 [[0.85, -0.7], [0.75, -0.725], [0.875, -0.8625]])


def test_rmsprop_three_steps():
    # s <- 0.5 s + 0.5 g^2;  p <- p - 0.1 g / sqrt(s)   (eps = 1e-8 is below the tolerance)
    # s1 = [0.5, 2.0]
    # s2 = [0.25 + 0.125, 1.0 + 0.125] = [0.375, 1.125]
    # s3 = [0.1875 + 0.5, 0.5625 + 0.5] = [0.6875, 1.0625]
    p1 = np.array([1.0 - 0.1 * 1.0 / math.sqrt(0.5), -1.0 + 0.1 * 2.0 / math.sqrt(2.0)])
    p2 = p1 - 0.1 * np.array([0.5 / math.sqrt(0.375), 0.5 / math.sqrt(1.125)])
    p3 = p2 - 0.1 * np.array([-1.0 / math.sqrt(0.6875), 1.0 / math.sqrt(1.0625)])
    np.testing.assert_allclose(p1, [0.858578644, -0.858578644], atol=1e-9)
    np.testing.assert_allclose(p3, [0.897533524, -1.002733346], atol=1e-9)
    assert_steps(run_three_steps(nn.RMSProp(0.1, rho=0.5)), [p1, p2, p3], atol=1e-8)


def test_adam_three_steps():
    # m <- 0.5 m + 0.5 g;  v <- 0.75 v + 0.25 g^2;  m_hat = m / (1 - 0.5^t);
    # v_hat = v / (1 - 0.75^t);  p <- p - 0.1 m_hat / sqrt(v_hat)   (eps = 1e-8)
    # t=1: m = [0.5, -1],     v = [0.25, 1];          m_hat = [1, -2], v_hat = [1, 4]
    p1 = np.array([1.0 - 0.1 * 1 / 1, -1.0 - 0.1 * -2 / 2])                    # [0.9, -0.9]
    # t=2: m = [0.25 + 0.25, -0.5 + 0.25] = [0.5, -0.25]
    #      v = [0.1875 + 0.0625, 0.75 + 0.0625] = [0.25, 0.8125]
    #      1 - 0.5^2 = 0.75;  1 - 0.75^2 = 0.4375
    p2 = p1 - 0.1 * (np.array([0.5, -0.25]) / 0.75) / np.sqrt(np.array([0.25, 0.8125]) / 0.4375)
    # t=3: m = [0.25 - 0.5, -0.125 + 0.5] = [-0.25, 0.375]
    #      v = [0.1875 + 0.25, 0.609375 + 0.25] = [0.4375, 0.859375]
    #      1 - 0.5^3 = 0.875;  1 - 0.75^3 = 0.578125
    p3 = p2 - 0.1 * (np.array([-0.25, 0.375]) / 0.875) / np.sqrt(
        np.array([0.4375, 0.859375]) / 0.578125)
    np.testing.assert_allclose(p1, [0.9, -0.9])
    np.testing.assert_allclose(p2, [0.811808290, -0.875539934], atol=1e-8)
    assert_steps(run_three_steps(nn.Adam(0.1, beta1=0.5, beta2=0.75)), [p1, p2, p3], atol=1e-7)


def test_adam_first_step_is_lr_times_sign_with_default_betas():
    g = np.array([1e-3, -5.0, 100.0, -0.02])
    params = {"w": np.zeros(4)}
    nn.Adam(lr=0.01).step(params, {"w": g})
    np.testing.assert_allclose(params["w"], -0.01 * np.sign(g), rtol=1e-4)


def test_ema_momentum_equals_momentum_with_scaled_lr():
    rng = np.random.default_rng(0)
    grads = [rng.normal(size=(3, 2)) for _ in range(8)]
    start = rng.normal(size=(3, 2))
    a, b = {"W": start.copy()}, {"W": start.copy()}
    ema, classical = nn.EMAMomentum(0.5, beta=0.9), nn.Momentum(0.5 * (1 - 0.9), beta=0.9)
    for g in grads:
        ema.step(a, {"W": g})
        classical.step(b, {"W": g})
        np.testing.assert_allclose(a["W"], b["W"], rtol=1e-12, atol=1e-14)
    assert not np.allclose(a["W"], start), "the parameters must have moved"


def test_nesterov_equals_gradient_at_the_look_ahead_point():
    # On f(theta) = 0.5 * a * theta^2 (gradient a * theta), the textbook form evaluates the
    # gradient at theta + beta v and steps theta <- theta + v. nn.Nesterov's parameter is that
    # look-ahead point, phi = theta + beta v.
    a, lr, beta = np.array([1.0, 4.0]), 0.05, 0.9
    theta, v = np.array([1.0, -2.0]), np.zeros(2)
    params = {"w": theta.copy()}  # phi_0 = theta_0 because v_0 = 0
    opt = nn.Nesterov(lr, beta)
    for _ in range(5):
        v = beta * v - lr * a * (theta + beta * v)
        theta = theta + v
        opt.step(params, {"w": a * params["w"]})
        np.testing.assert_allclose(params["w"], theta + beta * v, rtol=1e-12)


def test_optimizers_keep_state_per_parameter_name():
    opt = nn.Momentum(0.1, beta=0.5)
    params = {"a": np.array([1.0, -1.0]), "b": np.array([0.0, 0.0])}
    for g in G:
        opt.step(params, {"a": g, "b": -g})
    np.testing.assert_allclose(params["a"], [0.85, -0.825])     # as in test_momentum_three_steps
    np.testing.assert_allclose(params["b"], [0.15, -0.175])     # the mirror image of a's move
    assert opt.t == 3


def test_lr_may_change_between_steps():
    opt = nn.SGD(0.1)
    params = {"w": np.array([1.0])}
    opt.step(params, {"w": np.array([1.0])})
    opt.lr = 0.01
    opt.step(params, {"w": np.array([1.0])})
    np.testing.assert_allclose(params["w"], [1.0 - 0.1 - 0.01])


@pytest.mark.parametrize("name", sorted(nn.OPTIMIZERS))
@pytest.mark.parametrize("grad_dtype", [np.float32, np.float64])
def test_optimizers_keep_float32_params(name, grad_dtype):
    rng = np.random.default_rng(1)
    params = nn.init_mlp([4, 3, 2], rng=0)
    arrays = dict(params)
    opt = nn.OPTIMIZERS[name](lr=0.01)
    for _ in range(3):
        grads = {k: rng.normal(size=v.shape).astype(grad_dtype) for k, v in params.items()}
        opt.step(params, grads)
    for k, v in params.items():
        assert v.dtype == np.float32, f"{name} turned {k} into {v.dtype}"
        assert v is arrays[k], f"{name} replaced {k} instead of updating it in place"
        assert np.isfinite(v).all()
    assert not np.array_equal(params["b1"], np.zeros(3, np.float32))


@pytest.mark.parametrize("name", sorted(nn.OPTIMIZERS))
@pytest.mark.parametrize("lr", [0, 0.0, -0.1, float("nan")])
def test_optimizer_lr_must_be_positive(name, lr):
    with pytest.raises(ValueError, match=r"lr must be a positive number, got"):
        nn.OPTIMIZERS[name](lr=lr)


def test_optimizer_rejects_mismatched_names_and_shapes():
    opt = nn.SGD(0.1)
    params = {"W1": np.zeros((2, 3)), "b1": np.zeros(3)}
    with pytest.raises(ValueError, match=r"same names, got \['W1', 'b1'\] and \['W1'\]"):
        opt.step(params, {"W1": np.zeros((2, 3))})
    with pytest.raises(ValueError, match=r"same names.*\['W1', 'b1', 'b2'\]"):
        opt.step(params, {"W1": np.zeros((2, 3)), "b1": np.zeros(3), "b2": np.zeros(3)})
    with pytest.raises(ValueError, match=r"grad W1 has shape \(3, 2\), param has \(2, 3\)"):
        opt.step(params, {"W1": np.zeros((3, 2)), "b1": np.zeros(3)})


def test_optimizer_repr_names_its_settings():
    assert repr(nn.SGD(0.1)) == "SGD(lr=0.1)"
    assert repr(nn.Momentum(0.05, beta=0.8)) == "Momentum(lr=0.05, beta=0.8)"
    assert "Adam(lr=0.001, beta1=0.9, beta2=0.999, eps=1e-08)" == repr(nn.Adam())


def test_optimizers_table():
    assert nn.OPTIMIZERS == {"sgd": nn.SGD, "momentum": nn.Momentum,
                             "ema_momentum": nn.EMAMomentum, "nesterov": nn.Nesterov,
                             "rmsprop": nn.RMSProp, "adam": nn.Adam, "adamw": nn.AdamW}


# -------------------------------------------------------------------------------------------------
# Learning-rate schedules
# -------------------------------------------------------------------------------------------------

def test_constant_lr():
    sched = nn.constant_lr(0.3)
    assert [sched(e) for e in (0, 1, 7, 1000)] == [0.3, 0.3, 0.3, 0.3]


def test_step_decay_values():
    sched = nn.step_decay(0.1, drop=0.5, every=5)
    got = [sched(e) for e in (0, 4, 5, 9, 10, 14, 15, 100)]
    want = [0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.0125, 0.1 * 0.5 ** 20]
    np.testing.assert_allclose(got, want, rtol=1e-15)
    default = nn.step_decay(1.0)  # drop 0.5 every 5 epochs
    assert [default(e) for e in (0, 5, 10)] == [1.0, 0.5, 0.25]
    tenth = nn.step_decay(0.2, drop=0.1, every=3)
    np.testing.assert_allclose([tenth(e) for e in (2, 3, 6)], [0.2, 0.02, 0.002], rtol=1e-12)


def test_step_decay_rejects_bad_every():
    # Found by these tests: step_decay(0.1, every=0) is accepted and only fails later, inside
    # fit, with ZeroDivisionError.
    with pytest.raises(ValueError, match=r"every must be a positive integer, got 0"):
        nn.step_decay(0.1, every=0)


def test_cosine_decay_values():
    sched = nn.cosine_decay(0.1, total=10, lr_min=0.001)
    assert sched(0) == pytest.approx(0.1, rel=1e-14)
    assert sched(5) == pytest.approx((0.1 + 0.001) / 2, rel=1e-14)               # middle
    assert sched(2) == pytest.approx(0.001 + 0.099 * (1 + 0.8090169943749475) / 2, rel=1e-12)
    assert sched(10) == pytest.approx(0.001, rel=1e-12)                            # end
    assert sched(11) == pytest.approx(0.001, rel=1e-12) and sched(50) == sched(10)  # after
    values = [sched(e) for e in range(12)]
    assert all(a >= b for a, b in zip(values, values[1:])), "must never increase"
    assert nn.cosine_decay(1.0, total=4)(4) == pytest.approx(0.0, abs=1e-15)
    assert nn.cosine_decay(1.0, total=4)(1) == pytest.approx((1 + math.sqrt(0.5)) / 2)


@pytest.mark.parametrize("total", [0, -3])
def test_cosine_decay_rejects_bad_total(total):
    with pytest.raises(ValueError, match=f"total must be a positive integer, got {total}"):
        nn.cosine_decay(0.1, total=total)


# -------------------------------------------------------------------------------------------------
# fit
# -------------------------------------------------------------------------------------------------

X_XOR = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
Y_XOR = np.array([0, 1, 1, 0])
HISTORY_KEYS = {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "train_seconds",
                "eval_seconds"}


def blobs(n_per_class=30, seed=0, dtype=np.float32):
    """Three well-separated Gaussian blobs in 2-D, labels 0, 1, 2."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 3.0], [3.0, -1.5], [-3.0, -1.5]])
    X = np.concatenate([c + 0.6 * rng.standard_normal((n_per_class, 2)) for c in centres])
    y = np.repeat(np.arange(3), n_per_class)
    return X.astype(dtype), y


class Recorder(nn.Optimizer):
    """An optimizer that changes nothing and records the lr and the grads it was given."""

    def __init__(self, lr=0.1):
        super().__init__(lr)
        self.lrs, self.grad_names = [], []

    def step(self, params, grads):
        self.lrs.append(self.lr)
        self.grad_names.append(sorted(grads))
        super().step(params, grads)

    def _update(self, name, p, g):
        pass


@pytest.mark.parametrize("activation, make_optimizer", [
    ("tanh", lambda: nn.Adam(0.05)),
    ("relu", lambda: nn.Momentum(0.1, beta=0.9)),
], ids=["tanh-adam", "relu-momentum"])
def test_fit_learns_xor(activation, make_optimizer):
    params = nn.init_mlp([2, 8, 2], "xavier", rng=0)
    loss0, _ = nn.evaluate(params, X_XOR, Y_XOR, activation)
    history = nn.fit(params, X_XOR, Y_XOR, X_XOR, Y_XOR, optimizer=make_optimizer(), epochs=200,
                     batch_size=4, activation=activation, rng=0, verbose=False)
    loss, acc = nn.evaluate(params, X_XOR, Y_XOR, activation)
    assert loss0 > 0.5, "XOR is not solved at initialisation"
    assert acc == 1.0 and loss < 0.02, f"loss {loss:.4f}, accuracy {acc}"
    np.testing.assert_array_equal(nn.predict(params, X_XOR, activation), Y_XOR)
    assert history["val_acc"][-1] == 1.0 and history["val_loss"][-1] == loss
    assert all(v.dtype == np.float32 for v in params.values())


def test_fit_learns_blobs_with_minibatches():
    X, y = blobs(seed=0)
    X_val, y_val = blobs(n_per_class=20, seed=1)
    params = nn.init_mlp([2, 16, 3], rng=0)
    history = nn.fit(params, X, y, X_val, y_val, optimizer=nn.SGD(0.1), epochs=15,
                     batch_size=16, rng=1, verbose=False)
    assert history["val_acc"][-1] >= 0.95, history["val_acc"]
    assert history["train_loss"][-1] < 0.5 * history["train_loss"][0], history["train_loss"]


def test_fit_history_keys_and_lengths():
    X, y = blobs(n_per_class=10)
    params = nn.init_mlp([2, 5, 3], rng=0)
    history = nn.fit(params, X, y, X[:9], y[:9], optimizer=nn.SGD(0.05), epochs=4,
                     batch_size=7, rng=0, verbose=False)
    assert set(history) == HISTORY_KEYS
    assert all(len(v) == 4 for v in history.values()), {k: len(v) for k, v in history.items()}
    assert history["epoch"] == [1, 2, 3, 4]
    assert history["lr"] == [0.05] * 4
    for key in ("train_acc", "val_acc"):
        assert all(0.0 <= a <= 1.0 for a in history[key])
    assert all(t >= 0 for t in history["train_seconds"] + history["eval_seconds"])
    # the last validation entry is the final model's
    assert (history["val_loss"][-1], history["val_acc"][-1]) == nn.evaluate(params, X[:9], y[:9])


@pytest.mark.filterwarnings("ignore::nn_helpers.UnscaledInputWarning")  # column 0 is 0..22
def test_fit_visits_every_sample_once_per_epoch(monkeypatch):
    N, batch_size, epochs = 23, 5, 3
    X = np.zeros((N, 3))
    X[:, 0] = np.arange(N)               # column 0 identifies a training sample
    X_val = np.full((4, 3), -1.0)        # validation rows are marked -1
    y, y_val = np.arange(N) % 2, np.array([0, 1, 0, 1])
    seen, boundaries = [], []
    real_forward = nn._model_forward  # what fit calls per batch, once its arguments are checked

    def spy(layers, params, X_batch, train, rng):
        ids = np.asarray(X_batch)[:, 0]
        if (ids >= 0).all():
            seen.append(ids.astype(int))
        return real_forward(layers, params, X_batch, train, rng)

    monkeypatch.setattr(nn, "_model_forward", spy)
    opt = Recorder()
    nn.fit(nn.init_mlp([3, 4, 2], rng=0, dtype=np.float64), X, y, X_val, y_val, optimizer=opt,
           epochs=epochs, batch_size=batch_size, rng=0, verbose=False,
           callback=lambda epoch, params: boundaries.append(len(seen)))
    assert boundaries == [5, 10, 15], "ceil(23 / 5) = 5 batches per epoch"
    assert opt.t == epochs * 5
    orders = []
    for e in range(epochs):
        batches = seen[5 * e:5 * (e + 1)]
        assert [len(b) for b in batches] == [5, 5, 5, 5, 3]
        order = np.concatenate(batches)
        np.testing.assert_array_equal(np.sort(order), np.arange(N))  # each sample exactly once
        orders.append(order)
    assert not np.array_equal(orders[0], orders[1]), "each epoch needs a fresh shuffle"
    assert not np.array_equal(orders[0], np.arange(N)), "the order must be shuffled"


def test_fit_train_metrics_are_sample_weighted_means():
    # With an optimizer that changes nothing, the running mean over the batches (weighted by
    # batch size; the last batch is short) equals the loss and accuracy on the whole set.
    X, y = blobs(n_per_class=7, dtype=np.float64)   # 21 samples, batches of 8, 8, 5
    params = nn.init_mlp([2, 6, 3], rng=3, dtype=np.float64)
    history = nn.fit(params, X, y, X, y, optimizer=Recorder(), epochs=2, batch_size=8,
                     rng=0, verbose=False)
    loss, acc = nn.evaluate(params, X, y)
    assert history["train_loss"] == pytest.approx([loss, loss], rel=1e-12)
    assert history["train_acc"] == pytest.approx([acc, acc], rel=1e-12)
    assert history["val_loss"] == [loss, loss]


def test_fit_schedule_sets_lr_before_each_epoch():
    X, y = blobs(n_per_class=4)  # 12 samples, batch 5 -> 3 steps per epoch
    opt = Recorder(lr=123.0)
    history = nn.fit(nn.init_mlp([2, 3, 3], rng=0), X, y, X, y, optimizer=opt, epochs=5,
                     batch_size=5, rng=0, schedule=nn.step_decay(0.1, drop=0.5, every=2),
                     verbose=False)
    per_epoch = [0.1, 0.1, 0.05, 0.05, 0.025]
    assert history["lr"] == per_epoch
    assert opt.lrs == [lr for lr in per_epoch for _ in range(3)], opt.lrs
    assert opt.lr == 0.025
    assert all(names == ["W1", "W2", "b1", "b2"] for names in opt.grad_names)


def test_fit_callback_once_per_epoch():
    X, y = blobs(n_per_class=5)
    params = nn.init_mlp([2, 4, 3], rng=0)
    calls = []
    nn.fit(params, X, y, X, y, optimizer=nn.SGD(0.1), epochs=4, batch_size=6, rng=0,
           verbose=False, callback=lambda epoch, p: calls.append((epoch, p, p["W1"].copy())))
    assert [c[0] for c in calls] == [1, 2, 3, 4]
    assert all(c[1] is params for c in calls), "the callback gets the params being trained"
    assert not np.array_equal(calls[0][2], calls[1][2]), "params changed between epochs"
    np.testing.assert_array_equal(calls[-1][2], params["W1"])


def test_fit_is_reproducible_with_the_same_rng():
    X, y = blobs(n_per_class=8)
    runs = []
    for _ in range(2):
        params = nn.init_mlp([2, 5, 3], rng=4)
        h = nn.fit(params, X, y, X, y, optimizer=nn.Adam(0.01), epochs=3, batch_size=5, rng=9,
                   verbose=False)
        runs.append((params, h))
    for k in runs[0][0]:
        np.testing.assert_array_equal(runs[0][0][k], runs[1][0][k])
    assert runs[0][1]["train_loss"] == runs[1][1]["train_loss"]
    params = nn.init_mlp([2, 5, 3], rng=4)
    nn.fit(params, X, y, X, y, optimizer=nn.Adam(0.01), epochs=3, batch_size=5, rng=10,
           verbose=False)
    assert not np.array_equal(params["W1"], runs[0][0]["W1"]), "another shuffle, another result"


def test_fit_verbose_prints_one_line_per_epoch(capsys):
    X, y = blobs(n_per_class=3)
    nn.fit(nn.init_mlp([2, 3, 3], rng=0), X, y, X, y, optimizer=nn.SGD(0.1), epochs=3,
           batch_size=4, rng=0)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("epoch   1/3  train loss ") and "val acc" in lines[0]
    nn.fit(nn.init_mlp([2, 3, 3], rng=0), X, y, X, y, optimizer=nn.SGD(0.1), epochs=2,
           batch_size=4, rng=0, verbose=False)
    assert capsys.readouterr().out == ""


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_fit_stops_on_divergence_with_advice():
    X, y = blobs(n_per_class=20)
    params = nn.init_mlp([2, 16, 3], rng=0)
    with pytest.raises(nn.TrainingDivergedError) as info:
        nn.fit(params, X, y, X, y, optimizer=nn.SGD(1e30), epochs=5, batch_size=4, rng=0,
               verbose=False)
    msg = str(info.value)
    assert "NaN or inf at epoch 1, batch " in msg
    assert "lower the learning rate well below this one (try lr=1e+28)" in msg
    assert "SGD(lr=1e+30)" in msg and "re-initialise the parameters" in msg
    assert isinstance(info.value, FloatingPointError)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_fit_divergence_on_the_last_batch_of_an_epoch_is_reported_as_divergence():
    # Found by these tests: with one batch per epoch (full-batch training) the update that
    # blows up is the epoch's last, so the validation pass meets the inf logits first and fit
    # raises softmax's ValueError instead of TrainingDivergedError with its advice.
    params = nn.init_mlp([2, 8, 2], rng=0)
    with pytest.raises(nn.TrainingDivergedError, match=r"epoch 1.*lower the learning rate"):
        nn.fit(params, X_XOR, Y_XOR, X_XOR, Y_XOR, optimizer=nn.SGD(1e30), epochs=3,
               batch_size=4, rng=0, verbose=False)



def test_divergence_error_carries_the_epochs_completed_before_it():
    # A learning-rate sweep plots a diverged run up to the blow-up: the error keeps the history.
    X = np.random.default_rng(0).standard_normal((64, 2))
    y = (X[:, 0] > 0).astype(np.int64)
    params = nn.init_mlp([2, 8, 2], rng=0)
    diverged_at = {}

    def blow_up_after_two_epochs(epoch, params):
        if epoch == 2:
            params["W2"][:] = np.inf
            diverged_at["epoch"] = epoch

    with pytest.raises(nn.TrainingDivergedError, match="epoch 3") as info, \
            np.errstate(invalid="ignore"):  # inf * 0 in the next matmul is the point
        nn.fit(params, X, y, X, y, optimizer=nn.SGD(0.1), epochs=5, batch_size=16, rng=0,
               verbose=False, callback=blow_up_after_two_epochs)
    assert diverged_at == {"epoch": 2}
    assert info.value.history["epoch"] == [1, 2]
    assert np.isfinite(info.value.history["val_loss"]).all()

def test_fit_rejects_bad_arguments():
    params = nn.init_mlp([2, 3, 2], rng=0)
    kwargs = dict(optimizer=nn.SGD(0.1), epochs=1, rng=0, verbose=False)
    with pytest.raises(ValueError, match="unknown activation 'relu6'"):
        nn.fit(params, X_XOR, Y_XOR, X_XOR, Y_XOR, activation="relu6", **kwargs)
    with pytest.raises(ValueError, match=r"y_train must hold labels in \[0, 2\)"):
        nn.fit(params, X_XOR, np.array([0, 1, 2, 0]), X_XOR, Y_XOR, **kwargs)
    with pytest.raises(ValueError, match="y_train has 3 labels but there are 4 samples"):
        nn.fit(params, X_XOR, Y_XOR[:3], X_XOR, Y_XOR, **kwargs)
    with pytest.raises(TypeError, match="y_train must hold integers"):
        nn.fit(params, X_XOR, Y_XOR.astype(float), X_XOR, Y_XOR, **kwargs)
    with pytest.raises(ValueError, match="flatten the images first"):
        nn.fit(params, X_XOR.reshape(4, 2, 1), Y_XOR, X_XOR, Y_XOR, **kwargs)


# -------------------------------------------------------------------------------------------------
# Evaluation
# -------------------------------------------------------------------------------------------------

def tiny_model():
    """A hand-made 2-2-3 ReLU network: hidden = relu([x0 - x1, x1 - x0]), logits from it."""
    return {"W1": np.array([[1.0, -1.0], [-1.0, 1.0]]), "b1": np.zeros(2),
            "W2": np.array([[2.0, 0.0, -1.0], [0.0, 2.0, -1.0]]), "b2": np.array([0.0, 0.0, 1.0])}


def test_predict_and_evaluate_tiny_model():
    params = tiny_model()
    X = np.array([[3.0, 1.0],    # hidden [2, 0] -> logits [4, 0, -1] -> class 0
                  [0.0, 1.5],    # hidden [0, 1.5] -> logits [0, 3, -0.5] -> class 1
                  [1.0, 1.0]])   # hidden [0, 0] -> logits [0, 0, 1] -> class 2
    expected_logits = np.array([[4.0, 0.0, -1.0], [0.0, 3.0, -0.5], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(nn.predict_logits(params, X), expected_logits)
    np.testing.assert_array_equal(nn.predict(params, X), [0, 1, 2])
    y = np.array([0, 1, 0])  # the last one is wrong
    loss, acc = nn.evaluate(params, X, y)
    expected_loss = (math.log(math.exp(4) + 1 + math.exp(-1)) - 4
                     + math.log(1 + math.exp(3) + math.exp(-0.5)) - 3
                     + math.log(2 + math.e) - 0) / 3
    assert loss == pytest.approx(expected_loss, rel=1e-12)
    assert acc == pytest.approx(2 / 3)
    assert isinstance(loss, float) and isinstance(acc, float)
    # the same network with tanh gives other logits: the activation is passed through
    assert not np.allclose(nn.predict_logits(params, X, "tanh"), expected_logits)


def test_predict_logits_batches_do_not_change_the_result():
    params = nn.init_mlp([5, 7, 4], rng=0, dtype=np.float64)
    X = np.random.default_rng(0).normal(size=(23, 5))
    whole = nn.predict_logits(params, X)
    for batch_size in (1, 5, 22, 23, 100):  # the BLAS may round a 1-row product differently
        np.testing.assert_allclose(nn.predict_logits(params, X, batch_size=batch_size), whole,
                                   rtol=1e-12, atol=1e-14)
    assert whole.shape == (23, 4)


def test_accuracy():
    assert nn.accuracy([0, 1, 2, 3], [0, 1, 0, 3]) == 0.75
    assert nn.accuracy(np.array([1, 1]), np.array([1, 1])) == 1.0
    assert nn.accuracy(np.array([1, 1]), np.array([0, 0])) == 0.0
    assert isinstance(nn.accuracy([1], [1]), float)
    with pytest.raises(ValueError, match=r"same shape \(N,\), got \(3,\) and \(2,\)"):
        nn.accuracy([0, 1, 2], [0, 1])
    with pytest.raises(ValueError, match=r"got \(2, 2\) and \(2, 2\)"):
        nn.accuracy(np.eye(2), np.eye(2))  # one-hot rows are not labels


def test_confusion_matrix_hand_example():
    y_true = np.array([0, 0, 1, 2, 2, 2])
    y_pred = np.array([0, 1, 1, 2, 0, 2])
    cm = nn.confusion_matrix(y_true, y_pred, num_classes=3)
    np.testing.assert_array_equal(cm, [[1, 1, 0],
                                       [0, 1, 0],
                                       [1, 0, 2]])
    assert cm.shape == (3, 3) and np.issubdtype(cm.dtype, np.integer)


def test_confusion_matrix_sums():
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 10, 500), rng.integers(0, 10, 500)
    y_pred[:200] = y_true[:200]
    cm = nn.confusion_matrix(y_true, y_pred)
    assert cm.shape == (10, 10) and cm.sum() == 500
    np.testing.assert_array_equal(cm.sum(axis=1), np.bincount(y_true, minlength=10))
    np.testing.assert_array_equal(cm.sum(axis=0), np.bincount(y_pred, minlength=10))
    assert np.trace(cm) == np.count_nonzero(y_true == y_pred)
    assert np.trace(cm) / 500 == nn.accuracy(y_true, y_pred)
    for i, j in [(0, 0), (3, 7), (9, 2)]:
        assert cm[i, j] == np.count_nonzero((y_true == i) & (y_pred == j))


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int64])
def test_confusion_matrix_small_integer_labels(dtype):
    # Found by these tests: y_true * num_classes is computed in the labels' own dtype, so int8
    # labels overflow from 12 classes on (bincount then sees negative numbers) and uint8 labels
    # wrap around silently from 17 classes on.
    y = np.array([0, 11, 16, 19], dtype=dtype)
    cm = nn.confusion_matrix(y, y, num_classes=20)
    assert cm.sum() == 4 and np.trace(cm) == 4
    assert cm[19, 19] == 1 and cm[16, 16] == 1 and cm[11, 11] == 1


def test_confusion_matrix_rejects_bad_labels():
    with pytest.raises(ValueError, match=r"y_true must hold labels in \[0, 3\)"):
        nn.confusion_matrix([0, 3], [0, 1], num_classes=3)
    with pytest.raises(ValueError, match=r"y_pred must hold labels in \[0, 3\).*-1"):
        nn.confusion_matrix([0, 1], [0, -1], num_classes=3)
    with pytest.raises(ValueError, match="y_pred has 1 labels but there are 2 samples"):
        nn.confusion_matrix([0, 1], [0], num_classes=3)
    with pytest.raises(TypeError, match="y_pred must hold integers"):
        nn.confusion_matrix([0, 1], [0.0, 1.0], num_classes=3)


# -------------------------------------------------------------------------------------------------
# Saving and loading
# -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_save_load_round_trip(tmp_path, dtype):
    params = nn.init_mlp([6, 5, 4, 3], rng=0, dtype=dtype)
    params["b2"] += dtype(0.25)
    path = nn.save_params(tmp_path / "model.npz", params)
    assert path == tmp_path / "model.npz" and path.is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"], "no temporary file left"
    loaded = nn.load_params(path, layer_sizes=[6, 5, 4, 3])
    assert set(loaded) == set(params)
    for k in params:
        assert loaded[k].dtype == dtype and loaded[k].shape == params[k].shape
        np.testing.assert_array_equal(loaded[k], params[k])
    assert nn.load_params(str(path)).keys() == params.keys()  # a str path works too


def test_save_params_overwrites_existing_file(tmp_path):
    path = tmp_path / "model.npz"
    nn.save_params(path, nn.init_mlp([3, 2], rng=0))
    new = nn.init_mlp([3, 2], rng=1)
    nn.save_params(path, new)
    np.testing.assert_array_equal(nn.load_params(path)["W1"], new["W1"])


def test_save_params_is_atomic(tmp_path, monkeypatch):
    def broken_replace(src, dst):
        raise OSError("disk full (simulated)")

    target = tmp_path / "model.npz"
    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="simulated"):
        nn.save_params(target, nn.init_mlp([3, 2], rng=0))
    assert list(tmp_path.iterdir()) == [], "neither the target nor a temporary file may remain"

    monkeypatch.undo()
    old = nn.init_mlp([3, 2], rng=0)
    nn.save_params(target, old)
    before = target.read_bytes()
    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="simulated"):
        nn.save_params(target, nn.init_mlp([3, 2], rng=1))
    assert target.read_bytes() == before, "the existing file must stay untouched"
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]


def test_save_params_refuses_bad_params_before_writing(tmp_path):
    params = nn.init_mlp([3, 4, 2], rng=0)
    del params["b2"]
    with pytest.raises(ValueError, match="named W1, b1"):
        nn.save_params(tmp_path / "model.npz", params)
    assert list(tmp_path.iterdir()) == []


def _write(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("arrays, match", [
    (dict(W1=np.zeros((3, 4)), b1=np.zeros(4), W2=np.zeros((4, 2))),
     r"model.npz: params must be named W1, b1, \.\.\., Wn, bn; got \['W1', 'W2', 'b1'\]"),
    (dict(W1=np.zeros((3, 4)), b1=np.zeros(4), W2=np.zeros((5, 2)), b2=np.zeros(2)),
     r"model.npz: W1 \(3, 4\) is followed by W2 \(5, 2\)"),
    (dict(W1=np.zeros((3, 4)), b1=np.zeros(2)),
     r"model.npz: W1 \(3, 4\) and b1 \(2,\) do not fit"),
    (dict(W1=np.zeros((3, 4), np.int64), b1=np.zeros(4)),
     r"model.npz: W1 has dtype int64, expected float32 or float64"),
    (dict(W1=np.zeros((3, 4)), b1=np.zeros(4, np.float16)), r"b1 has dtype float16"),
])
def test_load_params_rejects_bad_archives(tmp_path, arrays, match):
    path = _write(tmp_path / "model.npz", **arrays)
    with pytest.raises(ValueError, match=match):
        nn.load_params(path)


def test_load_params_checks_layer_sizes(tmp_path):
    path = nn.save_params(tmp_path / "model.npz", nn.init_mlp([6, 5, 3], rng=0))
    assert nn.num_layers(nn.load_params(path, layer_sizes=(6, 5, 3))) == 2
    for sizes in ([6, 4, 3], [784, 128, 10], [6, 5, 3, 2], [6, 3]):
        with pytest.raises(ValueError, match=r"holds a network of layer sizes \[6, 5, 3\], "
                                             r"expected \[" + ", ".join(map(str, sizes))):
            nn.load_params(path, layer_sizes=sizes)


def test_load_params_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nothere.npz: no such file; save the model "
                                                r"first with save_params"):
        nn.load_params(tmp_path / "nothere.npz")


def test_load_params_not_an_archive(tmp_path):
    path = tmp_path / "model.npz"
    path.write_text("this is a text file, not a parameter archive\n")
    with pytest.raises(ValueError, match=r"model.npz: not a readable parameter archive"):
        nn.load_params(path)


@pytest.mark.parametrize("keep", [0, 40, 0.5, -20], ids=["empty", "head", "half", "no-tail"])
def test_load_params_truncated_archive(tmp_path, keep):
    # Found by these tests: np.load raises EOFError for an empty file and zipfile.BadZipFile
    # for a cut-off archive; load_params lets both through instead of its ValueError.
    blob = nn.save_params(tmp_path / "full.npz", nn.init_mlp([5, 4, 3], rng=0)).read_bytes()
    n = int(len(blob) * keep) if isinstance(keep, float) else keep % len(blob) if keep else 0
    path = tmp_path / "model.npz"
    path.write_bytes(blob[:n])
    with pytest.raises(ValueError, match=r"model.npz: not a readable parameter archive"):
        nn.load_params(path)


def test_load_params_single_npy_array(tmp_path):
    # Found by these tests: an .npy file (np.save of one array) makes np.load return an array,
    # and load_params fails with "TypeError: ... does not support the context manager protocol".
    path = tmp_path / "W1.npy"
    np.save(path, np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"W1.npy: not a readable parameter archive"):
        nn.load_params(path)


PICKLE_SIDE_EFFECTS = []


def _record_unpickling(tag):
    PICKLE_SIDE_EFFECTS.append(tag)
    return tag


class _Payload:
    """Unpickling this object calls _record_unpickling: a harmless stand-in for malicious code."""

    def __reduce__(self):
        return (_record_unpickling, ("unpickled!",))


def test_load_params_never_unpickles(tmp_path):
    path = tmp_path / "model.npz"
    payload = np.empty(1, dtype=object)
    payload[0] = _Payload()
    np.savez(path, W1=payload, b1=np.zeros(1), allow_pickle=True)
    PICKLE_SIDE_EFFECTS.clear()
    with pytest.raises(ValueError, match=r"model.npz: not a readable parameter archive"):
        nn.load_params(path)
    assert PICKLE_SIDE_EFFECTS == [], "load_params ran code stored in the file"
    # the payload is live: loading with pickling allowed does run it
    with np.load(path, allow_pickle=True) as archive:
        archive["W1"]
    assert PICKLE_SIDE_EFFECTS == ["unpickled!"]


def test_count_params():
    assert nn.count_params(nn.init_mlp([784, 128, 10], rng=0)) == 784 * 128 + 128 + 128 * 10 + 10
    assert nn.count_params({"W1": np.zeros((2, 3)), "b1": np.zeros(3)}) == 9

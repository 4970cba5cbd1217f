"""Unit tests of the model as a list of layers and of regularisation (notebook 07): dropout,
the L2 penalty, decoupled weight decay (SGD and AdamW), early stopping, augmentation by random
shifts, and saving a model's architecture.

Gradients are checked against centred finite differences; optimizer updates against values worked
out by hand here, never with the optimizer's own formula.
"""

import json
import math

import numpy as np
import pytest

import nn_helpers as nn


def blobs(n_per_class=20, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]])
    X = np.concatenate([c + rng.normal(size=(n_per_class, 2)) for c in centres]).astype(dtype)
    return X, np.repeat(np.arange(3), n_per_class)


# -------------------------------------------------------------------------------------------------
# Dropout
# -------------------------------------------------------------------------------------------------

def test_dropout_mask_is_zero_or_the_inverse_keep_rate():
    A = np.ones((200, 50))
    out, mask = nn.dropout_forward(A, 0.25, rng=0)
    assert set(np.unique(mask)) == {0.0, 1 / 0.75}
    np.testing.assert_array_equal(out, A * mask)
    assert abs(np.mean(mask == 0) - 0.25) < 0.01, "about a quarter of the units dropped"


def test_dropout_preserves_the_expectation():
    # 10^6 draws per entry rate: the mean of A * mask is A within a few standard errors
    A = np.full((1000, 1000), 2.0, dtype=np.float32)
    for rate in (0.1, 0.5, 0.8):
        out, _ = nn.dropout_forward(A, rate, rng=1)
        std_error = 2.0 * math.sqrt(rate / (1 - rate)) / 1000
        assert abs(out.mean() - 2.0) < 5 * std_error, rate
        assert out.dtype == np.float32


@pytest.mark.parametrize("kwargs", [dict(train=False), dict(rate=0.0)])
def test_dropout_is_the_identity_in_evaluation_mode_and_at_rate_0(kwargs):
    A = np.random.default_rng(0).normal(size=(5, 4))
    args = dict(rate=0.5, rng=0) | kwargs
    out, mask = nn.dropout_forward(A, args.pop("rate"), **args)
    assert out is A and mask is None
    dout = np.ones_like(A)
    assert nn.dropout_backward(dout, mask) is dout


def test_dropout_backward_against_finite_differences_with_the_mask_fixed():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(6, 5))
    weights = rng.normal(size=(6, 5))       # loss = sum(weights * dropout(A))
    _, mask = nn.dropout_forward(A, 0.4, rng=3)
    loss = lambda: float(np.sum(weights * nn.dropout_forward(A, 0.4, mask=mask)[0]))  # noqa: E731
    numeric = nn.numerical_gradient(loss, A)
    assert nn.relative_error(nn.dropout_backward(weights, mask), numeric) < 1e-9


def test_the_same_rng_seed_gives_the_same_mask():
    A = np.ones((4, 8))
    np.testing.assert_array_equal(nn.dropout_forward(A, 0.5, rng=7)[1],
                                  nn.dropout_forward(A, 0.5, rng=7)[1])


@pytest.mark.parametrize("call, error, match", [
    (lambda: nn.dropout_forward(np.ones((2, 2)), 1.0, rng=0), ValueError,
     r"rate must be a number in \[0, 1\), got 1.0"),
    (lambda: nn.dropout_forward(np.ones((2, 2)), -0.1, rng=0), ValueError, r"rate must be"),
    (lambda: nn.dropout_forward(np.ones((2, 2)), "0.5", rng=0), ValueError, r"rate must be"),
    (lambda: nn.dropout_forward(np.ones((2, 2)), 0.5), ValueError, r"pass rng="),
    (lambda: nn.dropout_forward(np.ones((2, 2)), 0.5, mask=np.ones(3)), ValueError,
     r"mask must have the shape of A, \(2, 2\), got \(3,\)"),
    (lambda: nn.dropout_forward(np.ones((2, 2), dtype=int), 0.5, rng=0), TypeError,
     r"A must hold real numbers"),
    (lambda: nn.dropout_forward(np.ones((2, 2)), 0.5, rng=0, train="yes"), ValueError,
     r"train must be True or False"),
    (lambda: nn.Dropout(1.5), ValueError, r"rate must be"),
])
def test_dropout_bad_inputs(call, error, match):
    with pytest.raises(error, match=match):
        call()


# -------------------------------------------------------------------------------------------------
# The model as a list of layers
# -------------------------------------------------------------------------------------------------

def test_mlp_layers():
    assert nn.mlp_layers(2) == [nn.Dense(1), nn.Activation("relu"), nn.Dense(2)]
    assert nn.mlp_layers(3, "tanh", dropout=0.5, input_dropout=0.2) == [
        nn.Dropout(0.2), nn.Dense(1), nn.Activation("tanh"), nn.Dropout(0.5), nn.Dense(2),
        nn.Activation("tanh"), nn.Dropout(0.5), nn.Dense(3)]
    assert repr(nn.mlp_layers(2, dropout=0.5)) == \
        "[Dense(1), Activation('relu'), Dropout(0.5), Dense(2)]"


@pytest.mark.parametrize("activation", sorted(nn.ACTIVATIONS))
def test_model_forward_of_mlp_layers_equals_mlp_forward(activation):
    params = nn.init_mlp([4, 6, 5, 3], rng=0, dtype=np.float64)
    X = np.random.default_rng(1).normal(size=(7, 4))
    logits, caches = nn.model_forward(nn.mlp_layers(3, activation), params, X)
    np.testing.assert_array_equal(logits, nn.mlp_forward(params, X, activation)[0])
    assert len(caches) == 5, "one cache per layer"
    y = np.arange(7) % 3
    _, dlogits = nn.softmax_cross_entropy(logits, y)
    grads = nn.model_backward(nn.mlp_layers(3, activation), dlogits, caches)
    _, expected = nn.mlp_loss_and_grads(params, X, y, activation)
    assert grads.keys() == expected.keys()
    for k in grads:
        np.testing.assert_allclose(grads[k], expected[k], rtol=1e-12, atol=1e-15)


def test_evaluation_mode_ignores_dropout_and_training_mode_uses_it():
    params = nn.init_mlp([4, 16, 3], rng=0, dtype=np.float64)
    X = np.random.default_rng(1).normal(size=(9, 4))
    layers = nn.mlp_layers(2, dropout=0.5)
    plain = nn.model_forward(nn.mlp_layers(2), params, X)[0]
    np.testing.assert_array_equal(nn.model_forward(layers, params, X)[0], plain)
    np.testing.assert_array_equal(nn.predict_logits(params, X, layers=layers), plain)
    dropped = nn.model_forward(layers, params, X, train=True, rng=0)[0]
    assert not np.allclose(dropped, plain)


@pytest.mark.parametrize("layers", [nn.mlp_layers(3, "tanh", dropout=0.3, input_dropout=0.2),
                                    nn.mlp_layers(3, "sigmoid", dropout=0.5)])
@pytest.mark.parametrize("l2", [0.0, 0.1])
def test_check_model_gradients_with_dropout_and_l2(layers, l2):
    params = nn.init_mlp([5, 6, 4, 3], rng=2, dtype=np.float64)
    X, y = np.random.default_rng(3).normal(size=(8, 5)), np.arange(8) % 3
    errors = nn.check_model_gradients(layers, params, X, y, train=True, seed=4, l2=l2)
    assert errors.keys() == params.keys()
    assert max(errors.values()) < 1e-7, errors


def test_check_model_gradients_sees_a_wrong_dropout_backward(monkeypatch):
    # a backward pass that forgets the 1/(1 - rate) scaling must fail the check
    monkeypatch.setattr(nn.Dropout, "backward",
                        lambda self, dout, mask, need_dX=True: (dout * (mask > 0), {}))
    params = nn.init_mlp([5, 6, 3], rng=2, dtype=np.float64)
    X, y = np.random.default_rng(3).normal(size=(8, 5)), np.arange(8) % 3
    errors = nn.check_model_gradients(nn.mlp_layers(2, "tanh", dropout=0.5), params, X, y,
                                      train=True)
    assert errors["W1"] > 1e-3


def test_l2_penalty_and_its_gradient():
    params = {"W1": np.array([[1.0, 2.0]]), "b1": np.array([5.0, 5.0]),
              "W2": np.array([[3.0], [0.0]]), "b2": np.array([7.0])}
    assert nn.l2_penalty(params, 0.1) == pytest.approx(0.05 * (1 + 4 + 9))
    X, y = np.array([[0.5]]), np.array([0])
    layers = [nn.Dense(1), nn.Activation("tanh"), nn.Dense(2)]
    errors = nn.check_model_gradients(layers, params, X, y, l2=0.1)
    assert max(errors.values()) < 1e-7
    loss0, g0 = nn.model_loss_and_grads(layers, params, X, y)
    loss1, g1 = nn.model_loss_and_grads(layers, params, X, y, l2=0.1)
    assert loss1 - loss0 == pytest.approx(0.7)
    np.testing.assert_allclose(g1["W1"] - g0["W1"], 0.1 * params["W1"])
    np.testing.assert_array_equal(g1["b1"], g0["b1"])


@pytest.mark.parametrize("call, error, match", [
    (lambda p: nn.model_forward(nn.mlp_layers(3), p, np.ones((1, 2))), ValueError,
     r"do not fit params with 2 dense layers"),
    (lambda p: nn.model_forward([nn.Dense(2), nn.Dense(1)], p, np.ones((1, 2))), ValueError,
     r"Dense\(1\), \.\.\., Dense\(2\) in this order"),
    (lambda p: nn.model_forward([nn.Dense(1), nn.Dense(2), nn.Activation()], p,
                                np.ones((1, 2))), ValueError, r"the last\s+layer a Dense one"),
    (lambda p: nn.model_forward(nn.Dense(1), p, np.ones((1, 2))), TypeError,
     r"layers must be a list of layers"),
    (lambda p: nn.model_forward([nn.Dense(1), np.tanh, nn.Dense(2)], p, np.ones((1, 2))),
     TypeError, r"layers\[1\] is .* not a layer"),
    (lambda p: nn.model_forward(nn.mlp_layers(2), p, np.ones((1, 3))), ValueError,
     r"expected X with 2 features"),
    (lambda p: nn.model_forward(nn.mlp_layers(2, dropout=0.5), p, np.ones((1, 2)), train=True),
     ValueError, r"pass rng="),
    (lambda p: nn.model_backward(nn.mlp_layers(2), np.ones((1, 3)), []), ValueError,
     r"got 0 caches for 3 layers"),
    (lambda p: nn.model_backward(nn.mlp_layers(2), np.ones((2, 3)),
                                 nn.model_forward(nn.mlp_layers(2), p, np.ones((1, 2)))[1]),
     ValueError, r"dlogits must have the shape of the logits, \(1, 3\), got \(2, 3\)"),
    (lambda p: nn.predict(p, np.ones((1, 2)), "tanh", layers=nn.mlp_layers(2)), ValueError,
     r"give either activation= \('tanh'\) or layers=, not both"),
    (lambda p: nn.l2_penalty(p, -1.0), ValueError, r"l2 must be a non-negative number"),
    (lambda p: nn.mlp_layers(0), ValueError, r"num_dense must be a positive integer"),
    (lambda p: nn.mlp_layers(2, "ReLU"), ValueError, r"unknown activation 'ReLU'"),
    (lambda p: nn.Dense(0), ValueError, r"index must be a positive integer"),
    (lambda p: nn.Activation("gelu"), ValueError, r"unknown activation 'gelu'"),
    (lambda p: nn.check_model_gradients(nn.mlp_layers(2), p, np.ones((1, 2)), [0], seed=-1),
     ValueError, r"seed must be an integer >= 0"),
])
def test_layer_model_bad_inputs(call, error, match):
    with pytest.raises(error, match=match):
        call(nn.init_mlp([2, 4, 3], rng=0))


# -------------------------------------------------------------------------------------------------
# Decoupled weight decay, SGD and AdamW, by hand
# -------------------------------------------------------------------------------------------------
# W = [1, -2], b = [1]; gradients gW = [0.5, 0.5], gb = [0.5] at every step; lr = 0.1.

def two_steps(optimizer):
    params = {"W1": np.array([1.0, -2.0]), "b1": np.array([1.0])}
    grads = {"W1": np.array([0.5, 0.5]), "b1": np.array([0.5])}
    out = []
    for _ in range(2):
        optimizer.step(params, grads)
        out.append({k: v.copy() for k, v in params.items()})
    return out


def test_sgd_weight_decay_by_hand_equals_an_l2_penalty():
    # W <- (1 - 0.1 * 0.2) W - 0.1 g = 0.98 W - 0.05;  b <- b - 0.05 (biases are not decayed)
    # step 1: W = [0.98 - 0.05, -1.96 - 0.05] = [0.93, -2.01];  b = 0.95
    # step 2: W = [0.9114 - 0.05, -1.9698 - 0.05] = [0.8614, -2.0198];  b = 0.90
    steps = two_steps(nn.SGD(0.1, weight_decay=0.2))
    np.testing.assert_allclose(steps[0]["W1"], [0.93, -2.01], rtol=0, atol=1e-14)
    np.testing.assert_allclose(steps[1]["W1"], [0.8614, -2.0198], rtol=0, atol=1e-14)
    np.testing.assert_allclose([s["b1"][0] for s in steps], [0.95, 0.90], rtol=0, atol=1e-14)
    # the same as plain SGD on the gradient of the penalty 0.2 / 2 ||W||^2: g + 0.2 W
    params = {"W1": np.array([1.0, -2.0]), "b1": np.array([1.0])}
    sgd = nn.SGD(0.1)
    for _ in range(2):
        sgd.step(params, {"W1": 0.5 + 0.2 * params["W1"], "b1": np.array([0.5])})
    np.testing.assert_allclose(params["W1"], steps[1]["W1"], rtol=0, atol=1e-14)


def test_adamw_two_steps_by_hand():
    # Adam's step with a constant gradient is lr * m_hat / (sqrt(v_hat) + eps) = 0.1 * 0.5 / 0.5
    # = 0.1 for every entry (m_hat = g, v_hat = g^2 at every t), up to eps.
    # AdamW: W <- 0.98 W - 0.1:  step 1 [0.88, -2.06], step 2 [0.7624, -2.1188];  b <- b - 0.1
    steps = two_steps(nn.AdamW(0.1, weight_decay=0.2))
    np.testing.assert_allclose(steps[0]["W1"], [0.88, -2.06], rtol=0, atol=1e-7)
    np.testing.assert_allclose(steps[1]["W1"], [0.7624, -2.1188], rtol=0, atol=1e-7)
    np.testing.assert_allclose([s["b1"][0] for s in steps], [0.9, 0.8], rtol=0, atol=1e-7)


def test_adam_with_an_l2_penalty_is_not_adamw():
    # Adam on g + 0.2 W: step 1's gradient [0.7, 0.1] is normalised away (m_hat / sqrt(v_hat)
    # = its sign), so both entries move down by lr = 0.1: [0.9, -2.1]; the penalty pulled -2
    # further from 0, where AdamW's decay shrinks it: [0.88, -2.06]
    params = {"W1": np.array([1.0, -2.0]), "b1": np.array([1.0])}
    nn.Adam(0.1).step(params, {"W1": 0.5 + 0.2 * params["W1"], "b1": np.array([0.5])})
    np.testing.assert_allclose(params["W1"], [0.9, -2.1], rtol=0, atol=1e-7)


def test_weight_decay_keeps_float32():
    params = {"W1": np.ones((2, 2), np.float32), "b1": np.ones(2, np.float32)}
    nn.AdamW(1e-3).step(params, {k: np.ones_like(v) for k, v in params.items()})
    assert all(v.dtype == np.float32 for v in params.values())


@pytest.mark.parametrize("value", [-0.1, "0.01", math.nan, math.inf])
def test_weight_decay_must_be_a_non_negative_number(value):
    with pytest.raises(ValueError, match=r"weight_decay must be a non-negative number"):
        nn.AdamW(weight_decay=value)
    opt = nn.SGD(0.1)
    with pytest.raises(ValueError, match=r"weight_decay must be"):
        opt.weight_decay = value


def test_a_decay_that_would_zero_the_weights_is_refused_before_any_change():
    params = {"W1": np.ones(2), "b1": np.ones(1)}
    opt = nn.SGD(0.5, weight_decay=2.0)
    with pytest.raises(ValueError, match=r"lr \* weight_decay must be below 1, got 0.5 \* 2"):
        opt.step(params, {"W1": np.ones(2), "b1": np.ones(1)})
    np.testing.assert_array_equal(params["W1"], 1.0)


def test_repr_names_weight_decay_where_it_acts():
    assert repr(nn.SGD(0.1)) == "SGD(lr=0.1)"
    assert repr(nn.SGD(0.1, weight_decay=0.01)) == "SGD(lr=0.1, weight_decay=0.01)"
    assert repr(nn.AdamW()) == ("AdamW(lr=0.001, beta1=0.9, beta2=0.999, eps=1e-08, "
                                "weight_decay=0.01)")


# -------------------------------------------------------------------------------------------------
# fit with layers, l2, augmentation and early stopping
# -------------------------------------------------------------------------------------------------

def fit_blobs(**kwargs):
    X, y = blobs()
    X_val, y_val = blobs(seed=1)
    params = nn.init_mlp([2, 16, 3], rng=0, dtype=np.float64)
    args = dict(optimizer=nn.SGD(0.1), epochs=5, batch_size=10, rng=0, verbose=False) | kwargs
    return params, nn.fit(params, X, y, X_val, y_val, **args)


def test_fit_with_dropout_learns_and_is_reproducible():
    params_a, history_a = fit_blobs(layers=nn.mlp_layers(2, dropout=0.3), epochs=10)
    params_b, history_b = fit_blobs(layers=nn.mlp_layers(2, dropout=0.3), epochs=10)
    assert history_a["val_acc"][-1] > 0.85
    assert history_a["val_loss"] == history_b["val_loss"]
    _, plain = fit_blobs(epochs=10)
    assert plain["train_loss"] != history_a["train_loss"], "dropout changes the training"


def test_fit_l2_shrinks_the_weights():
    params_0, _ = fit_blobs(epochs=10)
    params_l2, _ = fit_blobs(epochs=10, l2=0.05)
    assert np.linalg.norm(params_l2["W1"]) < 0.9 * np.linalg.norm(params_0["W1"])


def test_fit_l2_equals_sgd_weight_decay():
    params_l2, h_l2 = fit_blobs(l2=0.05)
    params_wd, h_wd = fit_blobs(optimizer=nn.SGD(0.1, weight_decay=0.05))
    for k in params_l2:
        np.testing.assert_allclose(params_l2[k], params_wd[k], rtol=1e-10, atol=1e-12)


def test_fit_augment_sees_every_batch_and_keeps_the_labels():
    X, y = blobs()
    seen = []

    def augment(X_batch, rng):
        seen.append(len(X_batch))
        return X_batch + rng.normal(scale=0.01, size=X_batch.shape)

    params = nn.init_mlp([2, 8, 3], rng=0, dtype=np.float64)
    nn.fit(params, X, y, X, y, optimizer=nn.SGD(0.1), epochs=2, batch_size=25, rng=0,
           verbose=False, augment=augment)
    assert seen == [25, 25, 10] * 2


@pytest.mark.parametrize("augment, match", [
    (lambda X, rng: X[:-1], r"array of the batch's shape \(10, 2\) and dtype float64, got "
                            r"shape \(9, 2\)"),
    (lambda X, rng: X.astype(np.float32), r"got shape \(10, 2\), dtype float32"),
    (lambda X, rng: list(X), r"got list"),
    (lambda X, rng: X * np.nan, r"NaN"),
])
def test_fit_refuses_a_bad_augment_result(augment, match):
    with pytest.raises(ValueError, match=match):
        fit_blobs(augment=augment)


def test_early_stopping_restores_the_best_epoch():
    snapshots = {}

    def record(epoch, params):
        snapshots[epoch] = {k: v.copy() for k, v in params.items()}

    # SGD at lr 2 on blobs: the validation loss goes up and down, so the best epoch is inside
    params, history = fit_blobs(optimizer=nn.SGD(2.0), epochs=12, patience=3, callback=record)
    best = history["best_epoch"]
    losses = history["val_loss"]
    assert best == 1 + int(np.argmin(losses))
    assert len(losses) == min(12, best + 3), "stops patience epochs after the best"
    for k in params:
        np.testing.assert_array_equal(params[k], snapshots[best][k])
    assert nn.evaluate(params, *blobs(seed=1))[0] == pytest.approx(losses[best - 1])


def test_early_stopping_on_validation_accuracy():
    params, history = fit_blobs(epochs=8, patience=2, monitor="val_acc")
    best = history["best_epoch"]
    accs = history["val_acc"]
    assert accs[best - 1] == max(accs) and accs.index(max(accs)) == best - 1, \
        "the first epoch that reached the best accuracy"
    assert nn.evaluate(params, *blobs(seed=1))[1] == accs[best - 1]


def test_early_stopping_messages(capsys):
    fit_blobs(optimizer=nn.SGD(2.0), epochs=12, patience=1, verbose=True)
    out = capsys.readouterr().out
    assert "restored the parameters of epoch" in out


def test_fit_without_patience_has_no_best_epoch():
    _, history = fit_blobs()
    assert "best_epoch" not in history


# -------------------------------------------------------------------------------------------------
# Augmentation: random shifts
# -------------------------------------------------------------------------------------------------

def test_random_shift_moves_each_image_by_at_most_max_shift():
    images = np.zeros((500, 28, 28), dtype=np.float32)
    images[:, 10:18, 12:16] = 1.0                      # a block well inside the frame
    shifted = nn.random_shift(images, 2, rng=0)
    assert shifted.shape == images.shape and shifted.dtype == np.float32
    assert shifted.sum(axis=(1, 2)).tolist() == [32.0] * 500, "nothing falls off the frame"
    rows = np.argmax(shifted.any(axis=2), axis=1) - 10
    cols = np.argmax(shifted.any(axis=1), axis=1) - 12
    assert set(rows) == set(cols) == {-2, -1, 0, 1, 2}, "every shift from -2 to 2 occurs"
    np.testing.assert_array_equal(shifted[0, 10 + rows[0]:18 + rows[0], 12 + cols[0]:16 + cols[0]],
                                  1.0)


def test_random_shift_of_flat_images_keeps_pixel_values_and_range():
    X = np.random.default_rng(0).integers(0, 256, size=(50, 784)).astype(np.uint8)
    out = nn.random_shift(X, 3, rng=1)
    assert out.shape == X.shape and out.dtype == np.uint8
    assert np.isin(out, np.append(X.ravel(), 0)).all(), "pixels move, and 0 fills in"
    np.testing.assert_array_equal(nn.random_shift(X, 0, rng=1), X)
    assert out is not X


def test_random_shift_edge_pixels_fall_off():
    X = np.zeros((1, 3, 3))
    X[0, 0, 0] = 1.0
    shifted = [nn.random_shift(X, 1, rng=seed, image_shape=(3, 3)) for seed in range(30)]
    assert any(s.sum() == 0 for s in shifted) and any(s.sum() == 1 for s in shifted)


@pytest.mark.parametrize("kwargs, match", [
    (dict(X=np.zeros((2, 100))), r"expects images as X \(N, 784\) or \(N, 28, 28\), got shape "
                                 r"\(2, 100\)"),
    (dict(max_shift=-1), r"max_shift must be an integer >= 0"),
    (dict(max_shift=2.0), r"max_shift must be an integer >= 0"),
    (dict(max_shift=28), r"max_shift must be smaller than the image"),
    (dict(image_shape=[28, 28]), r"image_shape must be \(height, width\)"),
    (dict(rng="x"), r"rng must be a seed"),
])
def test_random_shift_bad_inputs(kwargs, match):
    args = dict(X=np.zeros((2, 784)), max_shift=2, rng=0) | kwargs
    with pytest.raises(ValueError, match=match):
        nn.random_shift(args.pop("X"), args.pop("max_shift"), **args)


# -------------------------------------------------------------------------------------------------
# Saving and loading the architecture
# -------------------------------------------------------------------------------------------------

def test_save_and_load_an_architecture_with_dropout(tmp_path):
    params = nn.init_mlp([4, 8, 6, 3], rng=0)
    layers = nn.mlp_layers(3, "tanh", dropout=0.25, input_dropout=0.1)
    path = nn.save_params(tmp_path / "model.npz", params, layers)
    loaded, loaded_layers = nn.load_params(path, with_layers=True)
    assert loaded_layers == layers
    assert loaded.keys() == params.keys()
    X = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    np.testing.assert_array_equal(nn.predict_logits(loaded, X, layers=loaded_layers),
                                  nn.predict_logits(params, X, layers=layers))
    assert nn.load_params(path).keys() == params.keys(), "plain load_params: params only"
    with np.load(path, allow_pickle=False) as archive:
        stored = archive[nn.ARCHITECTURE_KEY]
    assert stored.dtype.kind == "U" and stored.shape == ()
    assert json.loads(str(stored))["layers"][0] == {"type": "dropout", "rate": 0.1}


def test_load_without_a_stored_architecture_gives_none(tmp_path):
    path = nn.save_params(tmp_path / "m.npz", nn.init_mlp([2, 3], rng=0))
    assert nn.load_params(path, with_layers=True)[1] is None


def test_layers_json_round_trip_and_errors():
    layers = nn.mlp_layers(2, "leaky_relu", dropout=0.5)
    assert nn.layers_from_json(nn.layers_to_json(layers)) == layers
    for text in ("[]", '{"format": "other", "layers": []}', "not json",
                 '{"format": "%s", "layers": [{"type": "conv", "size": 3}]}'
                 % nn.ARCHITECTURE_FORMAT,
                 '{"format": "%s", "layers": [{"type": "dropout", "rate": 2}]}'
                 % nn.ARCHITECTURE_FORMAT):
        with pytest.raises(ValueError, match=r"not an architecture written by layers_to_json"):
            nn.layers_from_json(text)
    with pytest.raises(TypeError, match=r"layers must be a list of layers"):
        nn.layers_to_json(nn.Dense(1))


def _write(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("architecture, match", [
    (np.array(nn.layers_to_json(nn.mlp_layers(3))), r"do not fit params with 2 dense layers"),
    (np.array([1, 2]), r"'architecture' entry is not one JSON string"),
    (np.array("{}"), r"not an architecture written by layers_to_json"),
])
def test_load_params_checks_the_stored_architecture(tmp_path, architecture, match):
    params = nn.init_mlp([2, 3, 3], rng=0)
    path = _write(tmp_path / "m.npz", architecture=architecture, **params)
    with pytest.raises(ValueError, match=match):
        nn.load_params(path, with_layers=True)


def test_save_params_refuses_layers_that_do_not_fit(tmp_path):
    with pytest.raises(ValueError, match=r"do not fit params"):
        nn.save_params(tmp_path / "m.npz", nn.init_mlp([2, 3], rng=0), nn.mlp_layers(2))
    assert not (tmp_path / "m.npz").exists()


# -------------------------------------------------------------------------------------------------
# Augmentation: elastic distortions
# -------------------------------------------------------------------------------------------------

def test_random_elastic_keeps_shape_dtype_and_pixel_range():
    X = np.random.default_rng(0).random((40, 784), dtype=np.float32)
    out = nn.random_elastic(X, rng=1)
    assert out.shape == X.shape and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1, "bilinear reads mix pixels, never leave their range"
    assert not np.array_equal(out, X)
    np.testing.assert_array_equal(nn.random_elastic(X, 0.0, rng=1), X)
    np.testing.assert_array_equal(nn.random_elastic(X, rng=5), nn.random_elastic(X, rng=5))


def test_random_elastic_moves_pixels_by_about_alpha_times_the_smoothed_field():
    # a vertical ramp: the value at a pixel is its row, so the distorted image minus the row
    # index is the vertical displacement wherever the read stays inside the frame
    ramp = np.repeat(np.arange(28, dtype=np.float64)[:, None], 28, axis=1)[None].repeat(200, 0)
    moved = nn.random_elastic(ramp, 34.0, 4.0, rng=0)
    shift = (moved - ramp)[:, 6:22, 6:22]
    assert 0.5 < shift.std() < 3.0, f"displacements of a pixel or two, got std {shift.std():.2f}"
    small = nn.random_elastic(ramp, 3.4, 4.0, rng=0)
    np.testing.assert_allclose((small - ramp)[:, 6:22, 6:22], shift / 10, atol=1e-9,
                               err_msg="the displacement is proportional to alpha")


def test_bilinear_reads_whole_and_half_pixels_and_zero_outside():
    img = np.random.default_rng(0).random((1, 5, 6))
    rows = np.arange(5.0)[None, :, None] + np.zeros((1, 5, 6))
    cols = np.arange(6.0)[None, None, :] + np.zeros((1, 5, 6))
    np.testing.assert_array_equal(nn._bilinear(img, rows, cols + 1)[0, :, :5], img[0, :, 1:])
    np.testing.assert_array_equal(nn._bilinear(img, rows, cols + 1)[0, :, 5], 0)
    np.testing.assert_allclose(nn._bilinear(img, rows + 0.5, cols)[0, :4],
                               (img[0, :4] + img[0, 1:]) / 2)
    assert np.all(nn._bilinear(img, rows - 40, cols) == 0)
    assert np.all(nn._bilinear(img, rows, cols + 40) == 0)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(X=np.zeros((2, 100))), ValueError, r"random_elastic expects images as X \(N, 784\)"),
    (dict(X=np.zeros((2, 784), dtype=np.uint8)), TypeError, r"X must hold real numbers"),
    (dict(alpha=-1.0), ValueError, r"alpha must be a non-negative number"),
    (dict(sigma=0.0), ValueError, r"sigma must be a positive number"),
    (dict(rng="0"), ValueError, r"rng must be a seed"),
])
def test_random_elastic_bad_inputs(kwargs, error, match):
    args = dict(X=np.zeros((2, 784)), alpha=34.0, sigma=4.0, rng=0) | kwargs
    with pytest.raises(error, match=match):
        nn.random_elastic(args.pop("X"), args.pop("alpha"), args.pop("sigma"), **args)

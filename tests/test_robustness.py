"""Robustness tests of nn_helpers: every bad input or fault gets a clear error, nothing is
silently wrong, nothing hangs, nothing is left behind.

One section per class of fault of the robustness issue: downloads and files, numbers, everything
else (the messages of bad arguments), optimizers and schedules, training with fit. Downloads only
ever talk to servers on 127.0.0.1 started here (the fixtures come from conftest.py, which also
fails any test that opens another URL); every network test bounds its own run time, so a hang
shows up as a failure, not as a stuck suite.
"""

import functools
import gzip
import math
import os
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import nn_helpers as nn
from mnist_fakes import NAMES, leftovers

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None


# =================================================================================================
# Downloads and files
# =================================================================================================

@pytest.fixture
def raw_server():
    """Factory: ``raw_server(handle)`` runs ``handle(connection)`` for every TCP connection to a
    server on 127.0.0.1 and returns ``(base_url, connection_count)``; for servers too badly
    behaved for http.server (dripping bytes, never answering)."""
    servers = []

    def start(handle):
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(0.05)
        count, stop = [], threading.Event()

        def serve():
            while not stop.is_set():
                try:
                    conn, _ = listener.accept()
                except OSError:
                    continue
                count.append(1)
                threading.Thread(target=run, args=(conn,), daemon=True).start()

        def run(conn):
            with conn:
                try:
                    conn.recv(65536)  # the request
                    handle(conn, stop)
                except OSError:
                    pass  # the client gave up: that is the point

        threading.Thread(target=serve, daemon=True).start()
        servers.append((listener, stop))
        return f"http://127.0.0.1:{listener.getsockname()[1]}/mnist/", count

    yield start
    for listener, stop in servers:
        stop.set()
        listener.close()


def drip(data: bytes, every: float = 0.05, head: bytes = b""):
    """A handler that sends ``head`` at once, then ``data`` one byte every ``every`` seconds."""
    def handle(conn, stop):
        conn.sendall(head)
        for i in range(len(data)):
            if stop.is_set():
                return
            conn.sendall(data[i:i + 1])
            time.sleep(every)
    return handle


HEADERS = b"HTTP/1.0 200 OK\r\nContent-Length: 100000000\r\n\r\n"


@pytest.mark.parametrize("what", ["body", "headers"])
def test_dripping_mirror_is_given_up_after_about_timeout(tiny, env, raw_server, what):
    url, connections = raw_server(drip(bytes(10_000), head=HEADERS) if what == "body"
                                  else drip(HEADERS))
    start = time.perf_counter()
    with pytest.raises(nn.MNISTDataError) as info:
        nn.load_mnist(env / "mine", mirrors=[url], timeout=0.3)
    elapsed = time.perf_counter() - start
    assert elapsed < 2.0, f"a dripping mirror held load_mnist for {elapsed:.1f} s"
    assert len(connections) == 1, "a mirror that failed must not be tried for the other files"
    message = str(info.value)
    assert ("too slow" if what == "body" else "no answer within 0.3 s") in message
    assert f"{url}{NAMES[1]}: not tried, this mirror already failed for {NAMES[0]}" in message
    assert leftovers(env / "mine") == []


def test_connection_closed_early_is_a_failure(tiny, env, raw_server):
    def short(conn, stop):
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 1000\r\n\r\n" + bytes(10))

    url, _ = raw_server(short)
    with pytest.raises(nn.MNISTDataError, match=r"the connection closed after 10 bytes, 990 short"):
        nn.load_mnist(env / "mine", mirrors=[url], timeout=2)


def test_silent_mirror_then_good_mirror(tiny, env, raw_server, mirror):
    silent, _ = raw_server(lambda conn, stop: stop.wait(5))
    good, _ = mirror(tiny.gz)
    start = time.perf_counter()
    tiny.check(nn.load_mnist(env / "mine", mirrors=[silent, good], timeout=0.3))
    assert time.perf_counter() - start < 2.0, "the silent mirror should cost one timeout, not four"


@pytest.mark.parametrize("timeout", [None, 0, -1, float("nan"), float("inf"), "10", True])
def test_bad_timeout_is_refused_before_any_download(tiny, env, mirror, timeout):
    url, requested = mirror(tiny.gz)
    with pytest.raises(ValueError, match=r"timeout must be a positive number.*got"):
        nn.load_mnist(env / "mine", mirrors=[url], timeout=timeout)
    assert requested == []


@pytest.mark.parametrize("mirrors, error, match", [
    ("http://127.0.0.1:9/mnist/", TypeError, r"got 'http.*put the one URL in a list"),
    (None, TypeError, r"mirrors must be a list of base URLs.*download=False"),
    ([None], ValueError, r"mirrors must hold base URLs starting with http://.*got None"),
    (["127.0.0.1/mnist"], ValueError, r"got '127.0.0.1/mnist'"),
])
def test_bad_mirrors_are_refused(tiny, env, mirrors, error, match):
    with pytest.raises(error, match=match):
        nn.load_mnist(env / "mine", mirrors=mirrors)


def test_empty_data_dir_is_refused(tiny, env, mirror, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    url, requested = mirror(tiny.gz)
    with pytest.raises(ValueError, match=r"data_dir is an empty string.*pass None"):
        nn.load_mnist("", mirrors=[url], timeout=5)
    assert requested == [] and leftovers(tmp_path) == leftovers(tmp_path)
    with pytest.raises(TypeError, match=r"data_dir must be a folder.*got 3 \(int\)"):
        nn.load_mnist(3, download=False)


def test_folder_named_like_a_data_file_is_reported(tiny, env):
    folder = tiny.write(env / "mine")
    (folder / NAMES[2]).unlink()
    (folder / NAMES[2]).mkdir()
    with pytest.raises(nn.MNISTDataError, match=rf"{NAMES[2]} is not a regular file \(a folder"):
        nn.load_mnist(folder, download=False)


@pytest.mark.parametrize("download", [False, True])
def test_data_dir_that_is_a_file_is_reported(tiny, env, mirror, download):
    not_a_folder = env / "mnist.zip"
    not_a_folder.write_bytes(b"PK")
    url, _ = mirror(tiny.gz)
    with pytest.raises(nn.MNISTDataError, match=rf"{not_a_folder} is a file, not a folder"):
        nn.load_mnist(not_a_folder, download=download, mirrors=[url], timeout=5)


def test_download_false_must_be_a_bool(tiny, env):
    with pytest.raises(ValueError, match=r"download must be True or False, got 'no'"):
        nn.load_mnist(env / "mine", download="no")


def test_load_mnist_splits_passes_mirrors_and_timeout_on(tiny, env, mirror):
    url, requested = mirror(tiny.gz)
    splits = nn.load_mnist_splits(env / "mine", n_val=2, mirrors=[url], timeout=5)
    assert len(requested) == 4 and splits.X_train.shape == (5, 12)
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        nn.load_mnist_splits(env / "other", n_val=2, mirrors=[url], timeout=-1)


@functools.lru_cache(maxsize=1)
def bomb(size=16 * 2**20):
    """A small gzip file that decompresses to ``size`` zero bytes (made once: it takes time)."""
    return gzip.compress(bytes(size), compresslevel=9, mtime=0)


def test_decompression_is_capped_for_a_mirror(tiny, env, mirror):
    blob = bomb()
    assert len(blob) < 64 * 2**10
    url, _ = mirror({name: blob for name in NAMES})
    tracemalloc.start()
    try:
        with pytest.raises(nn.MNISTDataError, match=r"decompresses to more than \d+ bytes"):
            nn.load_mnist(env / "mine", mirrors=[url], timeout=5)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * 2**20, f"decompressing took {peak / 2**20:.0f} MiB"
    assert leftovers(env / "mine") == []


def test_decompression_is_capped_for_a_local_file(tiny, env):
    folder = tiny.write(env / "mine")
    (folder / NAMES[0]).write_bytes(bomb())
    with pytest.raises(nn.MNISTDataError, match=rf"{NAMES[0]}: decompresses to more than"):
        nn.load_mnist(folder, download=False)


def test_gzip_with_several_members_and_zero_padding_is_accepted(tiny, env):
    folder = tiny.write(env / "mine")
    raw = tiny.raw[NAMES[0]]
    (folder / NAMES[0]).write_bytes(gzip.compress(raw[:10]) + gzip.compress(raw[10:]) + bytes(8))
    tiny.check(nn.load_mnist(folder, download=False))


def test_empty_gz_file_is_refused(tiny, env):
    folder = tiny.write(env / "mine")
    (folder / NAMES[3]).write_bytes(b"")
    with pytest.raises(nn.MNISTDataError, match=r"not a complete gzip file"):
        nn.load_mnist(folder, download=False)


# ----------------------------------------------------------------------------- leftover files


def part_files(folder: Path):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


KILLED_WRITER = textwrap.dedent("""
    import os, sys, time
    sys.path.insert(0, sys.argv[2])
    import nn_helpers as nn
    from pathlib import Path

    def write(f):
        f.write(b"half of a model")
        f.flush()
        print("writing", flush=True)
        time.sleep(60)

    nn._write_atomically(Path(sys.argv[1]), write)
""")


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_leftover_of_a_killed_save_is_removed_by_the_next_save(tmp_path):
    target = tmp_path / "model.npz"
    repo = str(Path(nn.__file__).parent)
    writer = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(target), repo],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline() == "writing\n"
    finally:
        writer.kill()
        writer.wait()
        writer.stdout.close()
    assert len(part_files(tmp_path)) == 1, "the killed writer should have left its .part file"
    nn.save_params(target, nn.init_mlp([3, 2], rng=0))
    assert leftovers(tmp_path) == ["model.npz"]


def test_stale_parts_of_a_download_are_removed(tiny, env, mirror):
    target = env / "mine"
    target.mkdir()
    for i in range(3):  # what three killed downloads of the old code left behind
        (target / f".{NAMES[0]}.abc{i}_xyz.part").write_bytes(b"partial")
    (target / ".someone-else.npz.abcd1234.part").write_bytes(b"not ours")
    url, _ = mirror(tiny.gz)
    tiny.check(nn.load_mnist(target, mirrors=[url], timeout=5))
    assert part_files(target) == [".someone-else.npz.abcd1234.part"]


@pytest.mark.skipif(fcntl is None, reason="POSIX file locks")
def test_a_live_writers_part_is_not_removed(tmp_path):
    live = tmp_path / ".model.npz.live0001.part"
    with open(live, "wb") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # what another process saving model.npz holds
        nn.save_params(tmp_path / "model.npz", nn.init_mlp([3, 2], rng=0))
        assert live.exists(), "the temporary file of a write in progress was deleted"


# ----------------------------------------------------------------------------- permissions


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_saved_and_downloaded_files_respect_the_umask(tiny, env, mirror, umask_022):
    path = nn.save_params(env / "model.npz", nn.init_mlp([3, 2], rng=0))
    assert mode(path) == 0o644
    url, _ = mirror(tiny.gz)
    nn.load_mnist(env / "shared", mirrors=[url], timeout=5)
    assert {mode(env / "shared" / name) for name in NAMES} == {0o644}


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
@pytest.mark.parametrize("old_mode", [0o644, 0o640, 0o664])
def test_saving_over_a_file_keeps_its_permissions(tmp_path, umask_022, old_mode):
    path = tmp_path / "model.npz"
    path.write_bytes(b"old")
    path.chmod(old_mode)
    nn.save_params(path, nn.init_mlp([3, 2], rng=0))
    assert mode(path) == old_mode


# ----------------------------------------------------------------------------- save_params


def test_full_disk_names_the_target_and_the_fix(tmp_path, monkeypatch):
    def full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    target = tmp_path / "model.npz"
    with pytest.raises(OSError) as info:
        nn.save_params(target, nn.init_mlp([3, 2], rng=0))
    message = str(info.value)
    assert message.startswith(f"could not save {target}: No space left on device; the disk is "
                              "full") and ".part" not in message
    assert info.value.errno == 28
    assert leftovers(tmp_path) == []


def test_missing_folder_names_the_target_and_keeps_the_error_class(tmp_path):
    target = tmp_path / "no" / "such" / "folder" / "model.npz"
    with pytest.raises(FileNotFoundError, match=r"could not save .*model.npz: .*check that the "
                                                r"folder exists") as info:
        nn.save_params(target, nn.init_mlp([3, 2], rng=0))
    assert ".part" not in str(info.value)


def test_saving_onto_a_folder_is_explained(tmp_path):
    (tmp_path / "model.npz").mkdir()
    with pytest.raises(OSError, match=r"could not save .*model.npz: .*folder"):
        nn.save_params(tmp_path / "model.npz", nn.init_mlp([3, 2], rng=0))
    assert part_files(tmp_path) == []


def test_save_and_load_expand_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    params = nn.init_mlp([3, 2], rng=0)
    path = nn.save_params("~/model.npz", params)
    assert path == tmp_path / "model.npz" and path.is_file()
    np.testing.assert_array_equal(nn.load_params("~/model.npz")["W1"], params["W1"])


@pytest.mark.skipif(not hasattr(os, "symlink") or os.name != "posix", reason="symlinks")
def test_saving_onto_a_symlink_writes_through_it(tmp_path):
    real = tmp_path / "models" / "best.npz"
    real.parent.mkdir()
    nn.save_params(real, nn.init_mlp([3, 2], rng=0))
    link = tmp_path / "latest.npz"
    link.symlink_to(real)
    new = nn.init_mlp([3, 2], rng=1)
    nn.save_params(link, new)
    assert link.is_symlink(), "the symlink was replaced by a file"
    np.testing.assert_array_equal(nn.load_params(real)["W1"], new["W1"])


@pytest.mark.parametrize("dtype", [np.float16, np.int64, np.complex128, np.longdouble, object])
def test_save_params_refuses_what_load_params_would_refuse(tmp_path, dtype):
    if np.dtype(dtype) == np.float64:
        pytest.skip("long double is float64 on this platform")
    params = nn.init_mlp([3, 2], rng=0)
    params = {k: v.astype(dtype) for k, v in params.items()}
    with pytest.raises(TypeError, match=r"W1 has dtype .*expected float32 or float64"):
        nn.save_params(tmp_path / "model.npz", params)
    assert leftovers(tmp_path) == []


def test_save_params_refuses_mixed_dtypes(tmp_path):
    params = nn.init_mlp([3, 2], rng=0)
    params["b1"] = params["b1"].astype(np.float64)
    with pytest.raises(TypeError, match=r"params mix dtypes: W1 is float32 but b1 is float64"):
        nn.save_params(tmp_path / "model.npz", params)
    assert leftovers(tmp_path) == []


# =================================================================================================
# Numbers
# =================================================================================================

def blobs(n_per_class=30, seed=0, dtype=np.float32):
    """Three well-separated Gaussian blobs in 2-D, labels 0, 1, 2."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 3.0], [3.0, -1.5], [-3.0, -1.5]])
    X = np.concatenate([c + 0.6 * rng.standard_normal((n_per_class, 2)) for c in centres])
    return X.astype(dtype), np.repeat(np.arange(3), n_per_class)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_relative_error_of_non_finite_gradients_fails_every_check(bad):
    a = np.array([1.0, 2.0, 3.0])
    b = a.copy()
    b[1] = bad
    assert nn.relative_error(a, b) == math.inf and nn.relative_error(b, a) == math.inf
    assert nn.relative_error(b, b) == math.inf, "equal NaN gradients are not a passed check"
    errors = [1e-10, nn.relative_error(a, b)]
    assert not max(errors) < 1e-7 and not all(e < 1e-7 for e in errors)


def test_gradient_check_fails_on_nan_gradients(monkeypatch):
    rng = np.random.default_rng(0)
    params = nn.init_mlp([4, 5, 3], "xavier", rng=rng, dtype=np.float64)
    X, y = rng.normal(size=(6, 4)), rng.integers(0, 3, size=6)
    broken = lambda dA, A: dA * np.nan  # noqa: E731
    monkeypatch.setitem(nn.ACTIVATIONS, "tanh", (nn.tanh_forward, broken))
    errors = nn.check_mlp_gradients(params, X, y, "tanh")
    assert errors["W1"] == math.inf and errors["b1"] == math.inf
    assert not max(errors.values()) < 1e-7


@pytest.mark.parametrize("call", [
    lambda p, X, y: nn.mlp_forward(p, X),
    lambda p, X, y: nn.predict(p, X),
    lambda p, X, y: nn.predict_logits(p, X),
    lambda p, X, y: nn.evaluate(p, X, y),
    lambda p, X, y: nn.mlp_loss_and_grads(p, X, y),
], ids=["mlp_forward", "predict", "predict_logits", "evaluate", "mlp_loss_and_grads"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_inputs_are_named_as_the_cause(call, bad):
    X, y = blobs(n_per_class=4)
    X[5, 1] = bad
    with pytest.raises(ValueError) as info:
        call(nn.init_mlp([2, 4, 3], rng=0), X, y)
    message = str(info.value)
    assert message.startswith(f"X holds 1 NaN or inf value(s); the first, {bad}, at row 5, "
                              "column 1.")
    assert "comes from the data" in message and "learning rate" not in message


@pytest.mark.parametrize("call", [nn.predict, nn.predict_logits,
                                  lambda p, X: nn.evaluate(p, X, [0])])
def test_non_finite_parameters_are_named(call):
    params = nn.init_mlp([2, 4, 3], rng=0)
    params["W2"][1, 2] = np.inf
    with pytest.raises(ValueError, match=r"params\['W2'\] holds 1 NaN or inf.*row 1, column 2.*"
                                         r"re-initialise"):
        call(params, np.zeros((1, 2), np.float32))


def test_a_diverged_model_gives_non_finite_logits_in_a_hand_written_loop():
    # notebook 02 stops its own training loop when np.isfinite(logits) turns False
    params = nn.init_mlp([2, 4, 3], rng=0)
    params["W1"][:] = np.nan
    logits, _ = nn.mlp_forward(params, np.ones((2, 2), np.float32))
    assert not np.isfinite(logits).any()
    with pytest.raises(ValueError, match=r"logits holds 6 NaN or inf.*parameters hold NaN or inf"):
        nn.softmax_cross_entropy(logits, np.array([0, 1]))


def test_predict_refuses_logits_that_overflow():
    params = nn.init_mlp([2, 4, 3], rng=0)
    params["W1"][:] = 1e30  # finite, but 1e30 * 1e30 is not in float32
    params["W2"][:] = 1e30
    with np.errstate(over="ignore"), pytest.raises(ValueError, match=r"the logits holds 3 NaN or "
                                                                     r"inf.*overflowed"):
        nn.predict(params, np.ones((1, 2), np.float32))


def test_integer_pixels_are_converted_not_refused():
    params = nn.init_mlp([4, 3, 2], rng=0)
    pixels = np.array([[0, 255, 128, 3]], dtype=np.uint8)
    np.testing.assert_array_equal(nn.mlp_forward(params, pixels)[0],
                                  nn.mlp_forward(params, pixels.astype(np.float32))[0])


@pytest.mark.parametrize("call, match", [
    (lambda: nn.cross_entropy(np.zeros((0, 10)), np.zeros(0, np.int64)), "mean loss of no sampl"),
    (lambda: nn.softmax_cross_entropy(np.zeros((0, 3)), np.zeros(0, np.int64)), "no samples"),
    (lambda: nn.accuracy(np.zeros(0, np.int64), np.zeros(0, np.int64)), "accuracy of no sampl"),
    (lambda: nn.evaluate(nn.init_mlp([2, 3], rng=0), np.zeros((0, 2)), []), "X holds no samples"),
    (lambda: nn.softmax(np.zeros((4, 0))), r"C, the number of classes, must be at least 1"),
])
def test_empty_inputs_raise_instead_of_nan(call, match):
    with warnings_as_errors():
        with pytest.raises(ValueError, match=match):
            call()


def test_empty_inputs_that_have_an_answer_give_it():
    params = nn.init_mlp([2, 3], rng=0)
    with warnings_as_errors():
        assert nn.predict(params, np.zeros((0, 2))).shape == (0,)
        assert nn.predict_logits(params, np.zeros((0, 2))).shape == (0, 3)
        assert nn.softmax(np.zeros((0, 3))).shape == (0, 3)
        assert nn.confusion_matrix([], [], num_classes=3).sum() == 0


class warnings_as_errors:
    """A context in which any warning (a RuntimeWarning from a mean of nothing) fails."""

    def __enter__(self):
        import warnings
        self._catcher = warnings.catch_warnings()
        self._catcher.__enter__()
        warnings.simplefilter("error")

    def __exit__(self, *exc):
        return self._catcher.__exit__(*exc)


@pytest.mark.parametrize("scale", [np.nan, np.inf, -0.1, 0, "0.01", None])
def test_init_refuses_a_bad_scale(scale):
    with pytest.raises(ValueError, match=r"scale must be a positive number, got"):
        nn.init_weights(3, 4, "normal", rng=0, scale=scale)
    with pytest.raises(ValueError, match=r"scale must be a positive number"):
        nn.init_mlp([3, 4, 2], "normal", rng=0, scale=scale)


@pytest.mark.parametrize("dtype", [np.int32, np.uint8, np.complex64, np.float16, "bool", "x"])
def test_init_refuses_dtypes_a_model_cannot_have(dtype):
    with pytest.raises(TypeError, match=r"dtype must be np.float32 or np.float64"):
        nn.init_mlp([3, 4, 2], rng=0, dtype=dtype)
    with pytest.raises(TypeError, match=r"dtype must be np.float32 or np.float64"):
        nn.init_weights(3, 4, rng=0, dtype=dtype)


# =================================================================================================
# Everything else: each bad argument gets a message naming it, the expectation and what arrived
# =================================================================================================

@pytest.mark.parametrize("make_params, error, match", [
    (lambda p: {k: v.tolist() for k, v in p.items()}, TypeError,
     r"params\['W1'\] must be a NumPy array, got list"),
    (lambda p: list(p.values()), TypeError, r"params must be a dict of arrays.*got list"),
    (lambda p: {**p, 1: np.zeros(2)}, ValueError, r"params must be named W1, b1"),
    (lambda p: {k: v.astype(np.int64) for k, v in p.items()}, TypeError,
     r"W1 has dtype int64, expected float32 or float64"),
])
def test_bad_params_are_explained(make_params, error, match):
    params = make_params(nn.init_mlp([2, 3, 2], rng=0))
    for call in (lambda: nn.mlp_forward(params, np.zeros((1, 2))),
                 lambda: nn.predict(params, np.zeros((1, 2))),
                 lambda: nn.num_layers(params)):
        with pytest.raises(error, match=match):
            call()


@pytest.mark.parametrize("activation", [["relu"], None, 1, np.str_])
def test_activation_names_that_are_not_strings(activation):
    with pytest.raises(TypeError, match=r"activation must be the name of an activation, one of "
                                        r"\['leaky_relu', 'relu', 'sigmoid', 'tanh'\], got"):
        nn.mlp_forward(nn.init_mlp([2, 3], rng=0), np.zeros((1, 2)), activation)


def test_activation_in_capitals_gets_a_hint():
    with pytest.raises(ValueError, match=r"unknown activation 'ReLU'.*lower case: 'relu'"):
        nn.activation_forward(np.zeros(2), "ReLU")


@pytest.mark.parametrize("sizes, where", [
    ([784, True, 10], r"\(entry 1 is True\)"),
    ([784, 128.0, 10], r"\(entry 1 is 128.0\)"),
    (784, r"got 784\.$"),
    (None, r"got None\.$"),
])
def test_layer_sizes_name_the_bad_entry(sizes, where):
    with pytest.raises(ValueError, match=r"layer_sizes must be two or more positive ints.*"
                                         + where):
        nn.init_mlp(sizes, rng=0)


@pytest.mark.parametrize("num_classes", [-1, 0, 2.5, "10", None])
def test_one_hot_num_classes(num_classes):
    with pytest.raises(ValueError, match=rf"num_classes must be a positive integer, got "
                                         rf"{num_classes!r}"):
        nn.one_hot([0, 1], num_classes=num_classes)


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, None])
def test_predict_logits_batch_size(batch_size):
    with pytest.raises(ValueError, match=r"batch_size must be a positive integer"):
        nn.predict_logits(nn.init_mlp([2, 3], rng=0), np.zeros((4, 2)), batch_size=batch_size)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(images=np.zeros((0, 28, 28))), ValueError, r"at least one image, got shape \(0, 28,"),
    (dict(labels=[1, 2]), ValueError, r"labels must hold one entry per image, shape \(3,\), got "
                                      r"shape \(2,\)"),
    (dict(labels=[1, 2], predicted=[1, 2, 3]), ValueError, r"labels must hold one entry"),
    (dict(predicted=[[1, 2, 3]]), ValueError, r"predicted must hold one entry per image"),
    (dict(n_cols=0), ValueError, r"n_cols must be a positive integer, got 0"),
    (dict(images=np.zeros((3, 27, 27)).reshape(3, -1)), ValueError, r"\(N, 28, 28\) or \(N, 78"),
    (dict(images=[["a"]]), TypeError, r"images must hold"),
])
def test_show_digits_arguments(kwargs, error, match):
    args = dict(images=np.zeros((3, 28, 28)))
    args.update(kwargs)
    with pytest.raises(error, match=match):
        nn.show_digits(**args)


@pytest.mark.parametrize("call, error, match", [
    (lambda: nn.show_weights(np.zeros((784, 4)), n=0), ValueError, r"n must be a positive int"),
    (lambda: nn.plot_history({"epoch": []}), TypeError, r"history must be the dict that fit "
                                                        r"returns.*missing \['train_loss'"),
    (lambda: nn.plot_confusion_matrix(np.zeros((3, 2), int)), ValueError, r"square \(C, C\)"),
    (lambda: nn.show_signed(None, np.zeros(784)), ValueError, r"values must be a 2-D array.*"
                                                              r"reshape\(28, 28\)"),
    (lambda: nn.show_signed(None, np.zeros((2, 2)), limit=0), ValueError, r"limit must be"),
    (lambda: nn.show_weights(np.zeros((784, 4)), limit=-1.0), ValueError, r"limit must be"),
])
def test_plot_helper_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_signed_images_share_one_convention():
    """show_signed and show_weights: SIGNED_CMAP, a scale symmetric around 0, a colour bar."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    image = nn.show_signed(ax, np.array([[-1.0, 0.5], [2.0, 0.0]]), label="difference")
    assert image.get_cmap().name == nn.SIGNED_CMAP == "RdBu"
    assert image.get_clim() == (-2.0, 2.0)
    assert len(fig.axes) == 2 and fig.axes[1].get_ylabel() == "difference"
    plt.close(fig)

    W = np.zeros((784, 3))
    W[0, 0], W[1, 2] = 0.5, -3.0
    fig, ax = nn.show_weights(W, n=3, n_cols=2)
    (image,) = ax.images
    assert image.get_clim() == (-3.0, 3.0), "one scale for every tile"
    assert image.get_cmap().name == nn.SIGNED_CMAP
    mosaic = image.get_array()
    assert mosaic.shape == (2 * 28 + 3, 2 * 28 + 3), "2 x 2 tiles, 3 pixels apart"
    assert mosaic[0, 0] == 0.5 and mosaic[31, 1] == -3.0, "W[0, 0] and W[1, 2] in their tiles"
    assert np.ma.is_masked(mosaic[31, 31]), "the empty fourth tile stays blank"
    assert len(fig.axes) == 2, "the tiles and one colour bar"
    plt.close(fig)
    fig, ax = nn.show_weights(W, n=2, limit=1.0)
    assert ax.images[0].get_clim() == (-1.0, 1.0)
    plt.close(fig)

    images = np.zeros((3, 28, 28))
    images[1, 0, 0] = 1.0
    fig, ax = nn.show_digits(images, [4, 5, 6], predicted=[4, 6, 6], n_cols=2)
    mosaic = ax.images[0].get_array()
    gap_y = round(28 * 0.45) + 3                 # room for the two-line titles
    assert mosaic.shape == (2 * (28 + gap_y), 2 * 28 + 3)
    assert mosaic[gap_y, 28 + 3] == 1.0, "image 1 is the second tile of the first row"
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["pred 4\ntrue 4", "pred 6\ntrue 5", "pred 6\ntrue 6"]
    assert ax.texts[1].get_color() == nn.SERIES_COLORS[1] != ax.texts[0].get_color()
    plt.close(fig)


@pytest.mark.parametrize("h", [0, -1e-5, float("nan"), None])
def test_numerical_gradient_step(h):
    x = np.ones(3)
    with pytest.raises(ValueError, match=rf"h must be a positive number, got {h!r}"):
        nn.numerical_gradient(lambda: float(x.sum()), x, h=h)


def test_numerical_gradient_other_arguments():
    x = np.ones(3)
    with pytest.raises(TypeError, match=r"f must return one number \(the loss\).*tuple"):
        nn.numerical_gradient(lambda: (float(x.sum()), None), x)
    with pytest.raises(TypeError, match=r"needs float64 arrays, got list"):
        nn.numerical_gradient(lambda: 0.0, [1.0, 2.0])
    with pytest.raises(TypeError, match=r"f must be a function"):
        nn.numerical_gradient(0.0, x)
    x.setflags(write=False)
    with pytest.raises(ValueError, match=r"x is read-only"):
        nn.numerical_gradient(lambda: 0.0, x)


@pytest.mark.parametrize("call, match", [
    (lambda: nn.train_val_split(np.zeros(10), np.zeros(10), 2, rng="x"), r"rng must be a seed"),
    (lambda: nn.iterate_minibatches(np.zeros(4), np.zeros(4), 2, rng=1.5), r"rng must be a seed"),
    (lambda: nn.iterate_minibatches(np.zeros(4), 3, 2, rng=0), r"X and y must be arrays with one"),
    (lambda: nn.init_weights(3, 4, rng=None, scheme=7), r"scheme must be the name of an init"),
    (lambda: nn.init_weights(3.0, 4, rng=0), r"fan_in and fan_out must be positive integers"),
    (lambda: nn.load_params(""), r"path must be a file name"),
    (lambda: nn.parse_idx("0008"), r"parse_idx needs the bytes of a decompressed IDX file, got "
                                   r"str"),
    (lambda: nn.count_params([np.zeros(3)]), r"params must be a dict of arrays, got list"),
    (lambda: nn.dense_backward(np.ones((2, 3)), (np.ones((2, 4)), np.ones((4, 5)))),
     r"dZ must have the shape of Z = X @ W \+ b, \(2, 5\), got \(2, 3\)"),
])
def test_other_arguments(call, match):
    with pytest.raises((TypeError, ValueError), match=match):
        call()


def test_accuracy_refuses_float_predictions():
    probs = np.array([[0.9, 0.1], [0.2, 0.8]])
    with pytest.raises(TypeError, match=r"y_pred must hold integers, got dtype float64"):
        nn.accuracy([0, 1], probs.max(axis=1))  # max instead of argmax: silently 0 before


def test_mlp_backward_checks_the_shape_of_dlogits():
    params = nn.init_mlp([2, 3, 4], rng=0)
    logits, caches = nn.mlp_forward(params, np.ones((5, 2)))
    with pytest.raises(ValueError, match=r"dlogits must have the shape of the logits, \(5, 4\), "
                                         r"got \(4, 5\)"):
        nn.mlp_backward(logits.T, caches)


# =================================================================================================
# Optimizers and learning-rate schedules
# =================================================================================================

@pytest.mark.parametrize("name", sorted(nn.OPTIMIZERS))
@pytest.mark.parametrize("break_it, error, match", [
    (lambda p, g: p.update(b2=p["b2"].astype(np.int64)), TypeError, r"param b2 must be a float"),
    (lambda p, g: p["b2"].setflags(write=False), ValueError, r"param b2 is read-only"),
    (lambda p, g: g.update(b2=g["b2"] + 1j), TypeError, r"grad b2 must hold"),
    (lambda p, g: g.update(b2=g["b2"][:1]), ValueError, r"grad b2 has shape \(1,\)"),
    (lambda p, g: p.update(b2=list(p["b2"])), TypeError, r"param b2 must be a float array"),
], ids=["int bias", "read-only", "complex grad", "grad shape", "list"])
def test_a_refused_step_changes_nothing(name, break_it, error, match):
    params = nn.init_mlp([4, 3, 2], rng=0)
    grads = {k: np.ones_like(v) for k, v in params.items()}
    opt = nn.OPTIMIZERS[name](lr=0.1)
    opt.step(params, grads)  # one good step, so there is state that must not move
    before = {k: np.array(v, copy=True) for k, v in params.items()}
    state = {k: v.copy() for k, v in opt.state.items()}
    break_it(params, grads)
    with pytest.raises(error, match=match):
        opt.step(params, grads)
    for k in ("W1", "b1", "W2"):
        np.testing.assert_array_equal(params[k], before[k], err_msg=f"{name} changed {k}")
    assert opt.t == 1
    assert state.keys() == opt.state.keys()
    for k in state:
        np.testing.assert_array_equal(opt.state[k], state[k])


@pytest.mark.parametrize("name", sorted(nn.OPTIMIZERS))
def test_an_optimizer_belongs_to_the_model_it_first_stepped(name):
    first, second = nn.init_mlp([4, 3, 2], rng=0), nn.init_mlp([4, 3, 2], rng=1)
    grads = {k: np.ones_like(v) for k, v in first.items()}
    opt = nn.OPTIMIZERS[name](lr=0.01)
    opt.step(first, grads)
    opt.step(dict(first), grads)  # a new dict of the same arrays is the same model
    untouched = {k: v.copy() for k, v in second.items()}
    with pytest.raises(ValueError, match=rf"this {type(opt).__name__} already trained another "
                                         r"model for 2 steps.*optimizer.reset\(\)"):
        opt.step(second, grads)
    for k in second:
        np.testing.assert_array_equal(second[k], untouched[k])
    opt.reset()
    opt.step(second, grads)
    fresh, copy = nn.OPTIMIZERS[name](lr=0.01), {k: v.copy() for k, v in untouched.items()}
    fresh.step(copy, grads)
    for k in second:  # after reset, exactly a fresh optimizer's first step
        np.testing.assert_array_equal(second[k], copy[k])
    assert opt.t == 1


def test_an_array_replaced_instead_of_updated_is_noticed():
    params = nn.init_mlp([4, 3, 2], rng=0)
    grads = {k: np.ones_like(v) for k, v in params.items()}
    opt = nn.Momentum(0.1)
    opt.step(params, grads)
    params["W1"] = params["W1"] - 0.1 * grads["W1"]  # a new array: the velocity no longer fits
    with pytest.raises(ValueError, match=r"params\['W1'\] is not the array it updated before"):
        opt.step(params, grads)


@pytest.mark.parametrize("make, match", [
    (lambda: nn.Momentum(0.1, beta=1.5), r"beta must be a number in \[0, 1\), got 1.5"),
    (lambda: nn.Nesterov(0.1, beta=-0.1), r"beta must be a number in \[0, 1\)"),
    (lambda: nn.EMAMomentum(0.1, beta=1), r"beta must be a number in \[0, 1\), got 1"),
    (lambda: nn.RMSProp(rho=1.5), r"rho must be a number in \[0, 1\)"),
    (lambda: nn.RMSProp(eps=0), r"eps must be a positive number, got 0"),
    (lambda: nn.Adam(eps=0), r"eps must be a positive number, got 0"),
    (lambda: nn.Adam(beta1=1), r"beta1 must be a number in \[0, 1\), got 1"),
    (lambda: nn.Adam(beta2=float("nan")), r"beta2 must be .*got nan, which is not finite"),
    (lambda: nn.SGD("0.1"), r"lr must be a positive number, got '0.1'"),
    (lambda: nn.SGD(float("inf")), r"lr must be a positive number, got inf, which is not"),
    (lambda: nn.SGD(10**400), r"lr must be a positive number, got 1000.*, which is not finite"),
])
def test_hyperparameters_are_checked_at_construction(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_hyperparameters_are_checked_whenever_they_are_set():
    opt = nn.Adam(1e-3)
    for attr, bad in [("lr", -5), ("lr", 0), ("lr", None), ("beta1", 1.0), ("eps", -1e-8)]:
        with pytest.raises(ValueError, match=rf"{attr} must be"):
            setattr(opt, attr, bad)
    assert repr(opt) == "Adam(lr=0.001, beta1=0.9, beta2=0.999, eps=1e-08)", "nothing changed"
    opt.lr = np.float32(0.5)
    assert type(opt.lr) is float


def test_optimizer_step_needs_dicts():
    with pytest.raises(TypeError, match=r"params must be a dict of arrays, got list"):
        nn.SGD(0.1).step([np.zeros(2)], {"w": np.zeros(2)})


@pytest.mark.parametrize("make, match", [
    (lambda: nn.step_decay(0.1, drop=-1), r"drop must be a number in \(0, 1\], got -1"),
    (lambda: nn.step_decay(0.1, drop=0), r"drop must be a number in \(0, 1\]"),
    (lambda: nn.step_decay(0.1, drop=1.5), r"drop must be a number in \(0, 1\]"),
    (lambda: nn.step_decay(-0.1), r"lr0 must be a positive number, got -0.1"),
    (lambda: nn.constant_lr(float("nan")), r"lr0 must be a positive number, got nan"),
    (lambda: nn.cosine_decay(0.1, total=2.5), r"total must be a positive integer, got 2.5"),
    (lambda: nn.cosine_decay(0.1, 10, lr_min=0.2), r"lr_min must be a number in \[0, 0.1\]"),
    (lambda: nn.cosine_decay(0.1, 10, lr_min=-1e-3), r"lr_min must be a number in \[0, 0.1\]"),
])
def test_schedule_arguments_are_checked(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_schedules_say_what_they_are():
    assert repr(nn.step_decay(0.1)) == "step_decay(lr0=0.1, drop=0.5, every=5)"
    assert repr(nn.cosine_decay(0.1, 10)) == "cosine_decay(lr0=0.1, total=10, lr_min=0.0)"
    assert repr(nn.constant_lr(0.3)) == "constant_lr(0.3)"


# =================================================================================================
# Training: fit checks everything at entry, stops a blow-up, keeps the history on Ctrl-C
# =================================================================================================

FIT_KWARGS = dict(epochs=1, rng=0, verbose=False)


class CountingSGD(nn.SGD):
    def __init__(self, lr=0.1):
        super().__init__(lr)
        self.steps = 0

    def step(self, params, grads):
        self.steps += 1
        super().step(params, grads)


@pytest.mark.parametrize("change, error, match", [
    (dict(y_val=np.array([0, 1, 5])), ValueError, r"y_val has 3 labels but there are 12 samples"),
    (dict(y_val=np.zeros(12)), TypeError, r"y_val must hold integers"),
    (dict(y_val=np.full(12, 7)), ValueError, r"y_val must hold labels in \[0, 3\)"),
    (dict(X_val=np.zeros((12, 5))), ValueError, r"expected X_val with 2 features"),
    (dict(epochs=-3), ValueError, r"epochs must be a positive integer, got -3"),
    (dict(epochs=0), ValueError, r"epochs must be a positive integer, got 0"),
    (dict(epochs=2.0), ValueError, r"epochs must be a positive integer, got 2.0; write 2"),
    (dict(batch_size=0), ValueError, r"batch_size must be a positive integer, got 0"),
    (dict(optimizer=nn.SGD), TypeError, r"got the class SGD itself.*optimizer=nn.SGD\(lr=0.1\)"),
    (dict(optimizer="adam"), TypeError, r"got the string 'adam'; use nn.OPTIMIZERS\['adam'\]"),
    (dict(optimizer=None), TypeError, r"optimizer must have a step\(params, grads\) method"),
    (dict(schedule=0.1), TypeError, r"schedule must be a function such as nn.cosine_decay"),
    (dict(callback="print"), TypeError, r"callback must be a function"),
    (dict(rng="seed"), ValueError, r"rng must be a seed \(an integer >= 0\) or a np.random.Gen"),
    (dict(rng=-1), ValueError, r"rng must be a seed"),
    (dict(activation=0), TypeError, r"activation must be the name of an activation"),
    (dict(activation="tanh", layers=nn.mlp_layers(2)), ValueError, r"either activation="),
    (dict(layers=nn.mlp_layers(3)), ValueError, r"do not fit params with 2 dense layers"),
    (dict(layers=[nn.Dense(1), "relu", nn.Dense(2)]), TypeError, r"layers\[1\] is 'relu'"),
    (dict(l2=-1e-4), ValueError, r"l2 must be a non-negative number"),
    (dict(augment="shift"), TypeError, r"augment must be a function"),
    (dict(patience=0), ValueError, r"patience must be a positive integer"),
    (dict(patience=2, monitor="val_accuracy"), ValueError, r"unknown validation metric"),
])
def test_fit_checks_every_argument_before_training(change, error, match):
    X, y = blobs(n_per_class=4)
    params = nn.init_mlp([2, 3, 3], rng=0)
    before = {k: v.copy() for k, v in params.items()}
    args = dict(X_train=X, y_train=y, X_val=X, y_val=y, optimizer=CountingSGD(), **FIT_KWARGS)
    args.update(change)
    with pytest.raises(error, match=match):
        nn.fit(params, **args)
    for k in params:
        np.testing.assert_array_equal(params[k], before[k], err_msg="fit trained before refusing")


def test_fit_refuses_a_duck_optimizer_with_a_bad_rate():
    class Bare:
        lr = float("inf")

        def step(self, params, grads):
            raise AssertionError("must not be called")

    X, y = blobs(n_per_class=2)
    with pytest.raises(ValueError, match=r"optimizer.lr must be a positive number, got inf"):
        nn.fit(nn.init_mlp([2, 3], rng=0), X, y, X, y, optimizer=Bare(), **FIT_KWARGS)


def test_fit_names_non_finite_training_and_validation_inputs():
    X, y = blobs(n_per_class=4)
    bad = X.copy()
    bad[2, 0] = np.nan
    params = nn.init_mlp([2, 4, 3], rng=0)
    before = {k: v.copy() for k, v in params.items()}
    kwargs = dict(optimizer=nn.SGD(0.1), epochs=1, rng=0, verbose=False)
    with pytest.raises(ValueError, match=r"^X_train holds 1 NaN.*row 2, column 0"):
        nn.fit(params, bad, y, X, y, **kwargs)
    with pytest.raises(ValueError, match=r"^X_val holds 1 NaN.*row 2, column 0"):
        nn.fit(params, X, y, bad, y, **kwargs)
    for k in params:
        np.testing.assert_array_equal(params[k], before[k])


@pytest.mark.parametrize("which", ["X_train", "X_val"])
def test_fit_refuses_an_empty_data_set(which):
    X, y = blobs(n_per_class=3)
    data = {"X_train": X, "y_train": y, "X_val": X, "y_val": y}
    data[which], data["y" + which[1:]] = X[:0], y[:0]
    with pytest.raises(ValueError, match=rf"{which} holds no samples"):
        nn.fit(nn.init_mlp([2, 3], rng=0), *data.values(), optimizer=nn.SGD(0.1), epochs=1,
               rng=0, verbose=False)


def test_float64_inputs_to_a_float32_model_compute_in_float32():
    X, y = blobs(dtype=np.float64)
    params = nn.init_mlp([2, 8, 3], rng=0)
    assert nn.mlp_forward(params, X)[0].dtype == np.float32
    assert nn.predict_logits(params, X).dtype == np.float32
    _, grads = nn.mlp_loss_and_grads(params, X, y)
    assert {g.dtype for g in grads.values()} == {np.dtype(np.float32)}
    twin = {k: v.copy() for k, v in params.items()}
    kwargs = dict(epochs=2, batch_size=16, rng=0, verbose=False)
    nn.fit(params, X, y, X, y, optimizer=nn.Adam(0.01), **kwargs)
    nn.fit(twin, X.astype(np.float32), y, X.astype(np.float32), y, optimizer=nn.Adam(0.01),
           **kwargs)
    for k in params:  # the same as training on float32 data, to the bit
        assert params[k].dtype == np.float32
        np.testing.assert_array_equal(params[k], twin[k])


@pytest.mark.parametrize("where", ["b1", "W2"])
def test_params_that_mix_dtypes_are_refused(where):
    params = nn.init_mlp([2, 4, 3], rng=0)
    params[where] = params[where].astype(np.float64)
    X, y = blobs(n_per_class=2)
    for call in (lambda: nn.mlp_forward(params, X),
                 lambda: nn.fit(params, X, y, X, y, optimizer=nn.SGD(0.1), epochs=1, rng=0,
                                verbose=False)):
        with pytest.raises(TypeError, match=rf"params mix dtypes: W1 is float32 but {where} is "
                                            r"float64.*astype"):
            call()


@pytest.mark.parametrize("rate", [-0.1, 0, 0.0, float("nan"), float("inf"), None, "0.1"])
def test_fit_refuses_a_bad_rate_from_the_schedule_naming_it(rate):
    X, y = blobs(n_per_class=4)
    opt = CountingSGD()
    schedule = lambda epoch: 0.1 if epoch < 1 else rate  # noqa: E731
    with pytest.raises(ValueError, match=r"schedule\(1\), the rate of epoch 2, must be a positive "
                                         r"number.*fix test_fit_refuses.*<lambda>"):
        nn.fit(nn.init_mlp([2, 3], rng=0), X, y, X, y, optimizer=opt, epochs=3, batch_size=6,
               rng=0, verbose=False, schedule=schedule)
    assert opt.steps == 2, "the first epoch runs; the second stops before its first step"


def test_cosine_decay_past_its_total_is_refused_by_fit():
    X, y = blobs(n_per_class=4)
    with pytest.raises(ValueError, match=r"schedule\(2\), the rate of epoch 3, must be a positive "
                                         r"number, got 0.0.*cosine_decay\(lr0=0.1, total=2"):
        nn.fit(nn.init_mlp([2, 3], rng=0), X, y, X, y, optimizer=nn.SGD(0.1), epochs=3,
               rng=0, verbose=False, schedule=nn.cosine_decay(0.1, total=2))


class Saboteur:
    """A duck-typed optimizer: plain SGD, except that at step ``at`` it multiplies W2 by
    ``-factor``, making the model confidently wrong with finite logits."""

    def __init__(self, at, factor):
        self.lr, self.sgd, self.n, self.at, self.factor = 0.1, nn.SGD(0.1), 0, at, factor

    def step(self, params, grads):
        self.sgd.step(params, grads)
        self.n += 1
        if self.n == self.at:
            params["W2"] *= -self.factor


@pytest.mark.parametrize("at, factor, match", [
    (9, 1e3, r"the validation loss reached [\d.]+ after epoch 1, more than 100 times the 1.1 of "
             r"guessing uniformly among 3 classes"),
    (18, 3.0, r"the validation loss grew from 0.04\d+ to [\d.]+ after epoch 2, more than a "
              r"hundredfold"),
])
def test_a_loss_far_above_chance_is_divergence_without_nan(at, factor, match):
    X, y = blobs()  # 90 samples: 9 steps per epoch with batches of 10
    with pytest.raises(nn.TrainingDivergedError, match=match) as info:
        nn.fit(nn.init_mlp([2, 16, 3], rng=0), X, y, X, y, optimizer=Saboteur(at, factor),
               epochs=4, batch_size=10, rng=0, verbose=False)
    history = info.value.history
    assert history["epoch"] == list(range(1, at // 9 + 1)), "the history keeps the bad epoch too"
    assert all(np.isfinite(history["val_loss"]))
    assert "try lr=0.001" in str(info.value)


class Recovers:
    """Blows the model up mid-epoch (huge but finite training losses), then sets it to give
    uniform predictions by the end of the epoch: what SGD at lr 10 does on MNIST."""

    def __init__(self):
        self.lr, self.n = 10.0, 0

    def step(self, params, grads):
        self.n += 1
        for k in params:
            params[k][...] = 30.0 * (self.n % 9 != 0) * np.sign(np.arange(params[k].size)
                                                               .reshape(params[k].shape) - 3)


def test_a_run_that_blows_up_and_recovers_within_an_epoch_goes_on():
    X, y = blobs()
    with np.errstate(over="ignore"):
        history = nn.fit(nn.init_mlp([2, 16, 3], rng=0), X, y, X, y, optimizer=Recovers(),
                         epochs=3, batch_size=10, rng=0, verbose=False)
    assert min(history["train_loss"]) > 100, history["train_loss"]
    np.testing.assert_allclose(history["val_loss"], math.log(3), rtol=1e-6)


def test_divergence_advice_names_the_schedule_and_never_a_non_finite_rate():
    X, y = blobs()
    with np.errstate(all="ignore"), pytest.raises(nn.TrainingDivergedError) as info:
        nn.fit(nn.init_mlp([2, 16, 3], rng=0), X, y, X, y, optimizer=nn.SGD(0.1), epochs=3,
               batch_size=10, rng=0, verbose=False, schedule=nn.step_decay(1e6, drop=0.5))
    message = str(info.value)
    assert "the schedule step_decay(lr0=1000000.0, drop=0.5, every=5) set to 1e+06 for epoch " \
           "1 (make it start a hundred times lower)" in message
    assert "lr=inf" not in message and "lr=nan" not in message


def test_unscaled_pixels_give_a_warning_and_a_hint_when_training_blows_up():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(60, 16)).astype(np.float32)  # pixels, never divided by 255
    y = rng.integers(0, 10, size=60)
    with pytest.warns(nn.UnscaledInputWarning, match=r"X_train ranges from 0 to 255: if these "
                                                     r"are pixels, scale them to \[0, 1\]"), \
            np.errstate(all="ignore"), pytest.raises(nn.TrainingDivergedError) as info:
        nn.fit(nn.init_mlp([16, 8, 10], rng=0), X, y, X, y, optimizer=nn.SGD(1e3), epochs=2,
               batch_size=10, rng=0, verbose=False)
    assert "X_train ranges from 0 to 255: if these are pixels" in str(info.value)


@pytest.mark.filterwarnings("error::nn_helpers.UnscaledInputWarning")
def test_scaled_and_standardised_inputs_give_no_warning():
    X, y = blobs()  # standardised: negative values
    nn.fit(nn.init_mlp([2, 3], rng=0), X, y, X, y, optimizer=nn.SGD(0.1), **FIT_KWARGS)
    pixels = np.random.default_rng(0).random((30, 4), dtype=np.float32)  # in [0, 1]
    nn.fit(nn.init_mlp([4, 3], rng=0), pixels, y[:30] % 3, pixels, y[:30] % 3,
           optimizer=nn.SGD(0.1), **FIT_KWARGS)


class InterruptedIn:
    """SGD that raises KeyboardInterrupt at step ``at``, as Ctrl-C would."""

    def __init__(self, at):
        self.lr, self.sgd, self.n, self.at = 0.1, nn.SGD(0.1), 0, at

    def step(self, params, grads):
        self.n += 1
        if self.n == self.at:
            raise KeyboardInterrupt
        self.sgd.step(params, grads)


def test_ctrl_c_keeps_the_history_of_the_completed_epochs():
    X, y = blobs()
    with pytest.raises(KeyboardInterrupt) as info:  # still a KeyboardInterrupt
        nn.fit(nn.init_mlp([2, 8, 3], rng=0), X, y, X, y, optimizer=InterruptedIn(at=2 * 9 + 4),
               epochs=5, batch_size=10, rng=0, verbose=False)
    err = info.value
    assert isinstance(err, nn.TrainingInterrupted)
    assert err.history["epoch"] == [1, 2] and len(err.history["val_loss"]) == 2
    assert "interrupted in epoch 3 of 5" in str(err) and ".history" in str(err)

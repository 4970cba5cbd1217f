"""Tests of the data section of nn_helpers (taught in 01_data): the IDX parser, the MNIST loader
with its search order, hash check and download fallback, and the preprocessing helpers.

The loader tests run on tiny synthetic MNIST files (``MNIST_FILES`` is monkeypatched with their
shapes and hashes) and download only from an HTTP server on 127.0.0.1 started by the test; any
other URL fails the test. Tests on the real data are skipped unless ``$MNIST_DATA_DIR`` holds it.
"""

import gzip
import hashlib
import os
import time
from pathlib import Path

import numpy as np
import pytest

import nn_helpers as nn
from mnist_fakes import NAMES, idx_bytes, leftovers

# -------------------------------------------------------------------------------------------------
# parse_idx
# -------------------------------------------------------------------------------------------------

def test_parse_idx_labels_by_hand():
    raw = bytes([0, 0, 0x08, 1, 0, 0, 0, 4, 7, 2, 1, 0])
    y = nn.parse_idx(raw)
    np.testing.assert_array_equal(y, [7, 2, 1, 0])
    assert y.dtype == np.uint8 and y.shape == (4,)


def test_parse_idx_images_row_major():
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    got = nn.parse_idx(idx_bytes(images))
    assert got.shape == (2, 3, 4) and got.dtype == np.uint8
    np.testing.assert_array_equal(got, images)
    assert got.flags.writeable, "parse_idx should return a writable copy"


def test_parse_idx_big_endian_int16_by_hand():
    # 0x0102 = 258 and 0xFFFE = -2 only if the bytes are read big-endian
    raw = bytes([0, 0, 0x0B, 1, 0, 0, 0, 2, 0x01, 0x02, 0xFF, 0xFE])
    got = nn.parse_idx(raw)
    np.testing.assert_array_equal(got, [258, -2])
    assert got.dtype == np.int16 and got.dtype.isnative


@pytest.mark.parametrize("type_code, values", [
    (0x09, [-128, -1, 0, 127]),
    (0x0B, [-32768, -2, 258, 32767]),
    (0x0C, [-(2**31), -2, 16909060, 2**31 - 1]),
    (0x0D, [-1.5, 0.0, 3.25, 1e30]),
    (0x0E, [-1.5, 0.0, np.pi, 1e300]),
])
def test_parse_idx_other_type_codes(type_code, values):
    expected = np.array(values).reshape(2, 2)
    got = nn.parse_idx(idx_bytes(expected, type_code))
    assert got.shape == (2, 2) and got.dtype.isnative
    assert got.dtype.kind == ("f" if type_code >= 0x0D else "i")
    np.testing.assert_array_equal(got, expected.astype(got.dtype))


@pytest.mark.parametrize("magic, what", [
    (bytes([0x1F, 0x8B, 0x08, 0x00]), "1f8b0800"),  # a gzip header: forgot to decompress
    (bytes([0x00, 0x01, 0x08, 0x01]), "00010801"),
    (bytes([0x00, 0x00, 0x07, 0x01]), "00000701"),  # unknown type code
])
def test_parse_idx_wrong_magic(magic, what):
    with pytest.raises(nn.MNISTDataError, match=f"labels.idx: wrong magic number {what}.*gzip"):
        nn.parse_idx(magic + bytes(8), source="labels.idx")


def test_parse_idx_too_short_for_magic():
    with pytest.raises(nn.MNISTDataError, match=r"x: 3 bytes is too short"):
        nn.parse_idx(b"\x00\x00\x08", source="x")


def test_parse_idx_truncated_header():
    raw = idx_bytes(np.zeros((2, 3, 4), np.uint8))[:10]  # needs 4 + 3 * 4 = 16 bytes
    with pytest.raises(nn.MNISTDataError, match=r"truncated header \(10 of 16 bytes\)"):
        nn.parse_idx(raw)


def test_parse_idx_truncated_body():
    raw = idx_bytes(np.zeros((2, 3, 4), np.uint8))[:-1]
    with pytest.raises(nn.MNISTDataError, match=r"shape \(2, 3, 4\) \(40 bytes.*has 39 bytes"):
        nn.parse_idx(raw)


def test_parse_idx_trailing_bytes():
    raw = idx_bytes(np.zeros((2, 3), np.int16), 0x0B) + b"\x00"
    with pytest.raises(nn.MNISTDataError, match=r"shape \(2, 3\) \(24 bytes.*has 25 bytes"):
        nn.parse_idx(raw)


# -------------------------------------------------------------------------------------------------
# Where the loader looks
# -------------------------------------------------------------------------------------------------

def test_default_data_dir_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert nn.default_data_dir() == tmp_path / "nn-from-scratch" / "mnist"


@pytest.mark.parametrize("xdg", [None, ""])
def test_default_data_dir_falls_back_to_home_cache(monkeypatch, tmp_path, xdg):
    monkeypatch.setenv("HOME", str(tmp_path))
    if xdg is None:
        monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    else:
        monkeypatch.setenv("XDG_CACHE_HOME", xdg)
    assert nn.default_data_dir() == tmp_path / ".cache" / "nn-from-scratch" / "mnist"


def test_candidate_data_dirs_order(monkeypatch, env):
    cache = env / "xdg" / "nn-from-scratch" / "mnist"
    assert nn.candidate_data_dirs() == [cache]
    assert nn.candidate_data_dirs(env / "mine") == [env / "mine", cache]
    monkeypatch.setenv(nn.DATA_ENV_VAR, str(env / "shared"))
    assert nn.candidate_data_dirs() == [env / "shared", cache]
    assert nn.candidate_data_dirs(str(env / "mine")) == [env / "mine", env / "shared", cache]


def test_candidate_data_dirs_drops_repeats_and_empty_env(monkeypatch, env):
    cache = env / "xdg" / "nn-from-scratch" / "mnist"
    monkeypatch.setenv(nn.DATA_ENV_VAR, str(env / "a"))
    assert nn.candidate_data_dirs(env / "a") == [env / "a", cache]
    assert nn.candidate_data_dirs(cache) == [cache, env / "a"]
    monkeypatch.setenv(nn.DATA_ENV_VAR, "")
    assert nn.candidate_data_dirs() == [cache]


def test_candidate_data_dirs_expands_user(monkeypatch, env):
    monkeypatch.setenv("HOME", str(env / "home"))
    monkeypatch.setenv(nn.DATA_ENV_VAR, "~/mnist")
    assert nn.candidate_data_dirs("~/mine")[:2] == [env / "home" / "mine", env / "home" / "mnist"]


# -------------------------------------------------------------------------------------------------
# load_mnist from local files
# -------------------------------------------------------------------------------------------------

def test_load_mnist_from_data_dir(tiny, env):
    tiny.check(nn.load_mnist(tiny.write(env / "mine"), download=False))


def test_load_mnist_from_env_var(tiny, env, monkeypatch):
    monkeypatch.setenv(nn.DATA_ENV_VAR, str(tiny.write(env / "shared")))
    tiny.check(nn.load_mnist(download=False))


def test_load_mnist_from_cache(tiny, env):
    tiny.write(nn.default_data_dir())
    tiny.check(nn.load_mnist(download=False))


def test_load_mnist_accepts_any_gzip_settings(tiny, env):
    """The hash is of the decompressed bytes, so a differently compressed copy is accepted."""
    folder = env / "mine"
    tiny.write(folder)
    (folder / NAMES[0]).write_bytes(gzip.compress(tiny.raw[NAMES[0]], compresslevel=1, mtime=9))
    tiny.check(nn.load_mnist(folder, download=False))


def test_search_order_data_dir_before_env(tiny, env, monkeypatch):
    """A file is taken from the first folder that has it: a broken copy further down is never
    read, and a broken copy further up is what fails."""
    good, bad = env / "good", env / "bad"
    tiny.write(good)
    bad.mkdir()
    for name in NAMES:
        (bad / name).write_bytes(b"not gzip")
    monkeypatch.setenv(nn.DATA_ENV_VAR, str(bad))
    tiny.check(nn.load_mnist(good, download=False))
    monkeypatch.setenv(nn.DATA_ENV_VAR, str(good))
    with pytest.raises(nn.MNISTDataError, match=str(bad / NAMES[0])):
        nn.load_mnist(bad, download=False)


def test_search_order_env_before_cache(tiny, env, monkeypatch):
    cache, shared = nn.default_data_dir(), env / "shared"
    tiny.write(cache)
    shared.mkdir()
    (shared / NAMES[1]).write_bytes(b"broken")
    monkeypatch.setenv(nn.DATA_ENV_VAR, str(shared))
    with pytest.raises(nn.MNISTDataError, match=str(shared / NAMES[1])):
        nn.load_mnist(download=False)


def test_each_file_from_first_folder_that_has_it(tiny, env, monkeypatch):
    monkeypatch.setenv(nn.DATA_ENV_VAR, str(tiny.write(env / "shared", NAMES[:2])))
    tiny.write(nn.default_data_dir(), NAMES[2:])
    tiny.check(nn.load_mnist(env / "empty", download=False))


def test_truncated_gz_is_refused(tiny, env):
    folder = tiny.write(env / "mine")
    path = folder / NAMES[0]
    path.write_bytes(tiny.gz[NAMES[0]][:-20])
    with pytest.raises(nn.MNISTDataError, match=f"{path}: not a complete gzip file"):
        nn.load_mnist(folder, download=False)


def test_uncompressed_file_is_refused(tiny, env):
    folder = tiny.write(env / "mine")
    path = folder / NAMES[3]
    path.write_bytes(tiny.raw[NAMES[3]])  # right content, but not gzipped
    with pytest.raises(nn.MNISTDataError, match=f"{path}: not a complete gzip file"):
        nn.load_mnist(folder, download=False)


def test_wrong_magic_file_is_refused_naming_expected_hash(tiny, env):
    folder = tiny.write(env / "mine")
    path = folder / NAMES[1]
    path.write_bytes(gzip.compress(b"\x1f\x8b" + tiny.raw[NAMES[1]][2:]))
    with pytest.raises(nn.MNISTDataError) as info:
        nn.load_mnist(folder, download=False)
    message = str(info.value)
    assert str(path) in message and NAMES[1] in message
    assert f"expected {tiny.sha[NAMES[1]]}" in message


def test_hash_mismatch_is_refused_naming_both_hashes(tiny, env):
    folder = tiny.write(env / "mine")
    path = folder / NAMES[2]
    edited = bytearray(tiny.raw[NAMES[2]])
    edited[-1] ^= 1  # one pixel off by one: same shape, different content
    path.write_bytes(gzip.compress(bytes(edited)))
    with pytest.raises(nn.MNISTDataError) as info:
        nn.load_mnist(folder, download=False)
    message = str(info.value)
    assert message.startswith(f"{path}: SHA-256")
    assert hashlib.sha256(edited).hexdigest() in message
    assert f"expected {tiny.sha[NAMES[2]]} for {NAMES[2]}" in message
    assert "delete it" in message


def test_shape_mismatch_after_matching_hash(tiny, env, monkeypatch):
    """Only an edited table can get here; the loader still says what it expected."""
    table = dict(nn.MNIST_FILES)
    table[NAMES[1]] = ((8,), tiny.sha[NAMES[1]])
    monkeypatch.setattr(nn, "MNIST_FILES", table)
    folder = tiny.write(env / "mine")
    with pytest.raises(nn.MNISTDataError, match=r"shape \(7,\), expected \(8,\)"):
        nn.load_mnist(folder, download=False)


def test_unreadable_file(tiny, env, monkeypatch):
    folder = tiny.write(env / "mine")

    def refuse(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(nn.MNISTDataError, match=f"{folder / NAMES[0]}: cannot be read"):
        nn.load_mnist(folder, download=False)


def test_missing_without_download_says_so(tiny, env, mirror):
    folder = tiny.write(env / "mine", NAMES[:1])
    url, requested = mirror(tiny.gz)
    with pytest.raises(nn.MNISTDataError) as info:
        nn.load_mnist(folder, download=False, mirrors=[url])
    message = str(info.value)
    assert f"MNIST files missing: {', '.join(NAMES[1:])}." in message
    assert "download=False" in message
    assert f"  - {folder}\n  - {nn.default_data_dir()}\n" in message
    assert nn.DATA_ENV_VAR in message
    assert requested == [], "download=False must not touch the network"


def test_missing_with_no_mirrors(tiny, env):
    with pytest.raises(nn.MNISTDataError, match="No download mirrors were given"):
        nn.load_mnist(env / "mine", mirrors=())


# -------------------------------------------------------------------------------------------------
# load_mnist downloads (from a server on 127.0.0.1 only)
# -------------------------------------------------------------------------------------------------

def test_download_into_data_dir_then_load_offline(tiny, env, mirror):
    url, requested = mirror(tiny.gz)
    target = env / "new" / "folder"
    tiny.check(nn.load_mnist(target, mirrors=[url], timeout=5))
    assert sorted(requested) == sorted(f"/mnist/{name}" for name in NAMES)
    assert leftovers(target) == sorted(NAMES)
    for name in NAMES:
        assert (target / name).read_bytes() == tiny.gz[name]
    tiny.check(nn.load_mnist(target, download=False))


@pytest.mark.parametrize("use_env", [True, False])
def test_download_goes_to_first_candidate(tiny, env, mirror, monkeypatch, use_env):
    if use_env:
        monkeypatch.setenv(nn.DATA_ENV_VAR, str(env / "shared"))
    first = nn.candidate_data_dirs()[0]
    assert first == (env / "shared" if use_env else nn.default_data_dir())
    url, _ = mirror(tiny.gz)
    tiny.check(nn.load_mnist(mirrors=[url], timeout=5))
    assert leftovers(first) == sorted(NAMES)


def test_download_only_missing_files(tiny, env, mirror, monkeypatch):
    shared = tiny.write(env / "shared", NAMES[:3])
    monkeypatch.setenv(nn.DATA_ENV_VAR, str(shared))
    url, requested = mirror(tiny.gz)
    mine = env / "mine"
    tiny.check(nn.load_mnist(mine, mirrors=[url], timeout=5))
    assert requested == [f"/mnist/{NAMES[3]}"]
    assert leftovers(mine) == [NAMES[3]]


def test_download_falls_back_to_next_mirror(tiny, env, mirror):
    url_404, requested_404 = mirror({})
    url_ok, requested_ok = mirror(tiny.gz)
    target = env / "mine"
    tiny.check(nn.load_mnist(target, mirrors=[url_404, url_ok], timeout=5))
    # a mirror that failed once is not tried again for the other three files
    assert len(requested_404) == 1 and len(requested_ok) == 4
    assert leftovers(target) == sorted(NAMES)


@pytest.mark.parametrize("corruption", ["edited pixel", "not gzip", "truncated gzip"])
def test_corrupt_mirror_is_rejected_and_nothing_written(tiny, env, mirror, corruption):
    bad = {}
    for name, raw in tiny.raw.items():
        if corruption == "edited pixel":
            bad[name] = gzip.compress(raw[:-1] + bytes([raw[-1] ^ 1]))
        elif corruption == "not gzip":
            bad[name] = raw
        else:
            bad[name] = tiny.gz[name][:-20]
    url, _ = mirror(bad)
    target = env / "mine"
    with pytest.raises(nn.MNISTDataError) as info:
        nn.load_mnist(target, mirrors=[url], timeout=5)
    message = str(info.value)
    for name in NAMES:
        assert f"  - {url}{name}: " in message, f"no failure reported for {name}"
    if corruption == "edited pixel":
        assert f"expected {tiny.sha[NAMES[0]]}" in message
    assert leftovers(target) == []


def test_corrupt_mirror_then_good_mirror(tiny, env, mirror):
    url_bad, _ = mirror({name: b"<html>moved</html>" for name in NAMES})
    url_ok, _ = mirror(tiny.gz)
    target = env / "mine"
    tiny.check(nn.load_mnist(target, mirrors=[url_bad, url_ok], timeout=5))
    for name in NAMES:
        assert (target / name).read_bytes() == tiny.gz[name]


def test_oversized_download_is_refused(tiny, env, mirror, monkeypatch):
    monkeypatch.setattr(nn, "_MAX_DOWNLOAD_BYTES", 16)
    url, _ = mirror(tiny.gz)
    with pytest.raises(nn.MNISTDataError, match="larger than 16 bytes"):
        nn.load_mnist(env / "mine", mirrors=[url], timeout=5)
    assert leftovers(env / "mine") == []


def test_unreachable_mirrors_fail_fast_with_full_message(tiny, env, closed_port_url, mirror,
                                                        monkeypatch):
    monkeypatch.setenv(nn.DATA_ENV_VAR, str(env / "shared"))
    url_404, _ = mirror({})
    start = time.perf_counter()
    with pytest.raises(nn.MNISTDataError) as info:
        nn.load_mnist(env / "mine", mirrors=[closed_port_url, url_404], timeout=1)
    elapsed = time.perf_counter() - start
    assert elapsed < 5, f"giving up took {elapsed:.1f} s"
    message = str(info.value)
    assert f"MNIST files missing: {', '.join(NAMES)}." in message
    for folder in (env / "mine", env / "shared", nn.default_data_dir()):
        assert f"  - {folder}\n" in message
    assert f"  - {closed_port_url}{NAMES[0]}: " in message
    assert f"  - {url_404}{NAMES[0]}: HTTP Error 404" in message
    for name in NAMES[1:]:  # both failed for the first file: not tried again for the others
        assert f"  - {closed_port_url}{name}: not tried, this mirror already failed for " \
               f"{NAMES[0]}" in message
        assert f"  - {url_404}{name}: not tried" in message
    assert "refused" in message.lower()
    assert f"set the environment variable {nn.DATA_ENV_VAR}" in message
    assert all(name in message.split("copy the four .gz files")[1] for name in NAMES)
    assert leftovers(env / "mine") == []


def test_interrupted_write_leaves_nothing(tiny, env, mirror, monkeypatch):
    def fail_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail_replace)
    url, _ = mirror(tiny.gz)
    target = env / "mine"
    with pytest.raises(nn.MNISTDataError, match=f"could not save it in {target}.*No space left"):
        nn.load_mnist(target, mirrors=[url], timeout=5)
    assert leftovers(target) == [], "a temporary file or a target file was left behind"


def test_keyboard_interrupt_during_write_leaves_nothing(tiny, env, mirror, monkeypatch):
    def interrupt(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupt)
    url, _ = mirror(tiny.gz)
    target = env / "mine"
    with pytest.raises(KeyboardInterrupt):
        nn.load_mnist(target, mirrors=[url], timeout=5)
    assert leftovers(target) == []


def test_unwritable_target_is_reported(tiny, env, mirror):
    not_a_folder = env / "file"
    not_a_folder.write_text("in the way")
    url, _ = mirror(tiny.gz)
    with pytest.raises(nn.MNISTDataError, match=f"{not_a_folder} is a file, not a folder"):
        nn.load_mnist(not_a_folder, mirrors=[url], timeout=5)


# -------------------------------------------------------------------------------------------------
# one_hot
# -------------------------------------------------------------------------------------------------

def test_one_hot_rows():
    y = np.array([3, 0, 9, 3, 1], dtype=np.uint8)
    Y = nn.one_hot(y)
    assert Y.shape == (5, 10) and Y.dtype == np.float32
    np.testing.assert_array_equal(Y.sum(axis=1), 1)
    np.testing.assert_array_equal(Y.argmax(axis=1), y)
    assert set(np.unique(Y)) == {0.0, 1.0}


@pytest.mark.parametrize("dtype", [np.float64, np.uint8, "float16"])
def test_one_hot_dtype_and_num_classes(dtype):
    Y = nn.one_hot(np.array([0, 2, 1]), num_classes=3, dtype=dtype)
    assert Y.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(Y, [[1, 0, 0], [0, 0, 1], [0, 1, 0]])


def test_one_hot_empty():
    assert nn.one_hot(np.array([], dtype=np.int64)).shape == (0, 10)


def test_one_hot_label_too_large():
    with pytest.raises(ValueError, match=r"labels in \[0, 10\).*first bad one 10 at index 2"):
        nn.one_hot(np.array([1, 2, 10, 3]))


def test_one_hot_negative_label():
    with pytest.raises(ValueError, match=r"values from -1 to 4 \(first bad one -1 at index 1\)"):
        nn.one_hot(np.array([4, -1]))


def test_one_hot_float_labels():
    with pytest.raises(TypeError, match=r"must hold integers, got dtype float64.*astype"):
        nn.one_hot(np.array([1.0, 2.0]))


def test_one_hot_refuses_2d():
    with pytest.raises(ValueError, match=r"shape \(2, 10\) \(one-hot\? use y.argmax\(axis=1\)\)"):
        nn.one_hot(np.eye(10, dtype=np.int64)[:2])


# -------------------------------------------------------------------------------------------------
# scale_pixels and flatten_images
# -------------------------------------------------------------------------------------------------

def test_scale_pixels_range_and_dtype():
    pixels = np.arange(256, dtype=np.uint8).reshape(16, 4, 4)
    scaled = nn.scale_pixels(pixels)
    assert scaled.dtype == np.float32 and scaled.shape == pixels.shape
    assert scaled.min() == 0.0 and scaled.max() == 1.0
    np.testing.assert_allclose(scaled, pixels / 255.0, rtol=2e-7)
    assert np.all(np.diff(scaled.ravel()) > 0), "scaling must keep the order of the pixels"
    assert pixels.max() == 255, "the input must not be modified"


@pytest.mark.parametrize("dtype", [np.float64, "float64", np.dtype("float32")])
def test_scale_pixels_dtype_like(dtype):
    """Any NumPy dtype-like is honoured, as in one_hot and np.zeros."""
    scaled = nn.scale_pixels(np.array([0, 51, 255], dtype=np.uint8), dtype=dtype)
    assert scaled.dtype == np.dtype(dtype)
    np.testing.assert_allclose(scaled, [0.0, 0.2, 1.0], rtol=1e-7)


@pytest.mark.parametrize("dtype", [np.uint8, np.int64])
def test_scale_pixels_refuses_integer_output(dtype):
    """An integer output would silently round every pixel but 255 to 0."""
    with pytest.raises(TypeError, match="dtype"):
        nn.scale_pixels(np.array([0, 128, 255], dtype=np.uint8), dtype=dtype)


@pytest.mark.parametrize("images", [np.array([0.0, 0.5, 1.0]), np.array([0, 255], np.int64)])
def test_scale_pixels_refuses_non_uint8(images):
    with pytest.raises(TypeError, match=f"uint8 pixels 0..255, got dtype {images.dtype}"):
        nn.scale_pixels(images)


def test_flatten_images():
    images = np.arange(2 * 4 * 3).reshape(2, 4, 3)
    flat = nn.flatten_images(images)
    assert flat.shape == (2, 12)
    np.testing.assert_array_equal(flat[1], images[1].ravel())
    assert np.shares_memory(flat, images), "a contiguous batch should be flattened as a view"
    assert nn.flatten_images(flat).shape == (2, 12)


def test_flatten_images_empty_batch():
    assert nn.flatten_images(np.zeros((0, 28, 28), np.uint8)).shape == (0, 784)


def test_flatten_images_refuses_single_vector():
    with pytest.raises(ValueError, match=r"batch of images \(N, H, W\), got shape \(784,\)"):
        nn.flatten_images(np.zeros(784))


# -------------------------------------------------------------------------------------------------
# train_val_split
# -------------------------------------------------------------------------------------------------

def test_train_val_split_partitions():
    X = np.arange(50).reshape(25, 2)
    y = np.arange(25) * 10
    X_tr, y_tr, X_val, y_val = nn.train_val_split(X, y, 7, rng=0)
    assert X_tr.shape == (18, 2) and X_val.shape == (7, 2)
    ids_tr, ids_val = X_tr[:, 0] // 2, X_val[:, 0] // 2
    assert not set(ids_tr) & set(ids_val), "train and validation overlap"
    np.testing.assert_array_equal(np.sort(np.concatenate([ids_tr, ids_val])), np.arange(25))
    np.testing.assert_array_equal(y_tr, ids_tr * 10)  # labels stay with their samples
    np.testing.assert_array_equal(y_val, ids_val * 10)
    assert np.all(np.diff(ids_tr) > 0) and np.all(np.diff(ids_val) > 0)
    assert not np.array_equal(ids_val, np.arange(18, 25)), "validation should be random, not last"


def test_train_val_split_seeded():
    X, y = np.arange(100), np.arange(100)
    first = nn.train_val_split(X, y, 10, rng=3)
    np.testing.assert_array_equal(first[2], nn.train_val_split(X, y, 10, rng=3)[2])
    np.testing.assert_array_equal(first[2],
                                  nn.train_val_split(X, y, 10, rng=np.random.default_rng(3))[2])
    assert not np.array_equal(first[2], nn.train_val_split(X, y, 10, rng=4)[2])


@pytest.mark.parametrize("n_val", [0, -1, 10, 11])
def test_train_val_split_bad_n_val(n_val):
    with pytest.raises(ValueError, match=f"n_val must be between 1 and 9, got {n_val}"):
        nn.train_val_split(np.zeros((10, 3)), np.zeros(10), n_val, rng=0)


def test_train_val_split_length_mismatch():
    with pytest.raises(ValueError, match="X has 10 samples but y has 9"):
        nn.train_val_split(np.zeros((10, 3)), np.zeros(9), 2, rng=0)


# -------------------------------------------------------------------------------------------------
# iterate_minibatches
# -------------------------------------------------------------------------------------------------

def epoch_order(X, y, batch_size, **kwargs):
    """Sample ids in the order one epoch visits them, and the batch sizes."""
    batches = list(nn.iterate_minibatches(X, y, batch_size, **kwargs))
    for X_b, y_b in batches:
        np.testing.assert_array_equal(X_b[:, 0], y_b)  # rows stay with their labels
    return np.concatenate([y_b for _, y_b in batches]), [len(y_b) for _, y_b in batches]


@pytest.fixture
def toy():
    y = np.arange(23)
    return np.stack([y, -y], axis=1), y


def test_minibatches_cover_every_sample_once(toy):
    order, sizes = epoch_order(*toy, 5, rng=0)
    np.testing.assert_array_equal(np.sort(order), np.arange(23))
    assert sizes == [5, 5, 5, 5, 3], "the last batch holds the 23 % 5 leftover samples"


def test_minibatches_exact_division_and_big_batch(toy):
    X, y = toy
    assert epoch_order(X[:20], y[:20], 5, rng=0)[1] == [5, 5, 5, 5]
    assert epoch_order(X, y, 100, rng=0)[1] == [23]


def test_minibatches_fresh_order_each_epoch(toy):
    rng = np.random.default_rng(0)
    first, _ = epoch_order(*toy, 4, rng=rng)
    second, _ = epoch_order(*toy, 4, rng=rng)
    assert not np.array_equal(first, second), "each epoch should draw a new permutation"
    assert not np.array_equal(first, np.arange(23)), "shuffle=True should shuffle"


def test_minibatches_same_seed_same_order(toy):
    np.testing.assert_array_equal(epoch_order(*toy, 4, rng=7)[0], epoch_order(*toy, 4, rng=7)[0])
    np.testing.assert_array_equal(epoch_order(*toy, 4, rng=np.random.default_rng(7))[0],
                                  epoch_order(*toy, 4, rng=7)[0])


def test_minibatches_without_shuffle(toy):
    order, sizes = epoch_order(*toy, 10, shuffle=False)
    np.testing.assert_array_equal(order, np.arange(23))
    assert sizes == [10, 10, 3]


def test_minibatches_accept_numpy_int(toy):
    assert epoch_order(*toy, np.int64(10), rng=0)[1] == [10, 10, 3]


@pytest.mark.parametrize("batch_size", [0, -3, 2.5, "32", True, None])
def test_minibatches_bad_batch_size(toy, batch_size):
    with pytest.raises(ValueError, match=f"batch_size must be a positive integer, got "
                                         f"{batch_size!r}"):
        list(nn.iterate_minibatches(*toy, batch_size, rng=0))


def test_minibatches_length_mismatch(toy):
    X, y = toy
    with pytest.raises(ValueError, match="X has 23 samples but y has 22"):
        list(nn.iterate_minibatches(X, y[:-1], 4, rng=0))


def test_minibatches_shuffle_needs_rng(toy):
    with pytest.raises(ValueError, match=r"shuffle=True needs rng="):
        list(nn.iterate_minibatches(*toy, 4))


# -------------------------------------------------------------------------------------------------
# The real data (skipped unless $MNIST_DATA_DIR holds it)
# -------------------------------------------------------------------------------------------------

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def _real_data_dir():
    folder = os.environ.get(nn.DATA_ENV_VAR)
    if not folder:
        pytest.skip(f"${nn.DATA_ENV_VAR} is not set; point it at a folder with the four MNIST "
                    "files to run the real-data tests")
    missing = [name for name in NAMES if not (Path(folder) / name).is_file()]
    if missing:
        pytest.skip(f"${nn.DATA_ENV_VAR}={folder} lacks {', '.join(missing)}")
    return Path(folder)


@pytest.fixture(scope="module")
def real_raw():
    return nn.load_mnist(_real_data_dir(), download=False)


@pytest.fixture(scope="module")
def real_splits():
    return nn.load_mnist_splits(_real_data_dir(), download=False)


def test_real_raw_shapes_and_labels(real_raw):
    X_train, y_train, X_test, y_test = real_raw
    assert X_train.shape == (60000, 28, 28) and X_test.shape == (10000, 28, 28)
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    assert all(a.dtype == np.uint8 for a in real_raw)
    assert X_train.min() == 0 and X_train.max() == 255
    assert set(np.unique(y_train)) == set(range(10)) == set(np.unique(y_test))
    counts = np.bincount(y_train, minlength=10)
    assert counts.sum() == 60000
    assert counts.tolist() == TRAIN_COUNTS
    assert np.bincount(y_test, minlength=10).tolist() == TEST_COUNTS


def test_real_splits(real_raw, real_splits):
    s = real_splits
    assert [a.shape for a in s] == [(50000, 784), (50000,), (10000, 784), (10000,),
                                    (10000, 784), (10000,)]
    for X in (s.X_train, s.X_val, s.X_test):
        assert X.dtype == np.float32 and X.min() == 0.0 and X.max() == 1.0
    assert all(y.dtype == np.int64 for y in (s.y_train, s.y_val, s.y_test))
    both = np.bincount(s.y_train, minlength=10) + np.bincount(s.y_val, minlength=10)
    assert both.tolist() == TRAIN_COUNTS, "train + validation must be the 60,000 training images"
    np.testing.assert_array_equal(s.y_test, real_raw[3])
    np.testing.assert_array_equal(s.X_test, nn.scale_pixels(real_raw[2].reshape(10000, 784)))


def test_real_split_same_seed_same_split(real_raw, real_splits):
    again = nn.load_mnist_splits(_real_data_dir(), seed=0, download=False)
    for name, a, b in zip(nn.MNISTSplits._fields, real_splits, again):
        np.testing.assert_array_equal(a, b, err_msg=f"{name} differs between two loads")
    X_train, y_train = real_raw[0], real_raw[1]
    ids = np.arange(len(y_train))
    train_ids, _, val_ids, _ = nn.train_val_split(ids, y_train, 10_000, rng=0)
    np.testing.assert_array_equal(real_splits.y_train, y_train[train_ids])
    np.testing.assert_array_equal(real_splits.y_val, y_train[val_ids])
    np.testing.assert_array_equal(real_splits.X_val,
                                  nn.scale_pixels(X_train[val_ids].reshape(-1, 784)))
    other = nn.train_val_split(ids, y_train, 10_000, rng=1)[2]
    assert not np.array_equal(other, val_ids), "a different seed should give a different split"

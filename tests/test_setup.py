"""Unit tests of the notebook set-up helpers: the run's seed, the BLAS thread limit and
expect_error, the context manager of cells that show an error on purpose."""

import os

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import nn_helpers as nn


def blas_threads():
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


@pytest.fixture
def restore_blas_threads():
    with threadpool_limits(limits=None):  # snapshot; restored on exit
        yield


def test_series_seed_default_and_env(monkeypatch):
    monkeypatch.delenv(nn.SEED_ENV_VAR, raising=False)
    assert nn.series_seed() == 0
    assert nn.series_seed(default=7) == 7
    monkeypatch.setenv(nn.SEED_ENV_VAR, " 12 ")
    assert nn.series_seed() == 12
    monkeypatch.setenv(nn.SEED_ENV_VAR, "")
    assert nn.series_seed() == 0


@pytest.mark.parametrize("text", ["one", "1.5", "-1"])
def test_series_seed_rejects_bad_env(monkeypatch, text):
    monkeypatch.setenv(nn.SEED_ENV_VAR, text)
    with pytest.raises(ValueError, match=r"\$NN_SEED must be an integer >= 0, got"):
        nn.series_seed()


def test_limit_blas_threads_defaults_to_one_thread(monkeypatch, restore_blas_threads):
    monkeypatch.delenv(nn.THREADS_ENV_VAR, raising=False)
    assert nn.DEFAULT_BLAS_THREADS == 1
    assert nn.limit_blas_threads() == 1
    assert set(blas_threads()) == {1}


def test_limit_blas_threads_from_argument_and_env(monkeypatch, restore_blas_threads):
    monkeypatch.delenv(nn.THREADS_ENV_VAR, raising=False)
    two = min(2, os.cpu_count())
    assert nn.limit_blas_threads(two) == two
    assert set(blas_threads()) == {two}
    monkeypatch.setenv(nn.THREADS_ENV_VAR, "1")
    assert nn.limit_blas_threads() == 1
    assert set(blas_threads()) == {1}
    a = np.ones((64, 64), dtype=np.float32)
    np.testing.assert_array_equal(a @ a, np.full((64, 64), 64, dtype=np.float32))


def test_zero_threads_means_one_per_core(monkeypatch, restore_blas_threads):
    monkeypatch.setenv(nn.THREADS_ENV_VAR, "0")
    assert nn.limit_blas_threads() == os.cpu_count()
    nn.limit_blas_threads(1)
    assert nn.limit_blas_threads(0) == os.cpu_count()
    assert os.cpu_count() == 1 or max(blas_threads()) > 1, "0 should lift the one-thread limit"


@pytest.mark.parametrize("n", [-2, 1.5, True, "2"])
def test_limit_blas_threads_rejects_bad_counts(n):
    with pytest.raises(ValueError, match=r"n must be a number of threads >= 1, or 0"):
        nn.limit_blas_threads(n)


def test_limit_blas_threads_rejects_bad_env(monkeypatch):
    monkeypatch.setenv(nn.THREADS_ENV_VAR, "-1")
    with pytest.raises(ValueError, match=r"\$NN_BLAS_THREADS must be an integer >= 0"):
        nn.limit_blas_threads()


def test_expect_error_prints_type_and_message(capsys):
    with nn.expect_error(ValueError, TypeError):
        raise TypeError("what was expected and what arrived")
    assert capsys.readouterr().out == "TypeError: what was expected and what arrived\n"


def test_expect_error_fails_when_nothing_is_raised():
    with pytest.raises(AssertionError, match="expected ValueError, but the block ran without"):
        with nn.expect_error(ValueError):
            pass


def test_expect_error_lets_other_errors_through():
    with pytest.raises(KeyError):
        with nn.expect_error(ValueError):
            raise KeyError("not the one the cell shows")


@pytest.mark.parametrize("bad", [(), ("ValueError",), (ValueError, 3)])
def test_expect_error_needs_exception_classes(bad):
    with pytest.raises(TypeError, match="exception classes"):
        nn.expect_error(*bad)

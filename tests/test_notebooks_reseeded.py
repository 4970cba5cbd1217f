"""The second pass of the test command: every notebook once more, under another seed and with two
BLAS threads, where only errors and failed asserts count (no output is compared).

nbval's pass runs the series as stored (seed 0, one BLAS thread: the series' default). This pass
changes both things that decide a training run's numbers: the seed (``$NN_SEED``, read by every
notebook's setup cell through ``nn.series_seed()``) and the BLAS's summation order (two threads
split the matrix products differently, set in-process by ``nn.limit_blas_threads()`` from
``$NN_BLAS_THREADS``). A claim that holds only for
the stored run fails here. A new seed moves results far more than another CPU's rounding does,
so this pass stands in for the machines CI cannot be (Apple Accelerate, ARM, Windows).

It also checks that each executed notebook draws as many figures as its stored version: a
figure that silently turns into ``<Figure size ...>`` text (as it did with matplotlib 3.7 before
the series set its backend explicitly) fails here.

``$NN_SECOND_PASS_SEED`` overrides the seed (default 1); ``pytest -m "not second_pass"`` skips
the pass.
"""

import os

import nbformat
import pytest

import notebook_runner as runner

SECOND_PASS_SEED = int(os.environ.get("NN_SECOND_PASS_SEED", "1"))


def second_pass(path):
    """Run ``path`` under the second pass's seed and two BLAS threads; fail on any error, failed
    assert or lost figure."""
    env = runner.kernel_env(NN_SEED=SECOND_PASS_SEED, NN_BLAS_THREADS=2)
    executed, _ = runner.execute(path, env=env)
    stored = runner.count_images(nbformat.read(path, as_version=4))
    drawn = runner.count_images(executed)
    assert drawn == stored, (
        f"{path.name} drew {drawn} PNG figures under seed {SECOND_PASS_SEED}, its stored version "
        f"has {stored}: a figure was lost (shown as text?) or one was added without re-storing "
        "the notebook")


def _second_pass_class(path):
    """One test class per notebook: pytest-xdist's --dist loadscope keeps a class on one worker,
    so the notebooks of this pass spread over the workers instead of queueing on one."""

    @pytest.mark.second_pass
    class SecondPass:
        def test_notebook_under_another_seed_and_two_threads(self):
            second_pass(path)

    SecondPass.__name__ = SecondPass.__qualname__ = f"TestSecondPass_{path.stem}"
    return SecondPass


for _path in runner.NOTEBOOKS:
    globals()[f"TestSecondPass_{_path.stem}"] = _second_pass_class(_path)

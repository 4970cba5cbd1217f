"""Execute the series' notebooks in a fresh kernel, for the test command's second pass, for the
spread benchmark, and to re-run and store them.

    python tests/notebook_runner.py                  # re-execute every notebook and store it
    python tests/notebook_runner.py 05_training      # only the notebooks named

Storing runs each notebook top to bottom in a fresh kernel of the current environment, with
``$NN_SEED`` and ``$NN_BLAS_THREADS`` removed (the defaults: seed 0, one BLAS thread), in the
notebook's own folder (as nbval does), and writes it back with per-cell timing metadata dropped,
so that two runs on one machine give identical files.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

import nn_helpers as nn

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SERIES_ENV_VARS = ("NN_SEED", "NN_BLAS_THREADS")


def notebook_path(name: str) -> Path:
    """``05_training``, ``05_training.ipynb`` or a path -> the notebook's path."""
    path = Path(name)
    if path.suffix != ".ipynb":
        path = ROOT / "notebooks" / f"{name}.ipynb"
    if not path.is_file():
        known = ", ".join(p.stem for p in NOTEBOOKS)
        raise SystemExit(f"no notebook {name!r}; the series has {known}")
    return path


def kernel_env(**overrides: str | int | None) -> dict:
    """This process's environment without the series' variables, then ``overrides`` (None
    removes a variable)."""
    env = {k: v for k, v in os.environ.items() if k not in SERIES_ENV_VARS}
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = str(value)
    return env


def execute(path: Path, *, env: dict | None = None, allow_errors: bool = False,
            timeout: int = 600, cwd: Path | None = None) -> tuple[nbformat.NotebookNode, float]:
    """Run the notebook at ``path`` in a fresh ``python3`` kernel; return it and the seconds taken.

    With ``allow_errors=False`` the first failing cell raises ``nbclient``'s
    ``CellExecutionError``, whose message holds the cell's source and traceback.
    """
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=allow_errors,
                            resources={"metadata": {"path": str(cwd or path.parent)}})
    start = time.perf_counter()
    client.execute(env=kernel_env() if env is None else env)
    return nb, time.perf_counter() - start


def count_images(nb: nbformat.NotebookNode) -> int:
    """How many PNG figures the notebook's outputs hold."""
    return sum("image/png" in output.get("data", {})
               for cell in nb.cells if cell.cell_type == "code" for output in cell.outputs)


def strip_timing(nb: nbformat.NotebookNode) -> None:
    """Drop the per-cell execution timestamps that nbclient records."""
    for cell in nb.cells:
        cell.metadata.pop("execution", None)


def store(paths: list[Path]) -> None:
    for path in paths:
        nb, seconds = execute(path)
        strip_timing(nb)
        # nn_helpers' writer: temporary file, rename, the umask respected, no leftovers
        nn._write_atomically(path, lambda f, nb=nb: f.write(nbformat.writes(nb).encode() + b"\n"))
        print(f"{path.relative_to(ROOT)}: executed and stored in {seconds:.1f} s, "
              f"{count_images(nb)} figures", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help="names such as 05_training (default: all)")
    args = parser.parse_args(argv)
    if "MNIST_DATA_DIR" not in os.environ:
        print("note: $MNIST_DATA_DIR is not set; the loader uses its cache folder",
              file=sys.stderr)
    store([notebook_path(name) for name in args.notebooks] or NOTEBOOKS)


if __name__ == "__main__":
    main()

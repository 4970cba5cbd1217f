"""How long each notebook and its slowest cells take: the time budget of a live class.

    python benchmarks/notebook_times.py                 # every notebook, seed 0, BLAS as it comes
    python benchmarks/notebook_times.py 05_training --top 5 --threads 1

Each notebook runs top to bottom in a fresh kernel (kernel start included in its total), as
``tests/notebook_runner.py`` stores it; nothing is written back. The budget (issue 10): no code
cell over 5 s, no notebook over 20 s, 01-06 together under 60 s on a 2-core machine; 07 (issue
11) under 45 s, with one final training cell of up to 20 s. Run it on a
quiet machine: other heavy processes make every figure several times larger.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import notebook_runner as runner  # noqa: E402

CELL_BUDGET_S = 5.0
NOTEBOOK_BUDGET_S = 20.0
#: Notebooks with a budget of their own: (notebook seconds, seconds of its one longest cell).
OWN_BUDGETS = {"07_regularization": (45.0, 20.0)}


def cell_seconds(cell) -> float:
    """Seconds between the kernel starting a cell and replying, from nbclient's timing metadata."""
    timing = cell.metadata.get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not (start and end):
        return 0.0
    parse = datetime.fromisoformat
    return (parse(end.replace("Z", "+00:00")) - parse(start.replace("Z", "+00:00"))).total_seconds()


def first_line(cell) -> str:
    lines = [line for line in cell.source.splitlines() if line.strip()]
    return (lines[0][:60] if lines else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help="names such as 05_training (default: all)")
    parser.add_argument("--top", type=int, default=1, help="slowest cells to list per notebook")
    parser.add_argument("--threads", type=int, help="set $NN_BLAS_THREADS for the kernels")
    parser.add_argument("--seed", type=int, help="set $NN_SEED for the kernels")
    args = parser.parse_args()
    paths = [runner.notebook_path(n) for n in args.notebooks] or runner.NOTEBOOKS
    env = runner.kernel_env(NN_BLAS_THREADS=args.threads, NN_SEED=args.seed)
    total = 0.0
    for path in paths:
        nb, seconds = runner.execute(path, env=env)
        total += seconds
        cells = [(cell_seconds(c), i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
        cells.sort(key=lambda t: t[0], reverse=True)
        budget, longest = OWN_BUDGETS.get(path.stem, (NOTEBOOK_BUDGET_S, CELL_BUDGET_S))
        flag = "  OVER" if seconds > budget else ""
        print(f"{path.stem:22s} {seconds:6.1f} s{flag}", flush=True)
        for rank, (sec, index, cell) in enumerate(cells[:args.top]):
            mark = "  OVER" if sec > (longest if rank == 0 else CELL_BUDGET_S) else ""
            print(f"    cell {index:3d} {sec:5.1f} s{mark}  {first_line(cell)}", flush=True)
    print(f"{'total':22s} {total:6.1f} s")


if __name__ == "__main__":
    main()

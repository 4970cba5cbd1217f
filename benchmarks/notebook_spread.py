"""How much the notebooks' results move between runs: every notebook executed under several
seeds and BLAS thread counts, with every failing cell and every scalar result recorded.

The thresholds of the notebooks' asserts on trained-model quantities come from this spread:

    python benchmarks/notebook_spread.py --seeds 0 1 2 3 4 --threads 1 2 --out spread.jsonl
    python benchmarks/notebook_spread.py --report spread.jsonl --match test_acc val_acc

Each run executes a notebook top to bottom in a fresh kernel with ``$NN_SEED`` and
``$NN_BLAS_THREADS`` set, keeps going past failing cells (to see every assert that breaks), and
then records the scalar variables the notebook left behind (numbers, and numbers inside dicts),
one JSON line per run. ``--coretype`` additionally sets ``OPENBLAS_CORETYPE`` for the kernel, to
try another OpenBLAS kernel on this CPU (exploration only; the tests never set it).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import notebook_runner as runner  # noqa: E402

# Appended to each notebook: print the kernel's scalar results as one JSON object.
DUMP_CELL = r'''
import json as _json, numbers as _numbers
import numpy as _np

def _spread_scalars(namespace):
    found = {}
    def add(name, value):
        try:
            record(name, value)
        except (TypeError, ValueError):  # a list of arrays, say: not a scalar result
            pass
    def record(name, value):
        if isinstance(value, (bool, _np.bool_)):
            return
        if isinstance(value, _numbers.Real):
            found[name] = float(value)
        elif isinstance(value, _np.ndarray) and value.dtype.kind in "fiu" and 0 < value.size <= 16:
            for i, v in enumerate(value.ravel()):
                found[f"{name}[{i}]"] = float(v)
        elif isinstance(value, (list, tuple)) and value and isinstance(value[-1], _numbers.Real):
            found[f"{name}[0]"], found[f"{name}[-1]"] = float(value[0]), float(value[-1])
            found[f"min({name})"], found[f"max({name})"] = float(min(value)), float(max(value))
    for name, value in list(namespace.items()):
        if name.startswith("_") or callable(value):
            continue
        add(name, value)
        if isinstance(value, dict):
            for key, inner in value.items():
                add(f"{name}[{key!r}]", inner)
                if isinstance(inner, dict):
                    for key2, inner2 in inner.items():
                        add(f"{name}[{key!r}][{key2!r}]", inner2)
    return found

print("SPREAD-JSON " + _json.dumps(_spread_scalars(globals())))
'''


def run_one(path: Path, seed: int, threads: int, coretype: str | None) -> dict:
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(DUMP_CELL))
    env = runner.kernel_env(NN_SEED=seed, NN_BLAS_THREADS=threads, OPENBLAS_CORETYPE=coretype)
    with tempfile.TemporaryDirectory() as folder:  # the copy runs in the notebook's own folder
        copy = Path(folder) / path.name
        nbformat.write(nb, copy)
        executed, seconds = runner.execute(copy, env=env, allow_errors=True, cwd=path.parent)
    errors, values = [], {}
    for index, cell in enumerate(executed.cells):
        for output in cell.get("outputs", []):
            if (output.get("output_type") == "error"
                    and "raises-exception" not in cell.metadata.get("tags", [])):
                errors.append({"cell": index, "error": output["ename"],
                               "message": output["evalue"].splitlines()[0][:300]
                               if output["evalue"] else ""})
            text = output.get("text", "")
            if text.startswith("SPREAD-JSON "):
                values = json.loads(text[len("SPREAD-JSON "):])
    return {"notebook": path.stem, "seed": seed, "threads": threads, "coretype": coretype,
            "seconds": round(seconds, 1), "errors": errors, "values": values}


def report(records: list[dict], patterns: list[str]) -> None:
    by_notebook = {}
    for record in records:
        by_notebook.setdefault(record["notebook"], []).append(record)
    for name, runs in sorted(by_notebook.items()):
        times = [r["seconds"] for r in runs]
        print(f"\n## {name}: {len(runs)} runs, {min(times):.0f}-{max(times):.0f} s")
        for r in runs:
            for e in r["errors"]:
                print(f"  FAIL seed {r['seed']} threads {r['threads']} core {r['coretype']}: "
                      f"cell {e['cell']} {e['error']}: {e['message']}")
        keys = sorted({k for r in runs for k in r["values"]})
        for key in keys:
            if patterns and not any(p in key for p in patterns):
                continue
            vals = [r["values"][key] for r in runs if key in r["values"]]
            finite = [v for v in vals if math.isfinite(v)]
            if len(set(vals)) <= 1 or not finite:
                continue
            print(f"  {key:60s} min {min(finite):<12.6g} max {max(finite):<12.6g} "
                  f"({len(vals)} runs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help="names such as 05_training (default: all)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--coretype", nargs="+", default=[None],
                        help="OpenBLAS kernels to force, e.g. Haswell Nehalem (exploration)")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once (one per core at most)")
    parser.add_argument("--out", type=Path, default=Path("notebook_spread.jsonl"))
    parser.add_argument("--report", type=Path, help="only summarise an earlier --out file")
    parser.add_argument("--match", nargs="*", default=[], help="show only variables containing")
    args = parser.parse_args()
    if args.report:
        report([json.loads(line) for line in args.report.read_text().splitlines()], args.match)
        return
    paths = [runner.notebook_path(n) for n in args.notebooks] or runner.NOTEBOOKS
    jobs = list(itertools.product(paths, args.seeds, args.threads, args.coretype))
    records = []
    with ThreadPoolExecutor(max_workers=args.jobs) as pool, args.out.open("a") as out:
        for record in pool.map(lambda job: run_one(*job), jobs):
            out.write(json.dumps(record) + "\n")
            out.flush()
            records.append(record)
            print(f"{record['notebook']} seed {record['seed']} threads {record['threads']} "
                  f"core {record['coretype']}: {record['seconds']} s, "
                  f"{len(record['errors'])} failing cells", flush=True)
    report(records, args.match)


if __name__ == "__main__":
    main()

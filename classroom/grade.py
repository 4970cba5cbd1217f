"""The grader: execute submitted notebooks and record, for every exercise, whether its check passed.

Each submission runs in its own fresh ``python3`` kernel of this environment, in a throwaway
folder that holds a copy of the submission only, with an environment that carries no secrets
(PATH, a HOME inside the folder, MNIST_DATA_DIR, the NN_* variables, PYTHONPATH), under a time
limit per cell and per notebook. The check cells are restored from the source notebooks before
running, so an edited check cannot pass itself. A submission that is not valid JSON, not a
notebook, empty, unknown, endless or crashing becomes rows of the table, never the end of the run.

This runs students' code: grade in an account or a container that holds no secrets.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import csv
import dataclasses
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .exercises import CHECK, EXERCISE, METADATA_KEY, cell_role, exercise_heading, exercise_id
from .student import notebook_paths, read_notebook, student_notebook

PASSED, FAILED, ERROR, NOT_RUN = "passed", "failed", "error", "not run"
OUTCOMES = (PASSED, FAILED, ERROR, NOT_RUN)
#: The exercise column of a row about the whole file (invalid JSON, unknown notebook, ...).
WHOLE_FILE = "-"
FIELDS = ("file", "exercise", "outcome", "message")
#: Environment variables a kernel may see, besides those starting with NN_.
PASSED_ENV = ("PATH", "MNIST_DATA_DIR", "PYTHONPATH", "SYSTEMROOT", "LANG", "LC_ALL",
              "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
BLAS_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass(frozen=True)
class Row:
    """One line of the grades: a file, an exercise, its outcome and the first line of why."""

    file: str
    exercise: str
    outcome: str
    message: str


@dataclass(frozen=True)
class Limits:
    """What a grading kernel may use: seconds for one cell and for a whole notebook (kernel
    start included), and BLAS threads (None: the BLAS default, or what the environment says)."""

    cell: float = 120.0
    notebook: float = 600.0
    blas_threads: int | None = None

    def __post_init__(self):
        for name in ("cell", "notebook"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"the {name} time limit must be a positive number of seconds, "
                                 f"got {value!r}.")
        threads = self.blas_threads
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise ValueError(f"blas_threads must be a positive integer or None, got {threads!r}.")


@dataclass(frozen=True)
class Source:
    """What the grader knows of one notebook of the series: its exercises and their checks."""

    name: str
    exercises: tuple[str, ...]
    checks: dict            # exercise id -> list of the check cells' sources


def load_sources(notebooks_dir: Path) -> dict[str, Source]:
    """The series' notebooks, by file name, as the grader needs them."""
    sources = {}
    for path in notebook_paths(notebooks_dir):
        student = student_notebook(read_notebook(path), path.name)
        checks = {}
        for cell in student.cells:
            info = cell.metadata.get(METADATA_KEY, {})
            if info.get("role") == CHECK:
                checks.setdefault(info["exercise"], []).append(cell.source)
        sources[path.name] = Source(path.name, tuple(student.metadata[METADATA_KEY]["exercises"]),
                                    checks)
    return sources


# ---- one submission ------------------------------------------------------------------------------

def grade_submission(path: Path, sources: dict[str, Source], limits: Limits = Limits(),
                     display_name: str | None = None, fonts: Path | None = None) -> list[Row]:
    """The rows of one submitted notebook; never raises for anything the submission does.
    ``fonts``: a Matplotlib cache folder to copy into the kernel's HOME (see font_cache)."""
    name = display_name or Path(path).name
    try:
        nb, source = _read_submission(Path(path), sources)
    except SubmissionError as err:
        return [Row(name, WHOLE_FILE, ERROR, str(err))]
    checks, problems = _restore_checks(nb, source)
    executed, stop = execute(nb, limits, fonts)
    rows = [Row(name, exercise, ERROR, problem) for exercise, problem in problems.items()]
    check_cells = {index for cells in checks.values() for index in cells}
    for exercise in source.exercises:
        if exercise in problems:
            continue
        outcomes = [_check_outcome(executed, index, stop, check_cells)
                    for index in checks[exercise]]
        rows.append(Row(name, exercise, *_combine(outcomes)))
    order = {exercise: i for i, exercise in enumerate(source.exercises)}
    return sorted(rows, key=lambda row: order[row.exercise])


class SubmissionError(Exception):
    """A submission that cannot be graded at all; its message is the row's message."""


def _read_submission(path: Path, sources: dict[str, Source]):
    """Parse and validate a submission and find which notebook of the series it is."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise SubmissionError(f"cannot be read: {_first_line(err)}") from None
    if not text.strip():
        raise SubmissionError("the file is empty.")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise SubmissionError(f"not a notebook: invalid JSON ({err.msg} at line {err.lineno}, "
                              f"column {err.colno}).") from None
    if not isinstance(data, dict) or data.get("nbformat") != 4:
        found = data.get("nbformat") if isinstance(data, dict) else type(data).__name__
        raise SubmissionError(f"not a notebook of format 4 (nbformat {found!r}); save it from "
                              "JupyterLab or Colab again.")
    try:
        nb = nbformat.reads(text, as_version=4)
        nbformat.validate(nb)
    except Exception as err:  # noqa: BLE001 - nbformat raises several kinds
        raise SubmissionError(f"not a valid notebook: {_first_line(err)}") from None
    if not nb.cells:
        raise SubmissionError("the notebook has no cells.")
    source = _which_notebook(nb, path.name, sources)
    return nb, source


def _which_notebook(nb, file_name: str, sources: dict[str, Source]) -> Source:
    """The series notebook a submission is an edition of: its metadata, else its file name."""
    recorded = nb.metadata.get(METADATA_KEY, {}).get("source")
    if recorded in sources:
        return sources[recorded]
    for name, source in sources.items():
        if Path(name).stem in file_name or file_name.startswith(name[:3]):
            return source
    raise SubmissionError(f"unknown notebook: neither its metadata nor its file name matches "
                          f"one of {sorted(sources)}.")


def _restore_checks(nb, source: Source) -> tuple[dict, dict]:
    """Put back the official check cells; return each exercise's check cell indices, and the
    exercises whose check cells are missing (with the problem)."""
    checks, current = {}, None
    for index, cell in enumerate(nb.cells):
        info = cell.get("metadata", {}).get(METADATA_KEY, {})
        role = info.get("role") or _safe_role(cell)
        if role == EXERCISE and cell.cell_type == "markdown":
            current = info.get("exercise") or _heading_id(cell.source, source.name)
        elif role == CHECK and cell.cell_type == "code":
            exercise = info.get("exercise") or current
            if exercise in source.checks:
                checks.setdefault(exercise, []).append(index)
    problems = {}
    for exercise in source.exercises:
        official = source.checks.get(exercise, [])
        found = checks.get(exercise, [])
        if len(found) != len(official):
            problems[exercise] = (f"the submission has {len(found)} check cells for this "
                                  f"exercise instead of {len(official)}; hand in the notebook "
                                  "with its check cells.")
            continue
        for index, text in zip(found, official):
            nb.cells[index].source = text
    return checks, problems


def _safe_role(cell) -> str | None:
    try:
        return cell_role(cell)
    except ValueError:
        return None


def _heading_id(markdown: str, notebook: str) -> str | None:
    number, title = exercise_heading(markdown)
    return exercise_id(notebook, number, title) if number is not None else None


# ---- running a notebook --------------------------------------------------------------------------

@dataclass(frozen=True)
class Stop:
    """Where and why execution stopped early: the cell, the kind of stop and a sentence."""

    cell: int
    kind: str               # "TimeoutError", "DeadKernelError" or "KernelError"
    reason: str


def execute(nb, limits: Limits = Limits(), fonts: Path | None = None):
    """Run ``nb`` in a fresh kernel in a throwaway folder; return it with its outputs and the
    Stop (or None when every cell ran). The kernel is always shut down, the folder removed."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    for cell in nb.cells:
        if cell.cell_type == "code":    # what a submission stored never counts
            cell.outputs, cell.execution_count = [], None
    workdir = Path(tempfile.mkdtemp(prefix="classroom-grade-"))
    try:
        run_dir = workdir / "run"
        _prepare_home(workdir / "home", fonts)
        (workdir / "tmp").mkdir()
        run_dir.mkdir()
        nbformat.write(nb, str(run_dir / "submission.ipynb"))
        deadline = time.monotonic() + limits.notebook
        client = NotebookClient(nb, timeout=max(1, math.ceil(limits.cell)), kernel_name="python3",
                                allow_errors=True, shutdown_kernel="immediate",
                                resources={"metadata": {"path": str(run_dir)}},
                                startup_timeout=min(60, max(1, math.ceil(limits.notebook))))
        client.timeout_func = lambda cell: _cell_timeout(deadline, limits)
        try:
            with client.setup_kernel(env=kernel_environment(workdir, limits.blas_threads),
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL):
                for index, cell in enumerate(nb.cells):
                    if time.monotonic() >= deadline:
                        return nb, Stop(index, "TimeoutError", f"the notebook's time limit of "
                                        f"{limits.notebook:g} s was reached before cell {index}")
                    try:
                        client.execute_cell(cell, index)
                    except CellTimeoutError:
                        return nb, Stop(index, "TimeoutError",
                                        _timeout_reason(deadline, limits, index))
                    except DeadKernelError:
                        return nb, Stop(index, "DeadKernelError", f"the kernel died in cell "
                                        f"{index} (a crash, os._exit or out of memory)")
        except Exception as err:  # noqa: BLE001 - a kernel that cannot start is a row, not a crash
            return nb, Stop(-1, "KernelError", f"the kernel failed: {type(err).__name__}: "
                                               f"{_first_line(err)}")
        return nb, None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _cell_timeout(deadline: float, limits: Limits) -> int:
    return max(1, math.ceil(min(limits.cell, deadline - time.monotonic())))


def _timeout_reason(deadline: float, limits: Limits, index: int) -> str:
    if time.monotonic() >= deadline - 0.5:
        return f"the notebook's time limit of {limits.notebook:g} s ran out in cell {index}"
    return f"cell {index} ran longer than the cell time limit of {limits.cell:g} s"


def _prepare_home(home: Path, fonts: Path | None) -> None:
    """A fresh HOME for a kernel, with a copy of Matplotlib's font list when given (building it
    anew costs about a second per submission; a copy, unlike a shared folder, cannot be changed
    by one submission for the next)."""
    home.mkdir()
    if fonts is not None and fonts.is_dir():
        shutil.copytree(fonts, home / ".cache" / "matplotlib")


@contextlib.contextmanager
def font_cache():
    """A Matplotlib cache folder holding its font list, built once for a grading run and
    removed after it; yields None when it cannot be built."""
    folder = Path(tempfile.mkdtemp(prefix="classroom-fonts-"))
    try:
        env = {key: os.environ[key] for key in ("PATH", "SYSTEMROOT") if key in os.environ}
        env.update(HOME=str(folder), XDG_CACHE_HOME=str(folder / ".cache"),
                   MPLCONFIGDIR=str(folder / "config"))
        try:
            subprocess.run([sys.executable, "-c", "import matplotlib.font_manager"], env=env,
                           timeout=120, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError):
            pass
        cache = folder / ".cache" / "matplotlib"
        yield cache if cache.is_dir() else None
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def kernel_environment(workdir: Path, blas_threads: int | None = None) -> dict:
    """The environment of a grading kernel: no secrets, a HOME and TMPDIR inside ``workdir``,
    and at most ``blas_threads`` BLAS threads when given."""
    env = {key: os.environ[key] for key in PASSED_ENV if key in os.environ}
    if blas_threads is not None:
        env.update(dict.fromkeys(BLAS_THREAD_VARIABLES, str(blas_threads)))
    env.update({key: value for key, value in os.environ.items() if key.startswith("NN_")})
    env.update(HOME=str(workdir / "home"), TMPDIR=str(workdir / "tmp"),
               PYDEVD_DISABLE_FILE_VALIDATION="1", PYTHONDONTWRITEBYTECODE="1")
    env.setdefault("PATH", os.defpath)
    return env


# ---- from outputs to outcomes --------------------------------------------------------------------

def _check_outcome(nb, index: int, stop: Stop | None, check_cells: set) -> tuple[str, str]:
    """The outcome of one check cell from its outputs (and where execution stopped)."""
    if stop is not None and stop.kind == "KernelError":
        return ERROR, f"{stop.kind}: {stop.reason}"
    if stop is not None and index > stop.cell:
        return NOT_RUN, stop.reason[0].upper() + stop.reason[1:] + "."
    if stop is not None and index == stop.cell:
        return ERROR, f"{stop.kind}: {stop.reason}"
    error = _error_output(nb.cells[index])
    if error is not None:
        message = _first_line(error.get("evalue", "")) or error.get("ename", "error")
        if error.get("ename") == "AssertionError":
            return FAILED, message
        return ERROR, f"{error.get('ename')}: {message}{_earlier_error(nb, index, check_cells)}"
    outputs = nb.cells[index].get("outputs", [])
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    correct = [line for line in text.splitlines() if line.startswith("Correct:")]
    if correct:
        return PASSED, correct[-1]
    return FAILED, "the check ran but did not print 'Correct:'."


def _combine(outcomes: list[tuple[str, str]]) -> tuple[str, str]:
    """One exercise's outcome from those of its check cells: the first that is not a pass."""
    return next((o for o in outcomes if o[0] != PASSED), outcomes[-1])


def _error_output(cell):
    return next((o for o in cell.get("outputs", []) if o.get("output_type") == "error"), None)


def _earlier_error(nb, index: int, check_cells: set) -> str:
    """' (after an error in cell k: ...)' when a cell before ``index`` that is not a check cell
    raised (and was not meant to), since that error is likely the cause."""
    for k, cell in enumerate(nb.cells[:index]):
        error = _error_output(cell) if cell.cell_type == "code" else None
        if error is None or k in check_cells:
            continue
        if "raises-exception" not in cell.get("metadata", {}).get("tags", []):
            return (f" (after an error in cell {k}: {error.get('ename')}: "
                    f"{_first_line(error.get('evalue', ''))})")
    return ""


def _first_line(value) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(value)).strip()
    return text.splitlines()[0] if text else ""


# ---- a folder of submissions ---------------------------------------------------------------------

def submission_paths(folder: Path) -> list[Path]:
    """Every notebook under ``folder``, in order, without Jupyter's checkpoint copies."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no such folder of submissions: {folder}")
    return sorted(p for p in folder.rglob("*.ipynb")
                  if p.is_file() and ".ipynb_checkpoints" not in p.parts)


def grade_folder(folder: Path, sources: dict[str, Source], limits: Limits = Limits(),
                 jobs: int = 1, progress=None) -> list[Row]:
    """The rows of every submission under ``folder``, graded ``jobs`` at a time. With several
    jobs, each kernel's BLAS gets its share of the cores (threads that compete for cores wait on
    each other and run many times slower)."""
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}.")
    if jobs > 1 and limits.blas_threads is None:
        limits = dataclasses.replace(limits, blas_threads=max(1, (os.cpu_count() or 1) // jobs))
    paths = submission_paths(folder)
    names = [p.relative_to(folder).as_posix() for p in paths]
    with font_cache() as fonts:
        results = _grade_all(paths, names, sources, limits, jobs, fonts, progress)
    return [row for name in names for row in results[name][0]]


def _grade_all(paths, names, sources, limits, jobs, fonts, progress) -> dict:
    """Each file's (rows, seconds), by name, graded one after another or ``jobs`` at a time."""
    results = {}
    if jobs == 1:
        for path, name in zip(paths, names):
            results[name] = _timed(path, sources, limits, name, fonts)
            _report(progress, name, results[name], len(results), len(paths))
    else:
        with concurrent.futures.ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = {pool.submit(_timed, path, sources, limits, name, fonts): name
                       for path, name in zip(paths, names)}
            for future in concurrent.futures.as_completed(futures):
                name = futures[future]
                try:
                    results[name] = future.result()
                except Exception as err:  # noqa: BLE001 - a lost worker is one file's error
                    results[name] = ([Row(name, WHOLE_FILE, ERROR, f"the grader's worker "
                                          f"failed: {type(err).__name__}: {_first_line(err)}")],
                                     0.0)
                _report(progress, name, results[name], len(results), len(paths))
    return results


def _timed(path: Path, sources: dict, limits: Limits, name: str, fonts: Path | None):
    start = time.perf_counter()
    rows = grade_submission(path, sources, limits, name, fonts)
    return rows, time.perf_counter() - start


def _report(progress, name: str, result, done: int, total: int) -> None:
    if progress is None:
        return
    rows, seconds = result
    counts = {outcome: sum(row.outcome == outcome for row in rows) for outcome in OUTCOMES}
    summary = ", ".join(f"{n} {outcome}" for outcome, n in counts.items() if n)
    progress(f"[{done}/{total}] {name}: {summary} ({seconds:.1f} s)")


def write_csv(rows: list[Row], path: Path) -> Path:
    """Write the rows as CSV (file, exercise, outcome, message), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    with open(partial, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(FIELDS)
        writer.writerows((row.file, row.exercise, row.outcome, row.message) for row in rows)
    os.replace(partial, path)
    return path


SYMBOLS = {PASSED: "ok", FAILED: "FAIL", ERROR: "ERR", NOT_RUN: "--"}


def summary_table(rows: list[Row]) -> str:
    """A plain-text table: one line per file, one column per exercise, totals at the end."""
    exercises = list(dict.fromkeys(row.exercise for row in rows if row.exercise != WHOLE_FILE))
    short = {exercise: exercise.split(" ", 1)[0] for exercise in exercises}
    files = list(dict.fromkeys(row.file for row in rows))
    width = max([len("file")] + [len(f) for f in files])
    lines = [f"{'file':<{width}}  " + " ".join(f"{short[e]:>5}" for e in exercises) + "  passed"]
    for name in files:
        own = [row for row in rows if row.file == name]
        whole = next((row for row in own if row.exercise == WHOLE_FILE), None)
        if whole is not None:
            lines.append(f"{name:<{width}}  {whole.outcome}: {whole.message}")
            continue
        by_exercise = {row.exercise: row.outcome for row in own}
        cells = " ".join(f"{SYMBOLS[by_exercise[e]] if e in by_exercise else '':>5}"
                         for e in exercises)
        passed = sum(row.outcome == PASSED for row in own)
        lines.append(f"{name:<{width}}  {cells}  {passed}/{len(own)}")
    totals = {outcome: sum(row.outcome == outcome for row in rows) for outcome in OUTCOMES}
    lines.append("rows: " + ", ".join(f"{n} {outcome}" for outcome, n in totals.items()) +
                 f"  ({'; '.join(f'{s} = {o}' for o, s in SYMBOLS.items())})")
    return "\n".join(lines)

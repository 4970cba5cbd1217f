"""``python -m classroom student`` and ``python -m classroom grade``, run from the repository root.

    python -m classroom student [--out DIR] [--notebooks DIR] [--strict]
    python -m classroom grade SUBMISSIONS_DIR [--csv PATH] [--notebooks DIR] [--jobs N]
                               [--timeout SECONDS] [--cell-timeout SECONDS]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

DEFAULT_NOTEBOOKS = Path("notebooks")
DEFAULT_OUT = Path("build") / "student"        # build/ is git-ignored
DEFAULT_CSV = Path("build") / "grades.csv"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.command(args)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m classroom",
                                     description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(required=True, metavar="{student,grade}")
    student = commands.add_parser("student", help="write the student edition of every notebook")
    student.add_argument("--out", type=Path, default=DEFAULT_OUT,
                         help=f"folder to write it into (default {DEFAULT_OUT})")
    student.add_argument("--notebooks", type=Path, default=DEFAULT_NOTEBOOKS,
                         help=f"folder of the source notebooks (default {DEFAULT_NOTEBOOKS})")
    student.add_argument("--strict", action="store_true",
                         help="exit with status 1 when a notebook breaks an exercise convention")
    student.set_defaults(command=_student)
    grade = commands.add_parser("grade", help="execute submissions and write their grades as CSV")
    grade.add_argument("submissions", type=Path, help="folder of submitted notebooks (searched "
                                                       "recursively)")
    grade.add_argument("--csv", type=Path, default=DEFAULT_CSV,
                       help=f"where to write the grades (default {DEFAULT_CSV})")
    grade.add_argument("--notebooks", type=Path, default=DEFAULT_NOTEBOOKS,
                       help=f"folder of the source notebooks (default {DEFAULT_NOTEBOOKS})")
    grade.add_argument("--jobs", type=int, default=1,
                       help="submissions graded at the same time (default 1; at most the cores)")
    grade.add_argument("--timeout", type=float, default=600.0,
                       help="time limit per notebook in seconds (default 600)")
    grade.add_argument("--cell-timeout", type=float, default=120.0,
                       help="time limit per cell in seconds (default 120)")
    grade.set_defaults(command=_grade)
    return parser


def _student(args) -> int:
    from .exercises import lint
    from .student import notebook_paths, read_notebook, write_student_edition

    problems = [(path.name, exercise, problem) for path in notebook_paths(args.notebooks)
                for exercise, problem in lint(read_notebook(path), path.name)]
    written = write_student_edition(args.notebooks, args.out)
    for name, exercise, problem in problems:
        print(f"warning: {name}, exercise {exercise}: {problem}", file=sys.stderr)
    print(f"wrote the student edition of {len(written)} notebooks to {args.out}"
          + (f" ({len(problems)} warnings above)" if problems else ""))
    return 1 if problems and args.strict else 0


def _grade(args) -> int:
    from .grade import Limits, grade_folder, load_sources, summary_table, write_csv

    limits = Limits(cell=args.cell_timeout, notebook=args.timeout)
    sources = load_sources(args.notebooks)
    start = time.perf_counter()
    rows = grade_folder(args.submissions, sources, limits, jobs=args.jobs,
                        progress=lambda line: print(line, flush=True))
    seconds = time.perf_counter() - start
    write_csv(rows, args.csv)
    files = len({row.file for row in rows})
    print()
    print(summary_table(rows) if rows else "no submissions (*.ipynb) found")
    print(f"\ngraded {files} submissions in {seconds:.0f} s; grades written to {args.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

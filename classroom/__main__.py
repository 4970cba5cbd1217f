"""``python -m classroom student``, ``grade`` and ``slides``, run from the repository root.

    python -m classroom student [--out DIR] [--notebooks DIR] [--strict]
    python -m classroom grade SUBMISSIONS_DIR [--csv PATH] [--notebooks DIR] [--jobs N]
                               [--timeout SECONDS] [--cell-timeout SECONDS]
    python -m classroom slides (--tag | --check | --html OUTDIR) [--notebooks DIR] [NOTEBOOK ...]
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
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m classroom",
                                     description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(required=True, metavar="{student,grade,slides}")
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
    _add_slides_parser(commands)
    return parser


def _add_slides_parser(commands) -> None:
    slides = commands.add_parser(
        "slides", help="compute the notebooks' slide metadata, or export offline HTML slides")
    slides.add_argument("names", nargs="*", metavar="NOTEBOOK",
                        help="a notebook such as 04_backprop, or a path to an .ipynb file "
                             "(default: every notebook in --notebooks)")
    mode = slides.add_mutually_exclusive_group(required=True)
    mode.add_argument("--tag", action="store_true",
                      help="write the rule's slide type into every cell, in place")
    mode.add_argument("--check", action="store_true",
                      help="list the cells whose stored slide type differs from the rule; exit "
                           "with status 1 if there are any")
    mode.add_argument("--html", type=Path, metavar="OUTDIR",
                      help="write one self-contained, offline HTML slide deck per notebook")
    slides.add_argument("--notebooks", type=Path, default=DEFAULT_NOTEBOOKS,
                        help=f"folder of the notebooks (default {DEFAULT_NOTEBOOKS})")
    slides.set_defaults(command=_slides)


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


def _slides(args) -> int:
    from .slides import resolve_notebooks

    paths = resolve_notebooks(args.names, args.notebooks)
    if args.html is not None:
        return _slides_html(paths, args.html)
    return _slides_check(paths) if args.check else _slides_tag(paths)


def _slides_html(paths: list[Path], out_dir: Path) -> int:
    from .slides_html import export

    for target, screens, stale in export(paths, out_dir):
        print(f"{target}: {screens} slides" + (
            f" (note: the stored slide type of {_cells(stale)} differs from the rule; "
            "python -m classroom slides --tag updates it)" if stale else ""))
    return 0


def _slides_check(paths: list[Path]) -> int:
    from .slides import describe, differences, read_notebook

    count = 0
    for path in paths:
        nb = read_notebook(path)
        for index, stored, wanted in differences(nb):
            print(f"{path.name}, {describe(nb, index)}: stored {stored or 'nothing'}, "
                  f"the rule says {wanted}")
            count += 1
    if count:
        print(f"{_cells(count)} differ from the rule; python -m classroom slides --tag writes it",
              file=sys.stderr)
        return 1
    print(f"the slide types of {len(paths)} notebooks match the rule")
    return 0


def _cells(count: int) -> str:
    return f"{count} cell" + ("" if count == 1 else "s")


def _slides_tag(paths: list[Path]) -> int:
    from .slides import STARTS, apply_rule, read_notebook, slide_types, write_notebook

    notebooks = [(path, read_notebook(path)) for path in paths]  # all readable before any write
    for path, nb in notebooks:
        changed = apply_rule(nb)
        if changed:
            write_notebook(path, nb)
        screens = sum(slide_type in STARTS for slide_type in slide_types(nb))
        print(f"{path}: {screens} slides; " + (f"{changed} slide types written" if changed
                                               else "already up to date"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The student edition: the same notebooks with every solution replaced by a stub.

A stub keeps each function's signature and docstring and raises ``NotImplementedError`` naming
the exercise; every name the check reads that the solution assigned starts as ``None``. The
exercise's own outputs (solution and check cells) are cleared; teaching cells keep theirs. Each
cell of an exercise records the exercise's id in ``metadata["classroom"]``, which the grader
uses to map a check cell to its exercise. Same input, byte-identical output.
"""

from __future__ import annotations

import ast
import copy
import io
import tokenize
from pathlib import Path

import nbformat

from .exercises import (CHECK, EXERCISE, METADATA_KEY, Exercise, find_exercises, parse_cell,
                        read_names, stored_names)

EDITION = "student"


def notebook_paths(notebooks_dir: Path) -> list[Path]:
    """The series' notebooks in ``notebooks_dir``, in order; checkpoints are skipped."""
    paths = sorted(p for p in Path(notebooks_dir).glob("*.ipynb") if p.is_file())
    if not paths:
        raise FileNotFoundError(f"no notebooks (*.ipynb) in {notebooks_dir}; pass the folder "
                                "that holds 01_data.ipynb ... with --notebooks.")
    return paths


def read_notebook(path: Path):
    return nbformat.read(str(path), as_version=4)


def write_student_edition(notebooks_dir: Path, out_dir: Path) -> list[Path]:
    """Write the student edition of every notebook in ``notebooks_dir`` into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebook_paths(notebooks_dir):
        target = out_dir / path.name
        nbformat.write(student_notebook(read_notebook(path), path.name), str(target))
        written.append(target)
    return written


def student_notebook(nb, name: str):
    """The student edition of notebook ``nb`` (file name ``name``), a new notebook."""
    exercises = find_exercises(nb, name)
    student = copy.deepcopy(nb)
    for exercise in exercises:
        keep = _names_the_check_reads(nb, exercise)
        _mark(student.cells[exercise.cell], exercise, EXERCISE)
        for index in exercise.solutions:
            cell = student.cells[index]
            cell.source = stub_source(cell.source, exercise, keep, f"{name}, cell {index}")
            _clear(cell)
            _mark(cell, exercise, "stub")
        for index in exercise.checks:
            cell = student.cells[index]
            _clear(cell)
            _mark(cell, exercise, CHECK)
            cell.metadata.update(editable=False, deletable=False)
    student.metadata[METADATA_KEY] = {"edition": EDITION, "source": name,
                                      "exercises": [exercise.id for exercise in exercises]}
    nbformat.validate(student)
    return student


def with_solutions(student, source):
    """``student`` (an edition of ``source``) with every stub replaced by its solution again."""
    solutions = {}
    for exercise in find_exercises(source, student.metadata[METADATA_KEY]["source"]):
        solutions[exercise.id] = [source.cells[i].source for i in exercise.solutions]
    filled = copy.deepcopy(student)
    for cell in filled.cells:
        info = cell.get("metadata", {}).get(METADATA_KEY, {})
        if info.get("role") == "stub":
            cell.source = solutions[info["exercise"]].pop(0)
    return filled


def _mark(cell, exercise: Exercise, role: str) -> None:
    cell.metadata[METADATA_KEY] = {"exercise": exercise.id, "role": role}


def _clear(cell) -> None:
    cell.outputs = []
    cell.execution_count = None


def _names_the_check_reads(nb, exercise: Exercise) -> set[str]:
    where = f"{exercise.notebook}, exercise {exercise.id}"
    return set().union(*(read_names(parse_cell(nb.cells[i].source, where))
                         for i in exercise.checks))


def stub_source(source: str, exercise: Exercise, keep: set[str], where: str = "") -> str:
    """The stub of one solution cell.

    Functions and classes keep their signature and docstring, and their bodies raise
    ``NotImplementedError``; each name in ``keep`` that the cell assigns becomes ``name = None``.
    Everything else (statements, comments, imports) is left out.
    """
    tree = parse_cell(source, where)
    lines = source.splitlines()
    parts = _imports_the_headers_need(tree, lines)
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            parts.append(_function_stub(node, lines, exercise, 0))
        elif isinstance(node, ast.ClassDef):
            parts.append(_class_stub(node, lines, exercise))
    defined = {node.name for node in tree.body if hasattr(node, "name")}
    answers = [name for name in stored_names(tree) if name in keep and name not in defined]
    if answers:
        parts.append("\n".join(f"{name} = None  # replace None with your answer"
                               for name in answers))
    header = f"# {exercise.id}: your code here (the check cell below tests it)"
    return "\n\n\n".join([header + ("\n" + parts[0] if parts else "")] + parts[1:])


def _imports_the_headers_need(tree: ast.Module, lines: list[str]) -> list[str]:
    """The cell's imports that a kept header uses (in a decorator, a default, an annotation)."""
    used = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            header = [*node.decorator_list, *getattr(node, "bases", []),
                      *getattr(node, "keywords", [])]
            if not isinstance(node, ast.ClassDef):
                header += [*node.args.defaults, *node.args.kw_defaults, node.returns,
                           *(a.annotation for a in node.args.args + node.args.kwonlyargs)]
            used |= {n.id for part in header if part is not None for n in ast.walk(part)
                     if isinstance(n, ast.Name)}
    imports = []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)) and any(
                (alias.asname or alias.name).split(".")[0] in used for alias in node.names):
            imports.append("\n".join(lines[node.lineno - 1:node.end_lineno]))
    return ["\n".join(imports)] if imports else []


def _function_stub(node, lines: list[str], exercise: Exercise, indent: int) -> str:
    """A function's signature and docstring, then a body that raises NotImplementedError."""
    start = (node.decorator_list[0] if node.decorator_list else node).lineno - 1
    header = _header(lines, start, node)
    body_indent = " " * (indent + 4)
    docstring = _docstring_lines(node, lines)
    if docstring and docstring[0].strip() and len(docstring[0]) - len(
            docstring[0].lstrip()) > indent:
        body_indent = docstring[0][:len(docstring[0]) - len(docstring[0].lstrip())]
    message = f"{exercise.id}: {node.name} is not written yet"
    raise_line = f"{body_indent}raise NotImplementedError({message!r})"
    return "\n".join(header + docstring + [raise_line])


def _class_stub(node: ast.ClassDef, lines: list[str], exercise: Exercise) -> str:
    """A class's header and docstring, each method a stub."""
    start = (node.decorator_list[0] if node.decorator_list else node).lineno - 1
    parts = [_header(lines, start, node) + _docstring_lines(node, lines)]
    methods = [m for m in node.body if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))]
    stubs = ["\n".join(parts[0])] + [_function_stub(m, lines, exercise, node.col_offset + 4)
                                     for m in methods]
    if not methods and not _docstring_lines(node, lines):
        stubs.append(" " * (node.col_offset + 4) + "pass")
    return "\n\n".join(stubs)


def _header(lines: list[str], start: int, node) -> list[str]:
    """The lines of a def or class header, from its decorators to the colon that ends it."""
    segment = "\n".join(lines[start:node.end_lineno])
    depth, seen_keyword = 0, False
    for token in tokenize.generate_tokens(io.StringIO(segment).readline):
        if token.type == tokenize.NAME and token.string in ("def", "class"):
            seen_keyword = True
        elif token.type == tokenize.OP and token.string in "([{":
            depth += 1
        elif token.type == tokenize.OP and token.string in ")]}":
            depth -= 1
        elif seen_keyword and depth == 0 and token.type == tokenize.OP and token.string == ":":
            end_row, end_col = token.end
            header = lines[start:start + end_row]
            header[-1] = header[-1][:end_col]
            return header
    raise ValueError(f"no end of header found for {node.name}")


def _docstring_lines(node, lines: list[str]) -> list[str]:
    """The source lines of a function's or class's docstring, or [] when it has none."""
    first = node.body[0] if node.body else None
    if not (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)):
        return []
    if first.lineno == node.lineno:  # "def f(): '''doc'''" on one line: rebuild it
        return [" " * (node.col_offset + 4) + repr(first.value.value)]
    return lines[first.lineno - 1:first.end_lineno]

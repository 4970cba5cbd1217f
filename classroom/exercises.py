"""The exercise conventions of the notebooks: tags, exercise ids and what a check cell may hold.

An exercise is a markdown cell tagged ``exercise`` whose heading names it ("**Exercise 2 · ...**",
"### Exercise 2: ...", "**2. ...**"), followed by code cells tagged ``solution`` (replaced by
stubs in the student edition) and ``check`` (run as they are). Untagged cells in between, such as
a cell that makes the exercise's inputs, are teaching cells and stay visible.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

EXERCISE, SOLUTION, CHECK = "exercise", "solution", "check"
ROLES = (EXERCISE, SOLUTION, CHECK)
#: Cell and notebook metadata key under which the generator records what a cell is.
METADATA_KEY = "classroom"

_HEADING = re.compile(r"^\s*(?P<mark>#+\s*|\*\*\s*)(?:exercise\s+)?(?P<number>\d+)\s*"
                      r"(?:[·:.\-–—]|\()\s*(?P<rest>.*)$", re.IGNORECASE)


class NotebookConventionError(ValueError):
    """A notebook breaks the exercise conventions (a solution before any exercise, ...)."""


@dataclass(frozen=True)
class Exercise:
    """One exercise of a notebook and the indices of its cells."""

    id: str                   # "05-2 early stopping": notebook number, exercise number, title
    notebook: str             # "05_training.ipynb"
    number: int
    title: str
    cell: int                 # index of the exercise's markdown cell
    solutions: tuple[int, ...]
    checks: tuple[int, ...]


def cell_role(cell, where: str = "") -> str | None:
    """The exercise role of a cell (``exercise``, ``solution``, ``check``) from its tags."""
    tags = cell.get("metadata", {}).get("tags", [])
    roles = [role for role in ROLES if role in tags]
    if len(roles) > 1:
        raise NotebookConventionError(f"{where}: a cell is tagged {roles}; use one of them.")
    return roles[0] if roles else None


def notebook_number(name: str) -> str:
    """``"05"`` for ``05_training.ipynb``; the file's stem when it does not start with digits."""
    stem = Path(name).stem
    match = re.match(r"\d+", stem)
    return match.group(0) if match else stem


def exercise_heading(markdown: str) -> tuple[int | None, str]:
    """The number and title of an exercise from its markdown: ``(2, "early stopping")``."""
    for line in markdown.splitlines():
        match = _HEADING.match(line)
        if not match:
            continue
        rest = match.group("rest")
        if match.group("mark").startswith("**"):
            rest = rest.split("**", 1)[0]
        title = re.sub(r"[\s.:)]+$", "", rest).strip()
        return int(match.group("number")), title
    return None, ""


def exercise_id(notebook: str, number: int, title: str) -> str:
    return f"{notebook_number(notebook)}-{number} {title}".strip()


def find_exercises(nb, name: str) -> list[Exercise]:
    """Every exercise of notebook ``nb`` (file name ``name``) with its solution and check cells.

    Raises NotebookConventionError when a solution or check cell comes before any exercise, a
    tagged cell has the wrong type, or two exercises get the same id.
    """
    found, current = [], None
    for index, cell in enumerate(nb.cells):
        where = f"{name}, cell {index}"
        role = cell_role(cell, where)
        if role is None:
            continue
        wanted = "markdown" if role == EXERCISE else "code"
        if cell.cell_type != wanted:
            raise NotebookConventionError(f"{where}: a cell tagged {role!r} must be a {wanted} "
                                          f"cell, not {cell.cell_type}.")
        if role == EXERCISE:
            number, title = exercise_heading(cell.source)
            current = {"number": number or len(found) + 1, "title": title, "cell": index,
                       "solutions": [], "checks": []}
            found.append(current)
        elif current is None:
            raise NotebookConventionError(f"{where}: a {role} cell comes before any cell tagged "
                                          "'exercise'.")
        else:
            current["solutions" if role == SOLUTION else "checks"].append(index)
    exercises = [Exercise(exercise_id(name, f["number"], f["title"]), name, f["number"],
                          f["title"], f["cell"], tuple(f["solutions"]), tuple(f["checks"]))
                 for f in found]
    ids = [exercise.id for exercise in exercises]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise NotebookConventionError(f"{name}: two exercises are both called {duplicates}; "
                                      "number them differently.")
    return exercises


def parse_cell(source: str, where: str) -> ast.Module:
    """The syntax tree of a code cell; IPython magics and shell lines are read as blank."""
    lines = ["" if line.lstrip().startswith(("%", "!")) else line
             for line in source.splitlines()]
    try:
        return ast.parse("\n".join(lines))
    except SyntaxError as err:
        raise NotebookConventionError(f"{where}: not valid Python (line {err.lineno}: "
                                      f"{err.msg}).") from None


def stored_names(tree: ast.Module) -> list[str]:
    """Names that the top level of a cell assigns, in order (functions and classes included)."""
    names = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            targets = [ast.Name(id=node.name, ctx=ast.Store())]
        elif isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            targets = [node.target]
        else:
            continue
        for target in targets:
            names += [n.id for n in ast.walk(target)
                      if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)]
    return list(dict.fromkeys(names))


def read_names(tree: ast.Module) -> set[str]:
    """Every name a cell reads anywhere."""
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def defined_functions(tree: ast.Module) -> list[str]:
    return [node.name for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]


def mentions(markdown: str, name: str) -> bool:
    """Whether ``name`` appears in backticks in the markdown (`name`, `name(args)`, ...)."""
    return re.search(rf"`{re.escape(name)}\b", markdown) is not None


def lint(nb, name: str) -> list[tuple[str, str]]:
    """What keeps ``nb`` from making a sound student edition, as (exercise id, problem) pairs.

    The problems are those a student would meet: a check that needs an input only a solution
    creates (NameError once the solutions are blanked), a name the check reads that the exercise
    text never asks for, a check cell that holds its own reference (a solution in plain sight).
    """
    exercises = find_exercises(nb, name)
    solution_cells = {i: exercise for exercise in exercises for i in exercise.solutions}
    visible, made_by = set(), {}     # names made by teaching cells so far; by solutions: exercise
    problems = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        tree = parse_cell(cell.source, f"{name}, cell {index}")
        if index in solution_cells:
            made_by.update(dict.fromkeys(stored_names(tree), solution_cells[index]))
            continue
        exercise = next((e for e in exercises if index in e.checks), None)
        if exercise is not None:
            problems += [(exercise.id, p) for p in _check_problems(nb, exercise, tree, visible,
                                                                    made_by)]
        visible.update(stored_names(tree))
    for exercise in exercises:
        if not exercise.solutions or not exercise.checks:
            missing = "solution" if not exercise.solutions else "check"
            problems.append((exercise.id, f"it has no cell tagged {missing!r}."))
    return problems


def _check_problems(nb, exercise: Exercise, tree: ast.Module, visible: set,
                    made_by: dict) -> list[str]:
    """What is wrong with one check cell: the names it needs, and what it holds."""
    where = f"{exercise.notebook}, exercise {exercise.id}"
    own = [parse_cell(nb.cells[i].source, where) for i in exercise.solutions]
    functions = {n for solution in own for n in defined_functions(solution)}
    tried_on = set().union(*(_arguments_of_calls(solution, functions) for solution in own))
    text = nb.cells[exercise.cell].source
    problems = []
    for name in sorted(read_names(tree) - visible):
        maker = made_by.get(name)
        if maker is None:
            continue
        if maker.id != exercise.id:
            problems.append(f"its check reads `{name}`, which only the solution of exercise "
                            f"{maker.id} creates: make it in a visible cell (blanked, the check "
                            "raises NameError).")
        elif name not in functions and name in tried_on:
            problems.append(f"its check reads `{name}`, an input that only its solution cell "
                            "creates: make it in a visible cell before the solution (blanked, "
                            "the check raises NameError).")
        elif not mentions(text, name):
            what = "the function" if name in functions else "the name"
            problems.append(f"its text never names {what} `{name}` that the check reads: say "
                            "exactly what to define.")
    return problems + _repeated_solution_lines(nb, exercise) + _check_cell_problems(tree)


def _repeated_solution_lines(nb, exercise: Exercise) -> list[str]:
    """A check cell that repeats a line of the solution (in a hint, say) gives it away."""
    solution_lines = [line.strip() for i in exercise.solutions
                      for line in nb.cells[i].source.splitlines()
                      if re.search(r"\w", line) and not line.strip().startswith(
                          ("def ", "class ", "#", "@", '"""', "'''", "return"))]
    for index in exercise.checks:
        text = nb.cells[index].source
        repeated = [line for line in solution_lines if len(line) >= 8 and line in text]
        if repeated:
            return [f"its check cell repeats a line of the solution (`{repeated[0]}`)."]
    return []


def _arguments_of_calls(tree: ast.Module, functions: set) -> set[str]:
    """Names passed to a call of one of ``functions``: the inputs a solution tries itself on."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and (
                node.func.id in functions):
            for argument in [*node.args, *(k.value for k in node.keywords)]:
                names |= read_names(ast.Module(body=[ast.Expr(argument)], type_ignores=[]))
    return names


def _check_cell_problems(tree: ast.Module) -> list[str]:
    """A check cell should be calls into classroom.checks and nothing else."""
    defined = [node.name for node in ast.walk(tree)
               if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    defined += ["a lambda"] * any(isinstance(node, ast.Lambda) for node in ast.walk(tree))
    if defined:
        return [f"its check cell defines {', '.join(defined)}: keep references in "
                "classroom/checks.py, out of the students' sight."]
    others = [node for node in tree.body if not _is_checks_call(node)]
    if others:
        first = ast.unparse(others[0]).splitlines()[0][:70]
        return [f"its check cell computes in the notebook (`{first}`): make it one call of a "
                "function of classroom.checks, which keeps the reference."]
    return []


def _is_checks_call(node: ast.stmt) -> bool:
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        modules = [node.module or ""] if isinstance(node, ast.ImportFrom) else [
            alias.name for alias in node.names]
        return all(module.split(".")[0] == "classroom" for module in modules)
    if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)):
        return False
    func = node.value.func
    while isinstance(func, ast.Attribute):
        func = func.value
    return isinstance(func, ast.Name) and func.id in ("checks", "classroom")

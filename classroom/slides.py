"""Slide metadata for presenting the notebooks: the rule that computes it, and writing it.

Every cell gets ``metadata.slideshow.slide_type``, the key that RISE (the JupyterLab
slideshow) and ``python -m classroom slides --html`` both read:

* ``slide``: the title cell (``# 04 · ...``), each ``## `` section heading, and the first cell
  shown;
* ``subslide``: each ``### `` heading and each exercise (a cell tagged ``exercise``), and the
  place where a section too long for one screen continues (see ``split_points``);
* ``skip``: plumbing, i.e. code cells made only of imports and the series' setup calls
  (``nn.use_series_style()``, ``nn.limit_blas_threads()``, ``SEED = nn.series_seed()``, the
  guarded ``import nn_helpers``), so the setup cell and ``from classroom import checks``; and
  empty cells;
* ``-``: everything else, which continues the slide above it.

The rule never computes ``fragment`` or ``notes``, so a stored one was set by an author (the
Slide Type in JupyterLab's property inspector) and is kept: that is how a derivation is built up
over several markdown cells. Every other stored type is recomputed, so a slide type follows the
notebook when its cells change. Check cells are shown, source and output: on the projector the
instructor presents the solution edition, and the one-line call with its "Correct: ..." is what a
student will see; to show the exercises without their solutions, present the student edition.
"""

from __future__ import annotations

import ast
import base64
import math
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import nbformat

SLIDE, SUBSLIDE, FRAGMENT, CONTINUE, SKIP, NOTES = (
    "slide", "subslide", "fragment", "-", "skip", "notes")
SLIDE_TYPES = (SLIDE, SUBSLIDE, FRAGMENT, CONTINUE, SKIP, NOTES)
#: Types the rule never computes: a stored one is an author's choice and is kept.
BY_HAND = (FRAGMENT, NOTES)
#: The types that open a new screen.
STARTS = (SLIDE, SUBSLIDE)
#: ``nn.<name>(...)`` calls of the setup cell (CONTRIBUTING.md, "Opening").
SETUP_CALLS = frozenset({"use_series_style", "limit_blas_threads", "series_seed"})


@dataclass(frozen=True)
class Layout:
    """The slide canvas, in CSS pixels, shared by the HTML export's style sheet and the height
    estimates that decide where a long section continues on a new subslide."""

    width: int = 1280
    height: int = 720
    padding: int = 40          # around the content, each side
    footer: int = 34           # the line with the title and the slide counter
    text_px: int = 24          # markdown text
    line_height: float = 1.4
    code_px: int = 17          # code and text outputs
    code_line_height: float = 1.3
    text_chars: int = 88       # characters of prose per line at text_px over the content width
    code_chars: int = 110      # characters of code per line at code_px
    cell_gap: int = 12
    figure_scale: float = 1.5  # the figures are stored at 72 dpi; 1.5x makes their 14 px labels 21
    figure_max_height: int = 480
    fold_lines: int = 8        # longer code that draws a figure is folded (``is_folded``)
    fill: float = 1.08         # how full a screen is packed: the estimates run 5-10% high, and
                               # the export shrinks a screen that overflows a little

    @property
    def content_width(self) -> int:
        return self.width - 2 * self.padding

    @property
    def content_height(self) -> int:
        return self.height - 2 * self.padding - self.footer

    @property
    def budget(self) -> float:
        """The estimated height of cells that ``split_points`` puts on one screen at most."""
        return self.content_height * self.fill


LAYOUT = Layout()


def stored_type(cell) -> str | None:
    """The slide type stored in ``cell``'s metadata, or None when it has none."""
    slideshow = cell.get("metadata", {}).get("slideshow")
    return slideshow.get("slide_type") if isinstance(slideshow, dict) else None


def slide_types(nb, layout: Layout = LAYOUT) -> list[str]:
    """The slide type of every cell of notebook ``nb`` according to the rule (module docstring)."""
    types = []
    for cell in nb.cells:
        stored = stored_type(cell)
        types.append(stored if stored in BY_HAND else structural_type(cell))
    shown = [i for i, t in enumerate(types) if t not in (SKIP, NOTES)]
    if shown and types[shown[0]] not in STARTS + BY_HAND:
        types[shown[0]] = SLIDE
    for index in split_points(nb, types, layout):
        types[index] = SUBSLIDE
    return types


def structural_type(cell) -> str:
    """A cell's type from its own content: headings, exercises, plumbing; else ``-``."""
    source = cell.get("source", "")
    if not source.strip() or cell.cell_type == "raw":
        return SKIP
    if cell.cell_type == "code":
        return SKIP if is_plumbing(source) else CONTINUE
    first_line = source.lstrip().split("\n", 1)[0]
    if re.match(r"#{1,2} ", first_line):
        return SLIDE
    if first_line.startswith("### ") or "exercise" in cell.get("metadata", {}).get("tags", []):
        return SUBSLIDE
    return CONTINUE


def is_plumbing(source: str) -> bool:
    """True for code made only of imports and the series' setup calls (nothing to present)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:       # IPython magics and the like: shown, they are not our plumbing
        return False
    return bool(tree.body) and all(_is_setup_statement(node) for node in tree.body)


def _is_setup_statement(node: ast.stmt) -> bool:
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return True
    if isinstance(node, ast.Try):   # the guarded `import nn_helpers as nn` of the setup cell
        return all(_is_setup_statement(n) for n in node.body)
    value = node.value if isinstance(node, (ast.Expr, ast.Assign)) else None
    return (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)
            and isinstance(value.func.value, ast.Name) and value.func.value.id == "nn"
            and value.func.attr in SETUP_CALLS)


def split_points(nb, types: list[str], layout: Layout = LAYOUT) -> list[int]:
    """The cells at which a screen too long for the projector continues on a new subslide.

    The shown cells of each screen are grouped into teaching steps, each the markdown that
    explains and the code cells that follow it ("markdown explains before code computes"), and
    packed greedily: a step that would overflow the screen starts a subslide, so an explanation
    and its code stay on one screen whenever they fit on one. A step too tall for any screen is
    cut before its second and later code cells (the explanation stays with the first), a part
    still too tall is cut between its cells, and the parts are packed the same way. A cell is
    never cut, and a cell whose type an author chose (``BY_HAND``) never starts a subslide.
    Heights are estimates (``estimate_height``, within about 10% of what Chromium lays out for
    these notebooks); the export shrinks a screen that still overflows.
    """
    points = []
    for screen in _screens(types):
        used = 0
        for piece in _pieces(nb, screen, types, layout):
            height = _height(nb, piece, layout)
            if used and used + layout.cell_gap + height > layout.budget:
                points.append(piece[0])
                used = height
            else:
                used += (layout.cell_gap if used else 0) + height
    return points


def _screens(types: list[str]) -> list[list[int]]:
    """The shown cells (neither skip nor notes), grouped by the slide or subslide they are on."""
    screens: list[list[int]] = []
    for index, slide_type in enumerate(types):
        if slide_type in (SKIP, NOTES):
            continue
        if slide_type in STARTS or not screens:
            screens.append([])
        screens[-1].append(index)
    return screens


def _pieces(nb, screen: list[int], types: list[str], layout: Layout) -> list[list[int]]:
    """A screen's cells as the units that may start a subslide (``split_points``)."""
    pieces: list[list[int]] = []
    for step in _steps(nb, screen, types):
        if _height(nb, step, layout) <= layout.budget:
            pieces.append(step)
            continue
        for unit in _cut_before_later_code(nb, step, types):
            if _height(nb, unit, layout) <= layout.budget:
                pieces.append(unit)
                continue
            for index in unit:          # too tall even so: cell by cell
                if types[index] in BY_HAND and pieces:
                    pieces[-1].append(index)
                else:
                    pieces.append([index])
    return pieces


def _steps(nb, screen: list[int], types: list[str]) -> list[list[int]]:
    """A screen's cells as teaching steps: each markdown run with the code cells after it."""
    steps: list[list[int]] = []
    for position, index in enumerate(screen):
        after_code = position > 0 and nb.cells[screen[position - 1]].cell_type == "code"
        if position == 0 or (nb.cells[index].cell_type == "markdown" and after_code
                             and types[index] not in BY_HAND):
            steps.append([])
        steps[-1].append(index)
    return steps


def _cut_before_later_code(nb, step: list[int], types: list[str]) -> list[list[int]]:
    """A step as its markdown with its first code cell, then each later code cell alone."""
    units: list[list[int]] = [[]]
    for index in step:
        if (nb.cells[index].cell_type == "code" and types[index] not in BY_HAND
                and any(nb.cells[i].cell_type == "code" for i in units[-1])):
            units.append([])
        units[-1].append(index)
    return units


def _height(nb, cells: list[int], layout: Layout) -> float:
    """The estimated height of cells shown one below the other."""
    return (sum(estimate_height(nb.cells[i], layout) for i in cells)
            + layout.cell_gap * (len(cells) - 1))


def estimate_height(cell, layout: Layout = LAYOUT) -> float:
    """Roughly how many CSS pixels a cell takes on a slide (what ``split_points`` packs)."""
    text_line = layout.text_px * layout.line_height
    code_line = layout.code_px * layout.code_line_height
    if cell.cell_type == "markdown":
        return _markdown_lines(cell.source, layout) * text_line
    lines = 1.5 if is_folded(cell, layout) else _wrapped_lines(cell.source, layout.code_chars) + 1
    for output in cell.get("outputs", []):
        size = figure_size(output, layout)
        if size:
            lines += size[1] / code_line
        else:
            lines += _wrapped_lines(_output_text(output), layout.code_chars) + 0.5
    return lines * code_line


def is_folded(cell, layout: Layout = LAYOUT) -> bool:
    """True for a code cell that draws a figure with more than ``fold_lines`` lines of code:
    the export folds that code into one line that opens on a click, so the slide shows the
    figure large (plotting code is rarely what a slide teaches; the computation cells, whose
    code is the lesson, are never folded)."""
    return (cell.cell_type == "code" and bool(figures(cell))
            and len(cell.source.strip().split("\n")) > layout.fold_lines)


def _markdown_lines(source: str, layout: Layout) -> float:
    """Lines of text a markdown cell renders to: each paragraph, list item or table row wrapped
    at ``text_chars``, a display formula 1 to 3 lines, a heading 1.8, half a line between
    blocks."""
    source = re.sub(r"\$\$(.+?)\$\$", lambda m: "\n\n" + "\uffff" * _formula_lines(
        m.group(1)) + "\n\n", source, flags=re.S)
    lines = 0.0
    for block in re.split(r"\n\s*\n", source.strip()):
        lines += 0.5
        for row in re.split(r"\n(?=\s*(?:[-*+] |\d+\. |\||#))", block.strip()):
            if row.startswith("\uffff"):
                lines += len(row.strip())
            elif row.startswith("#"):
                lines += 1.8
            else:
                visible = re.sub(r"\$([^$]*)\$", lambda m: "x" * (len(m.group(1)) // 2), row)
                visible = re.sub(r"[*`]|\]\([^)]*\)|\s*\n\s*", lambda m: " " * (
                    m.group(0).isspace()), visible)
                lines += math.ceil(len(visible) / layout.text_chars)
    return lines - 0.5


def _formula_lines(tex: str) -> int:
    tall = re.search(r"\\(frac|dfrac|sum|underbrace|begin|int|sqrt)", tex)
    return (2 if tall else 1) * (tex.count("\\\\") + 1)


def _wrapped_lines(text: str, chars: int) -> int:
    rows = text.rstrip("\n").split("\n") if text.strip() else []
    return sum(max(1, math.ceil(len(row) / chars)) for row in rows)


def _output_text(output) -> str:
    if output.get("output_type") == "stream":
        return output.get("text", "")
    if output.get("output_type") == "error":
        return "\n".join(output.get("traceback", []))
    return output.get("data", {}).get("text/plain", "")


def figures(cell) -> list[str]:
    """The PNG images among a code cell's outputs, base64-encoded as stored."""
    return [output["data"]["image/png"] for output in cell.get("outputs", [])
            if "image/png" in output.get("data", {})]


def png_size(encoded: str) -> tuple[int, int]:
    """The width and height in pixels of a base64-encoded PNG image, read from its header."""
    header = base64.b64decode("".join(encoded[:40].split())[:32])
    if header[:8] != b"\x89PNG\r\n\x1a\n" or header[12:16] != b"IHDR":
        raise ValueError("an image/png output is not a PNG image (its header is wrong)")
    return struct.unpack(">II", header[16:24])


def figure_size(output, layout: Layout = LAYOUT) -> tuple[int, int] | None:
    """The size a PNG output is shown at on a slide: enlarged by ``figure_scale``, then shrunk
    to fit the content width and ``figure_max_height``; None for an output without a PNG."""
    if "image/png" not in output.get("data", {}):
        return None
    width, height = png_size(output["data"]["image/png"])
    scale = min(layout.figure_scale, layout.content_width / width,
                layout.figure_max_height / height)
    return round(width * scale), round(height * scale)


def differences(nb) -> list[tuple[int, str | None, str]]:
    """``(cell index, stored type, the rule's type)`` for every cell where the two differ."""
    return [(index, stored_type(cell), wanted)
            for index, (cell, wanted) in enumerate(zip(nb.cells, slide_types(nb)))
            if stored_type(cell) != wanted]


def apply_rule(nb) -> int:
    """Store the rule's slide type in every cell of ``nb`` (in place); return how many changed."""
    changes = differences(nb)
    wanted = slide_types(nb)
    for index, _, _ in changes:
        metadata = nb.cells[index].metadata
        if not isinstance(metadata.get("slideshow"), dict):
            metadata["slideshow"] = {}      # stored as a copy: fill it in through metadata
        metadata["slideshow"]["slide_type"] = wanted[index]
    return len(changes)


def describe(nb, index: int) -> str:
    """``cell 12 (markdown "### 3a. Softmax and ...")``: a cell as a message names it."""
    cell = nb.cells[index]
    first = next((line.strip() for line in cell.source.split("\n") if line.strip()), "")
    first = first if len(first) <= 50 else first[:47] + "..."
    return f'cell {index} ({cell.cell_type} "{first}")'


def read_notebook(path: Path):
    """Read a notebook (as format 4), with an error that names the file when it is not one."""
    invalid: dict = {}
    try:
        nb = nbformat.read(str(path), as_version=4, capture_validation_error=invalid)
    except (ValueError, KeyError, TypeError, AttributeError, nbformat.ValidationError) as err:
        # what nbformat raises for a file that is not JSON, or JSON that is not a notebook
        raise ValueError(f"{path} is not a Jupyter notebook ({_first_line(err)})") from None
    if "ValidationError" in invalid:
        raise ValueError(f"{path} is not a valid Jupyter notebook "
                         f"({_first_line(invalid['ValidationError'])})")
    return nb


def _first_line(err: Exception) -> str:
    text = str(getattr(err, "message", "") or err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0][:200]}" if text else type(err).__name__


def write_notebook(path: Path, nb) -> None:
    """Store ``nb`` at ``path`` atomically, formatted as nbformat writes it plus a newline, as
    ``tests/notebook_runner.py`` stores the notebooks (so a diff shows only what changed)."""
    import nn_helpers  # the series' atomic writer; imported here, only the writer needs it

    text = nbformat.writes(nb).encode() + b"\n"
    nn_helpers._write_atomically(Path(path), lambda f: f.write(text))


def resolve_notebooks(names: list[str], notebooks_dir: Path) -> list[Path]:
    """The notebooks named on the command line (``04_backprop``, ``04_backprop.ipynb`` or a
    path), or every notebook in ``notebooks_dir`` when none is named."""
    notebooks_dir = Path(notebooks_dir)
    known = sorted(p for p in notebooks_dir.glob("*.ipynb") if p.is_file())
    if not names:
        if not known:
            raise FileNotFoundError(f"no notebooks (*.ipynb) in {notebooks_dir}; pass the folder "
                                    "that holds 01_data.ipynb ... with --notebooks")
        return known
    paths = []
    for name in names:
        path = Path(name)
        if path.suffix != ".ipynb" or not path.is_file():
            path = notebooks_dir / (path.name if path.suffix == ".ipynb" else f"{name}.ipynb")
        if not path.is_file():
            series = ", ".join(p.stem for p in known) or "no notebooks"
            raise FileNotFoundError(f"no notebook {name!r}: expected a name such as 04_backprop "
                                    f"or a path to an .ipynb file; {notebooks_dir} has {series}")
        paths.append(path)
    return paths

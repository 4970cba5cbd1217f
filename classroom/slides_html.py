"""Offline HTML slides: ``python -m classroom slides --html OUTDIR [NOTEBOOK ...]``.

One self-contained HTML file per notebook, built from the stored cells and outputs (nothing is
executed) and the stored slide types (``classroom.slides``): every ``slide`` or ``subslide``
cell opens a screen, ``fragment`` cells appear one key press at a time, ``skip`` and ``notes``
cells are left out. Figures are embedded as data URIs; the style sheet, the navigation script
and MathJax 3 (the TeX renderer JupyterLab uses, so a formula looks as it does in the notebook)
are inlined; a Content-Security-Policy forbids the page to load anything at all, so it works
offline and cannot reach a CDN by accident.

Markdown is rendered by mistune (the parser nbconvert uses) and code highlighted by Pygments.
Each formula is cut out of the markdown before mistune sees it (so ``_`` and ``*`` inside TeX
are never read as emphasis) and put back as an element of its own, which MathJax typesets when
the page opens.
"""

from __future__ import annotations

import functools
import html
import re
from importlib import resources
from pathlib import Path
from typing import NamedTuple

import mistune
import pygments
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

from . import slides
from .slides import FRAGMENT, LAYOUT, NOTES, SKIP, SLIDE_TYPES, STARTS, Layout

# A code span (left alone), an escaped dollar, then the formulas, as JupyterLab finds them:
# $$...$$, \[...\], \begin{env}...\end{env} (display) and $...$, \(...\) (inline). No formula
# crosses a blank line.
_MATH = re.compile(
    r"(?P<code>(?P<ticks>`+).+?(?P=ticks))"
    r"|(?P<escaped>\\\$)"
    r"|\$\$(?P<display>.+?)\$\$"
    r"|\\\[(?P<bracket>.+?)\\\]"
    r"|(?P<env>\\begin\{(?P<name>[A-Za-z]+\*?)\}.+?\\end\{(?P=name)\})"
    r"|\$(?P<inline>[^$\s](?:[^$]*?[^$\s\\])?)\$"
    r"|\\\((?P<paren>.+?)\\\)",
    re.S)
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_PLACEHOLDER = "@@{}@@"
_MATHJAX = ("static", "mathjax", "es5", "tex-svg-full.js")
_CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
        "script-src 'unsafe-inline'; font-src data:")


class Formula(NamedTuple):
    tex: str          # what MathJax typesets, without the delimiters
    display: bool     # a formula of its own line ($$...$$, \[...\], \begin{env}) or inline
    source: str       # as it stands in the markdown, delimiters included


def split_math(markdown: str) -> tuple[str, list[Formula]]:
    """``markdown`` with every formula replaced by a placeholder, and the formulas in order.
    Code spans are left as they are."""
    formulas: list[Formula] = []

    def cut(match: re.Match) -> str:
        if match.group("code") or match.group("escaped"):
            return match.group(0)
        text = match.group(0)
        if re.search(r"\n\s*\n", text):      # a paragraph break: not one formula
            return text
        for group, display in (("display", True), ("bracket", True), ("env", True),
                               ("inline", False), ("paren", False)):
            if match.group(group) is not None:
                formulas.append(Formula(match.group(group).strip(), display, text))
                return _PLACEHOLDER.format(len(formulas) - 1)
        raise AssertionError(match)  # every alternative is handled above

    return _MATH.sub(cut, markdown), formulas


def render_markdown(source: str) -> str:
    """A markdown cell as HTML, each formula an element that MathJax typesets."""
    text, formulas = split_math(source)
    rendered = _markdown()(text)
    # a $ inside the attribute of raw HTML is not a formula: put it back as it was
    rendered = re.sub(r"<[^>]*@@\d+@@[^>]*>", lambda tag: re.sub(
        r"@@(\d+)@@", lambda m: html.escape(formulas[int(m.group(1))].source),
        tag.group(0)), rendered)

    def put_back(match: re.Match) -> str:
        formula = formulas[int(match.group(1))]
        kind = "display" if formula.display else "inline"
        return f'<span class="math {kind}">{html.escape(formula.tex)}</span>'

    return re.sub(r"@@(\d+)@@", put_back, rendered)


@functools.lru_cache(maxsize=1)
def _markdown():
    """The markdown renderer: raw HTML passes through as in JupyterLab; tables and ~~ on."""
    return mistune.create_markdown(escape=False, plugins=["table", "strikethrough"])


def render_code(cell, layout: Layout = LAYOUT) -> str:
    """A code cell as HTML: its source (folded when ``slides.is_folded``) and its outputs."""
    highlighted = pygments.highlight(cell.source, PythonLexer(), HtmlFormatter(nowrap=True))
    source = f'<div class="highlight"><pre>{highlighted}</pre></div>'
    if slides.is_folded(cell, layout):
        lines = len(cell.source.strip().split("\n"))
        source = (f'<details class="source"><summary>the code that draws this figure ({lines} '
                  f"lines)</summary>{source}</details>")
    else:
        source = f'<div class="source">{source}</div>'
    outputs = "".join(render_output(output, layout) for output in cell.get("outputs", []))
    return source + (f'<div class="outputs">{outputs}</div>' if outputs else "")


def render_output(output, layout: Layout = LAYOUT) -> str:
    """One stored output: a figure as an embedded PNG, anything else as its text (ANSI colour
    codes, which tracebacks carry, removed)."""
    kind = output.get("output_type")
    if kind == "stream":
        css = "output stderr" if output.get("name") == "stderr" else "output"
        return f'<pre class="{css}">{_plain(output.get("text", ""))}</pre>'
    if kind == "error":
        return f'<pre class="output error">{_plain(chr(10).join(output["traceback"]))}</pre>'
    data = output.get("data", {})
    size = slides.figure_size(output, layout)
    if size:
        png = "".join(data["image/png"].split())
        width, height = (f"{value / layout.text_px:.3f}em" for value in size)
        return (f'<img class="figure" alt="a figure of the notebook" style="width:{width};'
                f'height:{height}" src="data:image/png;base64,{png}">')
    if "text/plain" in data:
        return f'<pre class="output">{_plain(data["text/plain"])}</pre>'
    return ""


def _plain(text: str) -> str:
    return html.escape(_ANSI.sub("", text))


def deck_screens(nb, where: str) -> list[list[tuple[object, bool]]]:
    """The notebook's screens as lists of ``(cell, is_fragment)``, from the stored slide types;
    skip and notes cells are left out. An unknown stored type is an error naming the cell."""
    screens: list[list[tuple[object, bool]]] = []
    for index, cell in enumerate(nb.cells):
        slide_type = slides.stored_type(cell) or "-"
        if slide_type not in SLIDE_TYPES:
            raise ValueError(f"{where}, {slides.describe(nb, index)}: slide type "
                             f"{slide_type!r} is not one of {', '.join(SLIDE_TYPES)}; run "
                             "python -m classroom slides --tag")
        if slide_type in (SKIP, NOTES):
            continue
        if slide_type in STARTS or not screens:
            screens.append([])
        screens[-1].append((cell, slide_type == FRAGMENT))
    return screens


def render_deck(nb, where: str, layout: Layout = LAYOUT) -> str:
    """The whole notebook as one self-contained HTML page of slides."""
    title = deck_title(nb) or Path(where).stem
    sections = []
    for number, screen in enumerate(deck_screens(nb, where), start=1):
        cells = "".join(_render_cell(cell, fragment, layout) for cell, fragment in screen)
        sections.append(f'<section class="slide" id="slide-{number}" hidden>'
                        f'<div class="content">{cells}</div></section>')
    return _PAGE.format(
        title=html.escape(title), csp=_CSP, css=_root_css(layout) + _asset("slides.css"),
        sections="\n".join(sections), mathjax=_mathjax(), script=_asset("slides.js"))


def _render_cell(cell, fragment: bool, layout: Layout) -> str:
    body = render_markdown(cell.source) if cell.cell_type == "markdown" else render_code(
        cell, layout)
    kind = "markdown" if cell.cell_type == "markdown" else "code"
    return f'<div class="cell {kind}{" fragment" if fragment else ""}">{body}</div>'


def deck_title(nb) -> str:
    """The notebook's title: the text of its first ``# `` heading, without markup."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            match = re.search(r"^# (.+)$", cell.source, re.M)
            if match:
                return re.sub(r"[`*$\\]", "", match.group(1)).strip()
    return ""


def export(paths: list[Path], out_dir: Path) -> list[tuple[Path, int, int]]:
    """Write ``<notebook>.html`` into ``out_dir`` for every notebook in ``paths``; return
    ``(html path, number of screens, cells whose slide type differs from the rule)`` each."""
    import nn_helpers  # the series' atomic writer

    out_dir = check_out_dir(out_dir)
    written = []
    for path in paths:
        nb = slides.read_notebook(path)
        page = render_deck(nb, path.name).encode()
        target = out_dir / f"{path.stem}.html"
        nn_helpers._write_atomically(target, lambda f, page=page: f.write(page))
        screens = len(deck_screens(nb, path.name))
        written.append((target, screens, len(slides.differences(nb))))
    return written


def check_out_dir(out_dir: Path) -> Path:
    """The output folder, created when missing; its parent must exist (a typo is caught)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--html expects a folder to write the slides into; {out_dir} is a "
                         "file")
    if not out_dir.exists():
        if not out_dir.parent.is_dir():
            raise FileNotFoundError(f"--html {out_dir}: its parent folder {out_dir.parent} does "
                                    "not exist; create it first or choose another folder")
        out_dir.mkdir()
    return out_dir


def _root_css(layout: Layout) -> str:
    """The canvas and font sizes of ``layout`` as CSS variables, which slides.css uses, and a
    printed page of the canvas's size."""
    return (f":root{{--width:{layout.width}px;--height:{layout.height}px;"
            f"--padding:{layout.padding}px;--footer:{layout.footer}px;"
            f"--text:{layout.text_px}px;--line:{layout.line_height};"
            f"--code:{layout.code_px / layout.text_px:.4f}em;"
            f"--code-line:{layout.code_line_height};--gap:{layout.cell_gap}px}}\n"
            f"@page{{size:{layout.width}px {layout.height}px;margin:0}}\n")


def _asset(name: str) -> str:
    return resources.files("classroom").joinpath(name).read_text(encoding="utf-8")


def _mathjax() -> str:
    """MathJax 3's TeX-to-SVG bundle with every TeX extension built in (so it never loads one),
    from the django-static-mathjax package."""
    try:
        bundle = resources.files("mathjax").joinpath(*_MATHJAX)
        script = bundle.read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        raise FileNotFoundError(
            "MathJax is missing: the slides need the package django-static-mathjax (it ships "
            "MathJax 3); run pip install -r requirements.txt") from None
    return script.replace("</script", "<\\/script")


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
{css}</style>
</head>
<body>
<main id="deck" aria-live="polite">
{sections}
<footer><span class="deck-title">{title}</span><span id="counter"></span></footer>
</main>
<script>
window.MathJax = {{startup: {{typeset: false}}, options: {{enableMenu: false}},
  tex: {{packages: {{"[-]": ["autoload", "require"]}}}}, svg: {{fontCache: "local"}}}};
</script>
<script>
{mathjax}
</script>
<script>
{script}
</script>
</body>
</html>
"""

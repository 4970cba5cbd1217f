"""The slide metadata rule (classroom/slides.py), the offline HTML slides (classroom/slides_html.py)
and ``python -m classroom slides``.

The export is checked on every stored notebook with the rule applied to a copy, so these tests
hold whether or not the notebooks have been tagged yet; the last test asserts that the stored
notebooks carry the rule's metadata, which ``python -m classroom slides --tag`` makes true.
"""

from __future__ import annotations

import base64
import collections
import html.parser
import json
import re
import struct
import zlib
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from classroom import slides
from classroom.__main__ import main
from classroom.slides_html import deck_screens, render_deck, render_markdown, split_math

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SETUP = ("import numpy as np\nimport matplotlib.pyplot as plt\n\ntry:\n"
         "    import nn_helpers as nn\nexcept ModuleNotFoundError as err:\n    raise\n\n"
         "nn.use_series_style()\nnn.limit_blas_threads()\nSEED = nn.series_seed()")


def png(width: int, height: int) -> str:
    """A white greyscale PNG of that size, base64-encoded as a notebook stores it."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    rows = b"".join(b"\x00" + b"\xff" * width for _ in range(height))
    header = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
    data = (b"\x89PNG\r\n\x1a\n" + header + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))
    return base64.b64encode(data).decode()


PNG = png(728, 200)          # shown 1092 x 300 px: two fit on a screen, three do not


# ------------------------------------------------------------------------------------------------
# The export of every stored notebook, the rule applied to a copy
# ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """``{name: (tagged notebook, HTML page)}`` for every notebook of the series."""
    source, out = tmp_path_factory.mktemp("tagged"), tmp_path_factory.mktemp("html")
    for path in NOTEBOOKS:
        nb = slides.read_notebook(path)
        slides.apply_rule(nb)
        slides.write_notebook(source / path.name, nb)
    assert main(["slides", "--html", str(out), "--notebooks", str(source)]) == 0
    return {path.stem: (slides.read_notebook(source / path.name),
                        (out / f"{path.stem}.html").read_text(encoding="utf-8"))
            for path in NOTEBOOKS}


class Page(html.parser.HTMLParser):
    """What a test needs to know about an exported page."""

    HIDDEN = {"script", "style", "pre", "code"}

    def __init__(self, text: str):
        super().__init__()
        self.slides, self.links, self.text, self.formulas, self.images = 0, [], [], [], []
        self.scripts, self.styles, self.meta, self._open = [], [], [], []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = attrs.get("class", "").split()
        self._open.append((tag, "math" in classes))
        if tag == "section" and "slide" in classes:
            self.slides += 1
        self.links += [(tag, name, value) for name, value in attrs.items()
                       if name in ("src", "href", "srcset", "data", "poster", "action")]
        if tag == "img":
            self.images.append(attrs["src"])
        if tag == "meta":
            self.meta.append(attrs)
        if "math" in classes:
            self.formulas.append("")

    def handle_endtag(self, tag):
        while self._open and self._open.pop()[0] != tag:
            pass

    def handle_data(self, data):
        tags = {tag for tag, _ in self._open}
        if any(math for _, math in self._open):
            self.formulas[-1] += data
        elif "script" in tags:
            self.scripts.append(data)
        elif "style" in tags:
            self.styles.append(data)
        elif not tags & self.HIDDEN:
            self.text.append(data)


@pytest.fixture(scope="module")
def pages(exported):
    return {name: Page(page) for name, (_, page) in exported.items()}


def test_one_page_per_notebook(exported):
    assert sorted(exported) == [path.stem for path in NOTEBOOKS]


def test_one_slide_per_slide_or_subslide_cell(exported, pages):
    for name, (nb, _) in exported.items():
        starts = sum(slides.stored_type(cell) in slides.STARTS for cell in nb.cells)
        assert pages[name].slides == starts > 10, name


def test_nothing_is_loaded_from_outside_the_page(pages):
    for name, page in pages.items():
        loaded = [(tag, attr, value) for tag, attr, value in page.links
                  if not (tag == "a" and attr == "href") and not value.startswith("data:")]
        assert loaded == [], f"{name} loads {loaded[:3]}"
        for css in page.styles:
            assert not re.search(r"@import|url\(\s*['\"]?(?!data:)", css), name
        policy = [m["content"] for m in page.meta if m.get("http-equiv") ==
                  "Content-Security-Policy"]
        assert policy and "default-src 'none'" in policy[0] and "http" not in policy[0], name


def test_every_formula_is_handed_to_mathjax_whole(exported, pages):
    for name, (nb, _) in exported.items():
        page = pages[name]
        shown = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown"
                          and slides.stored_type(cell) not in ("skip", "notes"))
        assert len(page.formulas) > 10, name
        for tex in page.formulas:
            assert tex and tex in shown, f"{name}: formula {tex!r} is not the notebook's TeX"
        text = "".join(page.text)
        assert "$" not in text, f"{name}: raw TeX left: {text[text.index('$') - 40:][:80]!r}"
        assert not re.search(r"\\[A-Za-z]{2,}", text), f"{name}: a TeX command outside math"
        assert any("tex2svg" in script for script in page.scripts), "MathJax is not inlined"


def test_every_stored_figure_is_on_a_slide(exported, pages):
    for name, (nb, _) in exported.items():
        stored = [figure for cell in nb.cells for figure in slides.figures(cell)]
        shown = [src.removeprefix("data:image/png;base64,") for src in pages[name].images]
        assert collections.Counter("".join(f.split()) for f in stored) == collections.Counter(
            shown), name


def test_checks_are_shown_and_the_setup_is_not(exported):
    for name, (nb, _) in exported.items():
        shown = [cell for screen in deck_screens(nb, name) for cell, _ in screen]
        checks = [cell for cell in nb.cells if "check" in cell.metadata.get("tags", [])]
        assert checks and all(cell in shown for cell in checks), name
        hidden = [cell.source for cell in nb.cells if cell not in shown]
        assert any("nn.use_series_style()" in source for source in hidden), name
        assert "from classroom import checks" in hidden and all(
            slides.is_plumbing(source) or not source.strip() for source in hidden), name


# ------------------------------------------------------------------------------------------------
# The rule, on small notebooks
# ------------------------------------------------------------------------------------------------

def notebook(*cells):
    return new_notebook(cells=list(cells))


def md(source, **metadata):
    return new_markdown_cell(source, metadata=metadata)


def code(source, figure=False, **metadata):
    cell = new_code_cell(source, metadata=metadata)
    if figure:
        cell.outputs = [new_output("display_data", data={"image/png": PNG, "text/plain": "fig"})]
    return cell


def test_headings_exercises_and_plumbing():
    nb = notebook(md("# 01 · Title\n\nWhat this is."), code(SETUP), code("import gzip"),
                  md("## 1 · A section"), code("x = 1\nx"), md("### A subsection"),
                  md("**Exercise 1 · Sizes.** Write `f`.", tags=["exercise"]),
                  code("from classroom import checks"), code("def f():\n    return 1",
                                                             tags=["solution"]),
                  code("checks.check_f(f)", tags=["check"]), md("   "), code(""))
    assert slides.slide_types(nb) == ["slide", "skip", "skip", "slide", "-", "subslide",
                                      "subslide", "skip", "-", "-", "skip", "skip"]


def test_plumbing_is_imports_and_setup_calls_only():
    assert slides.is_plumbing(SETUP)
    assert slides.is_plumbing("from pathlib import Path\nimport math")
    assert not slides.is_plumbing("import math\nprint(math.pi)")
    assert not slides.is_plumbing("nn.use_series_style()\nfig = plt.figure()")
    assert not slides.is_plumbing("SEED = 3")
    assert not slides.is_plumbing("%timeit f()")       # not Python: shown, as in JupyterLab


def test_the_first_cell_shown_opens_a_slide():
    nb = notebook(code(SETUP), md("No title here."), code("x = 1"))
    assert slides.slide_types(nb) == ["skip", "slide", "-"]


def test_fragments_and_notes_are_kept_every_other_type_recomputed():
    nb = notebook(md("# Title"), md("$a = b$", slideshow={"slide_type": "fragment"}),
                  md("Say this.", slideshow={"slide_type": "notes"}),
                  md("## Section", slideshow={"slide_type": "skip"}),
                  code("y = 2", slideshow={"slide_type": "slide"}))
    assert slides.slide_types(nb) == ["slide", "fragment", "notes", "slide", "-"]


def test_a_long_section_continues_where_an_explanation_starts():
    explanation = "Words. " * 60                       # about four lines of text
    steps = [[md(explanation), code("z = 1\n" * 6)] for _ in range(4)]
    nb = notebook(md("## A long section"), *[cell for step in steps for cell in step])
    types = slides.slide_types(nb)
    assert types[0] == "slide" and "subslide" in types
    assert all(types[i] != "subslide" for i, cell in enumerate(nb.cells)
               if cell.cell_type == "code"), "an explanation was cut from its code"
    for screen in slides._screens(types):
        assert slides._height(nb, screen, slides.LAYOUT) <= slides.LAYOUT.budget


def test_a_step_too_tall_for_one_screen_is_cut_before_its_next_code_cell():
    nb = notebook(md("## Figures"), md("Two figures:"), code("draw(1)", figure=True),
                  code("draw(2)", figure=True), code("draw(3)", figure=True))
    assert slides.slide_types(nb) == ["slide", "-", "-", "subslide", "subslide"]


def test_a_fragment_stays_on_the_screen_of_the_cell_before_it():
    nb = notebook(md("## Figures"), code("draw(1)", figure=True), code("draw(2)", figure=True),
                  code("draw(3)", figure=True, slideshow={"slide_type": "fragment"}))
    assert slides.slide_types(nb) == ["slide", "-", "subslide", "fragment"]


def test_long_plotting_code_is_folded_short_code_is_not():
    assert slides.is_folded(code("\n".join(["plt.plot(x)"] * 9), figure=True))
    assert not slides.is_folded(code("nn.show_digits(X)\nplt.show()", figure=True))
    assert not slides.is_folded(code("\n".join(["x = 1"] * 30)))


def test_applying_the_rule_twice_changes_nothing_more():
    nb = notebook(md("# T"), code(SETUP), md("## S"), code("x = 1"))
    assert slides.apply_rule(nb) == 4
    assert slides.apply_rule(nb) == 0 and slides.differences(nb) == []
    assert nb.cells[1].metadata == {"slideshow": {"slide_type": "skip"}}


def test_png_size_reads_the_header():
    assert slides.png_size(PNG) == (728, 200)
    with pytest.raises(ValueError, match="not a PNG"):
        slides.png_size("R0lGODlhAQABAAAAACw=" * 3)


# ------------------------------------------------------------------------------------------------
# Formulas and markdown
# ------------------------------------------------------------------------------------------------

def test_split_math_finds_every_kind_of_formula_and_leaves_code_alone():
    text, found = split_math("Let $x_1$ and `$HOME` cost \\$5, $$\\frac{a}{b}$$, "
                             "\\(y\\), \\[z\\] and \\begin{aligned} a &= b \\end{aligned}.")
    assert [(f.tex, f.display) for f in found] == [
        ("x_1", False), ("\\frac{a}{b}", True), ("y", False), ("z", True),
        ("\\begin{aligned} a &= b \\end{aligned}", True)]
    assert "`$HOME`" in text and "\\$5" in text


def test_a_formula_never_crosses_a_blank_line():
    assert split_math("costs $5\n\nand $6 more")[1] == []


def test_tex_is_never_read_as_markdown():
    rendered = render_markdown("**Bold** $a_1 * b_2$ and *em* $c_3$\n\n| x | $y^2$ |\n| - | - |\n"
                               "| 1 | 2 |")
    assert rendered.count('<span class="math inline">') == 3
    assert "a_1 * b_2" in rendered and "<em>em</em>" in rendered and "<table>" in rendered


def test_a_dollar_in_raw_html_stays_as_written():
    rendered = render_markdown('<span title="$x$">cost</span> and $y$')
    assert 'title="$x$"' in rendered and rendered.count('class="math') == 1


def test_the_deck_shows_fragments_hides_skip_and_notes():
    nb = notebook(md("# T"), code(SETUP, slideshow={"slide_type": "skip"}),
                  md("step 2", slideshow={"slide_type": "fragment"}),
                  md("psst", slideshow={"slide_type": "notes"}),
                  md("## S", slideshow={"slide_type": "slide"}),
                  code("print('<hi>')", slideshow={"slide_type": "-"}))
    nb.cells[0].metadata["slideshow"] = {"slide_type": "slide"}
    nb.cells[5].outputs = [new_output("stream", name="stdout", text="\x1b[31m<hi>\x1b[0m\n")]
    page = render_deck(nb, "t.ipynb")
    assert Page(page).slides == 2
    assert '<div class="cell markdown fragment">' in page and "psst" not in page
    assert "use_series_style" not in page and "&lt;hi&gt;\n" in page and "\x1b" not in page


# ------------------------------------------------------------------------------------------------
# The command line
# ------------------------------------------------------------------------------------------------

@pytest.fixture
def folder(tmp_path):
    """A notebooks folder holding one small untagged notebook."""
    nb = notebook(md("# 09 · Tiny"), code(SETUP), md("## One"), code("x = 1"))
    slides.write_notebook(tmp_path / "09_tiny.ipynb", nb)
    return tmp_path


def test_check_fails_until_tag_has_run(folder, capsys):
    assert main(["slides", "--check", "--notebooks", str(folder)]) == 1
    out, err = capsys.readouterr()
    assert '09_tiny.ipynb, cell 0 (markdown "# 09 · Tiny"): stored nothing, the rule says slide' \
        in out and "4 cells differ" in err
    assert main(["slides", "--tag", "--notebooks", str(folder), "09_tiny"]) == 0
    assert "4 slide types written" in capsys.readouterr().out
    assert main(["slides", "--check", "--notebooks", str(folder)]) == 0
    assert main(["slides", "--tag", "--notebooks", str(folder)]) == 0
    assert "already up to date" in capsys.readouterr().out


def _without_slide_metadata(notebook_json: dict) -> str:
    for cell in notebook_json["cells"]:
        cell["metadata"].pop("slideshow", None)
    return nbformat.writes(nbformat.from_dict(notebook_json)) + "\n"


def test_tag_changes_nothing_but_the_slide_metadata(tmp_path):
    untagged = _without_slide_metadata(json.loads(NOTEBOOKS[3].read_text(encoding="utf-8")))
    path = tmp_path / NOTEBOOKS[3].name
    path.write_text(untagged, encoding="utf-8")
    assert main(["slides", "--tag", str(path)]) == 0
    tagged = path.read_text(encoding="utf-8")
    assert tagged != untagged, "--tag wrote no slide metadata"
    assert _without_slide_metadata(json.loads(tagged)) == untagged


@pytest.mark.parametrize("args, message", [
    (["--check", "no_such_notebook"], "no notebook 'no_such_notebook': expected a name such as "
                                      "04_backprop or a path to an .ipynb file; {folder} has "
                                      "09_tiny"),
    (["--html", "{folder}/missing/out"], "its parent folder {folder}/missing does not exist"),
    (["--html", "{folder}/09_tiny.ipynb"], "--html expects a folder to write the slides into; "
                                           "{folder}/09_tiny.ipynb is a file"),
    (["--check", "{folder}/broken.ipynb"], "{folder}/broken.ipynb is not a Jupyter notebook "
                                           "(NotJSONError"),
])
def test_bad_input_is_named_in_one_line(folder, capsys, args, message):
    (folder / "broken.ipynb").write_text("{not json", encoding="utf-8")
    args = [arg.format(folder=folder) for arg in args]
    assert main(["slides", *args, "--notebooks", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message.format(folder=folder) in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_an_unknown_stored_slide_type_is_named(folder, capsys):
    nb = slides.read_notebook(folder / "09_tiny.ipynb")
    nb.cells[2].metadata["slideshow"] = {"slide_type": "slid"}
    slides.write_notebook(folder / "09_tiny.ipynb", nb)
    assert main(["slides", "--html", str(folder / "out"), "--notebooks", str(folder)]) == 2
    assert ("09_tiny.ipynb, cell 2 (markdown \"## One\"): slide type 'slid' is not one of slide, "
            "subslide") in capsys.readouterr().err


@pytest.mark.parametrize("args", [[], ["--tag", "--check"]])
def test_exactly_one_mode_is_asked_for(args, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["slides", *args])
    assert exit_.value.code == 2 and "--tag" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------
# Last: the stored notebooks carry the rule's metadata (python -m classroom slides --tag)
# ------------------------------------------------------------------------------------------------

def test_the_stored_notebooks_carry_the_rules_slide_types():
    stale = {path.name: len(slides.differences(slides.read_notebook(path))) for path in NOTEBOOKS}
    assert not any(stale.values()), (
        f"cells whose slide type differs from the rule: {stale}; run python -m classroom slides "
        "--tag (after the notebooks' contents are final) and commit the notebooks")

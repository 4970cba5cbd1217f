"""The slide metadata rule (classroom/slides.py) and ``python -m classroom slides``.

The last test asserts that the stored notebooks carry the rule's metadata, which
``python -m classroom slides --tag`` makes true.
"""

from __future__ import annotations

import base64
import json
import struct
import zlib
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from classroom import slides
from classroom.__main__ import main

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
        assert slides._height(nb, screen, slides.LAYOUT) <= slides.LAYOUT.content_height


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


def test_tag_changes_nothing_but_the_slide_metadata(tmp_path):
    original = NOTEBOOKS[3].read_text(encoding="utf-8")
    (tmp_path / NOTEBOOKS[3].name).write_text(original, encoding="utf-8")
    assert main(["slides", "--tag", str(tmp_path / NOTEBOOKS[3].name)]) == 0
    tagged = json.loads((tmp_path / NOTEBOOKS[3].name).read_text(encoding="utf-8"))
    for cell in tagged["cells"]:
        cell["metadata"].pop("slideshow")
    assert nbformat.writes(nbformat.from_dict(tagged)) + "\n" == original


@pytest.mark.parametrize("args, message", [
    (["--check", "no_such_notebook"], "no notebook 'no_such_notebook': expected a name such as "
                                      "04_backprop or a path to an .ipynb file; {folder} has "
                                      "09_tiny"),
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

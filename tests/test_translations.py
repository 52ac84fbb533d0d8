"""Translations stay in step with their sources: hashes, code cells, links, badges."""

import shutil

import nbformat
import pytest

from helpers.env import ROOT
from tools import translations

NB = "notebooks/00-should-you-fine-tune.ipynb"


def test_vietnamese_translations_are_up_to_date():
    assert translations.metadata("vi"), "translations/vi has no .co-op-translator.json"
    assert translations.check("vi") == []


@pytest.fixture
def course(tmp_path):
    """A copy of the translated sources and of translations/vi, to break."""
    for name in ["README.md", *(p.relative_to(ROOT).as_posix() for p in sorted((ROOT / "notebooks").glob("*.ipynb")))]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "translations" / "vi", tmp_path / "translations" / "vi")
    assert translations.check("vi", tmp_path) == []
    return tmp_path


def test_an_edited_source_makes_its_translation_stale(course):
    with (course / "README.md").open("a") as f:
        f.write("\nOne more line.\n")
    [problem] = translations.check("vi", course)
    assert "translations/vi/README.md is stale" in problem and "stamp vi README.md" in problem
    translations.stamp("vi", "README.md", course)
    assert translations.check("vi", course) == []


def test_a_changed_code_cell_or_an_untranslated_cell_is_named(course):
    path = course / "translations" / "vi" / NB
    nb = nbformat.read(path, as_version=4)
    source = nbformat.read(course / NB, as_version=4)
    nb.cells[3].source = nb.cells[3].source.replace("k: int = 4", "k: int = 5")
    nb.cells[2].source = source.cells[2].source
    nbformat.write(nb, path)
    problems = translations.check("vi", course)
    assert any("code cell decide-03 differs" in p for p in problems)
    assert any("markdown cell decide-02 is not translated" in p for p in problems)


def test_badge_links_and_code_blocks_must_match(course):
    path = course / "translations" / "vi" / "README.md"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("../../notebooks/01-openai.ipynb", "../../notebooks/99-missing.ipynb")
                    + "\n```bash\nmake everything\n```\n", encoding="utf-8")
    nb_path = course / "translations" / "vi" / NB
    nb = nbformat.read(nb_path, as_version=4)
    nb.cells[0].source = nb.cells[0].source.replace("translations/vi/notebooks", "notebooks")
    nbformat.write(nb, nb_path)
    problems = translations.check("vi", course)
    assert any("link to ../../notebooks/99-missing.ipynb" in p for p in problems)
    assert any("code block not in README.md: ```bash" in p for p in problems)
    assert any("Colab badge does not open translations/vi/" + NB in p for p in problems)


def test_a_file_without_an_entry_is_reported(course):
    (course / "translations" / "vi" / "notes.md").write_text("Ghi chú\n", encoding="utf-8")
    [problem] = translations.check("vi", course)
    assert "notes.md: no entry" in problem

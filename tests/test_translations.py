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
    path.write_text(text.replace("](notebooks/01-openai.ipynb)", "](notebooks/99-missing.ipynb)")
                    + "\n```bash\nmake everything\n```\n", encoding="utf-8")
    nb_path = course / "translations" / "vi" / NB
    nb = nbformat.read(nb_path, as_version=4)
    nb.cells[0].source = nb.cells[0].source.replace("translations/vi/notebooks", "notebooks")
    nbformat.write(nb, nb_path)
    problems = translations.check("vi", course)
    assert any("link to notebooks/99-missing.ipynb" in p for p in problems)
    assert any("code block not in README.md: ```bash" in p for p in problems)
    assert any("Colab badge does not open translations/vi/" + NB in p for p in problems)


def test_a_file_without_an_entry_is_reported(course):
    (course / "translations" / "vi" / "notes.md").write_text("Ghi chú\n", encoding="utf-8")
    [problem] = translations.check("vi", course)
    assert "notes.md: no entry" in problem


def test_what_running_a_translated_notebook_leaves_is_not_a_translation(course):
    """Run in place, a translated notebook writes ../runs/ beside it and Jupyter saves checkpoints."""
    for made in ("runs/03-huggingface-trl/metrics.json", "notebooks/.ipynb_checkpoints/03-huggingface-trl-checkpoint.ipynb"):
        (course / "translations" / "vi" / made).parent.mkdir(parents=True)
        (course / "translations" / "vi" / made).write_text("{}")
    assert translations.check("vi", course) == []


def test_a_source_without_a_translation_is_missing(course):
    shutil.copy(course / NB, course / "notebooks" / "07-new.ipynb")
    [problem] = translations.check("vi", course)
    assert "translations/vi/notebooks/07-new.ipynb: missing" in problem
    assert "sync vi notebooks/07-new.ipynb" in problem and "stamp vi notebooks/07-new.ipynb" in problem
    (course / "translations" / "vi" / NB).unlink()  # a translation lost
    assert any(p.endswith(f"translations/vi/{NB}: translation missing") for p in translations.check("vi", course))


@pytest.mark.parametrize("name", translations.sources())
def test_every_source_is_translated_and_goes_stale_when_it_changes(course, name):
    """The deliberate change the check must catch, for the front page and each notebook."""
    assert name in translations.metadata("vi", course)
    path = course / name
    if path.suffix == ".ipynb":
        nb = nbformat.read(path, as_version=4)
        nb.cells[-1].source += "\n\nOne more sentence."
        nbformat.write(nb, path)
    else:
        path.write_text(path.read_text(encoding="utf-8") + "\nOne more line.\n", encoding="utf-8")
    [problem] = translations.check("vi", course)
    assert f"translations/vi/{name} is stale: {name} changed" in problem


def test_sync_copies_code_keeps_the_translation_and_fixes_badge_and_links(course):
    source_path, translated = course / NB, course / "translations" / "vi" / NB
    source = nbformat.read(source_path, as_version=4)
    params = next(c for c in source.cells if "parameters" in c.metadata.get("tags", []))
    params.source = params.source.replace("k: int = 4", "k: int = 6")
    words = next(c for c in source.cells[1:] if c.cell_type == "markdown")
    words.source += "\n\nSee [the generator](../data/general/generate.py) and [notebook 03](03-huggingface-trl.ipynb)."
    (course / "data" / "general").mkdir(parents=True)
    (course / "data" / "general" / "generate.py").write_text("")
    nbformat.write(source, source_path)
    before = {c.id: c.source for c in nbformat.read(translated, as_version=4).cells if c.cell_type == "markdown"}
    translated.unlink()  # start afresh: the first markdown cell's badge and link come from the source
    translations.sync("vi", NB, course)
    fresh = nbformat.read(translated, as_version=4)
    assert "/blob/main/translations/vi/" + NB in fresh.cells[0].source
    linked = next(c for c in fresh.cells if c.id == words.id).source
    assert "](../../../data/general/generate.py)" in linked and "](03-huggingface-trl.ipynb)" in linked
    nb = nbformat.read(translated, as_version=4)  # now as a translator leaves it: markdown in Vietnamese
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = before[cell.id]
    nb.cells[3].source = "k: int = 4  # an out-of-date code cell"
    nbformat.write(nb, translated)
    translations.sync("vi", NB, course)
    synced = nbformat.read(translated, as_version=4)
    assert [c.source for c in synced.cells if c.cell_type == "code"] == [
        c.source for c in source.cells if c.cell_type == "code"]
    assert {c.id: c.source for c in synced.cells if c.cell_type == "markdown"} == before  # kept
    [problem] = translations.check("vi", course)  # consistent, and stale until stamped
    assert "is stale" in problem
    assert translations.changed_since_stamp("vi", NB, course) == [words.id]  # its English grew a sentence
    with pytest.raises(translations.StaleCells, match=f"markdown cells {words.id} changed"):
        translations.stamp("vi", NB, course)  # the old translation of a changed cell does not pass
    cell = next(c for c in synced.cells if c.id == words.id)
    cell.source += "\n\nXem [trình sinh dữ liệu](../../../data/general/generate.py) và [notebook 03](03-huggingface-trl.ipynb)."
    nbformat.write(synced, translated)
    assert translations.changed_since_stamp("vi", NB, course) == []
    translations.stamp("vi", NB, course)
    assert translations.check("vi", course) == []


def test_a_link_to_an_english_notebook_goes_to_its_translation_but_the_original_stays(course):
    path = course / "translations" / "vi" / NB
    nb = nbformat.read(path, as_version=4)
    nb.cells[2].source += "\n\n[03](../../../notebooks/03-huggingface-trl.ipynb), [gốc](../../../" + NB + ")"
    nbformat.write(nb, path)
    translations.sync("vi", NB, course)
    text = nbformat.read(path, as_version=4).cells[2].source
    assert "[03](03-huggingface-trl.ipynb)" in text and f"[gốc](../../../{NB})" in text


def test_the_front_page_opens_the_translated_notebooks():
    text = (ROOT / "translations" / "vi" / "README.md").read_text(encoding="utf-8")
    for name in translations.sources()[1:]:
        own = name.removeprefix("notebooks/")
        assert f"](notebooks/{own})" in text, own  # the link, relative to translations/vi/
        assert f"/blob/main/translations/vi/notebooks/{own})" in text, own  # its Colab badge
    assert "](../../notebooks/" not in text  # no notebook link leads back to the English
    assert "](GLOSSARY.md)" in text


def test_a_translated_cell_must_state_the_source_cells_numbers(course):
    """Numbers a translator adds, drops or rewrites (a stale figure, or 57,5 for 57.5) are named."""
    path = course / "translations" / "vi" / NB
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "markdown" and "`k`" in c.source)
    cell.source += " Khoảng 42 ví dụ."
    other = next(c for c in nb.cells[1:] if c.cell_type == "markdown" and c.id != cell.id
                 and translations._figures(c.source))
    number = sorted(translations._figures(other.source))[0]
    other.source = other.source.replace(number, "N")  # a figure left out
    nbformat.write(nb, path)
    problems = translations.check("vi", course)
    assert any(f"markdown cell {cell.id} does not carry the source's numbers; adds 42" in p for p in problems)
    assert any(f"markdown cell {other.id} does not carry the source's numbers" in p and f"drops {number}" in p
               for p in problems), (number, problems)
    assert len(problems) == 2, problems
    readme = course / "translations" / "vi" / "README.md"
    readme.write_text(readme.read_text(encoding="utf-8").replace("57.5%", "57.4%"), encoding="utf-8")  # gone stale
    assert any("README.md: does not carry the source's numbers; adds 57.4" in p and "drops 57.5" in p
               for p in translations.check("vi", course))

"""Translations under translations/<lang>/, in co-op-translator's layout: each language folder has a
.co-op-translator.json keyed by source path, holding the MD5 of the source each file was translated from.

    python -m tools.translations check vi              # stale or broken translations, exit 1 if any
    python -m tools.translations sync vi notebooks/03-huggingface-trl.ipynb
                                                       # code cells, cell metadata, badge and links from the source
    python -m tools.translations stamp vi README.md    # record that README.md's translation is up to date

A new notebook's translation starts as `sync` makes it: a copy of the source with the badge and links
pointing where they should from translations/<lang>/. Translate its markdown cells, `sync` again
whenever the source's code changes (translated markdown is kept), then `stamp`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

import nbformat

from helpers.env import ROOT
from tools.nbcheck import CODE_OR_LINK

METADATA = ".co-op-translator.json"
GLOSSARY = "GLOSSARY.md"  # each language's terms; it translates no source
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
LINK = re.compile(r"\]\(([^)\s]+)\)")
DIGITS = re.compile(r"\d+(?:[.,]\d+)*")


def file_md5(path: Path) -> str:
    """MD5 of a file's bytes, as co-op-translator computes it: any change makes a translation stale."""
    return hashlib.md5(path.read_bytes()).hexdigest()


def metadata(lang: str, root: Path = ROOT) -> dict:
    """The language's metadata: source path -> {original_hash, translation_date, source_file, language_code}."""
    path = root / "translations" / lang / METADATA
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


class StaleCells(ValueError):
    """A notebook's markdown changed in the source since the last stamp, and its translation did not."""


def _markdown_hashes(path: Path) -> dict[str, str]:
    """MD5 of each markdown cell's text, by cell id."""
    return {c.id: hashlib.md5(c.source.encode()).hexdigest()
            for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown"}


def changed_since_stamp(lang: str, source: str, root: Path = ROOT) -> list[str]:
    """Markdown cells of a notebook whose English changed since the last stamp while their translation
    did not: what is left to translate (sync keeps the old translation of a changed cell)."""
    recorded = metadata(lang, root).get(source, {}).get("markdown_cells")
    if not recorded:
        return []
    now_source = _markdown_hashes(root / source)
    now_translation = _markdown_hashes(root / "translations" / lang / source)
    return [cid for cid, digest in now_source.items()
            if cid in recorded["source"] and recorded["source"][cid] != digest
            and recorded["translation"].get(cid) == now_translation.get(cid)]


def stamp(lang: str, source: str, root: Path = ROOT, force: bool = False) -> dict:
    """Record the source's current hash for its translation; returns the entry. For a notebook it also
    records each markdown cell's hash on both sides, and refuses (StaleCells) while a cell whose English
    changed since the last stamp keeps its old translation, unless `force` (the change needs none)."""
    entry = {"original_hash": file_md5(root / source),
             "translation_date": datetime.now(UTC).isoformat(timespec="seconds"),
             "source_file": source, "language_code": lang}
    if source.endswith(".ipynb"):
        stale = changed_since_stamp(lang, source, root)
        if stale and not force:
            raise StaleCells(f"translations/{lang}/{source}: markdown cells {', '.join(stale)} changed in {source} "
                             "since the last stamp, but their translation did not: translate them, then stamp "
                             "again (--force if the change needs no new translation)")
        entry["markdown_cells"] = {"source": _markdown_hashes(root / source),
                                   "translation": _markdown_hashes(root / "translations" / lang / source)}
    data = metadata(lang, root) | {source: entry}
    (root / "translations" / lang / METADATA).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n",
                                                          encoding="utf-8")
    return entry


def _elsewhere(target: str) -> bool:
    """A link target outside the course's files: a URL (http:, mailto:...) or an anchor in the same page."""
    return re.match(r"[a-z]+:|#", target) is not None


def _markdown_problems(translated: Path, source: Path, text: str, source_text: str) -> list[str]:
    """Code blocks must be the source's (`source_text`: its text, or a notebook's markdown), and relative
    links must lead to files that exist."""
    problems = [f"{translated}: code block not in {source.name}: {block.splitlines()[0]}..."
                for block in FENCE.findall(text) if block not in source_text]
    for target in LINK.findall(text):
        if not _elsewhere(target) and not (translated.parent / target.split("#")[0]).exists():
            problems.append(f"{translated}: link to {target}, which does not exist")
    return problems


def _figures(markdown: str) -> set[str]:
    """The numbers a markdown cell's prose states (outside code and link targets), notebook numbers
    aside: a translation says the same figures as its source, written the same way."""
    return set(DIGITS.findall(CODE_OR_LINK.sub(" ", markdown))) - {f"{n:02d}" for n in range(10)}


def _number_problems(translated: Path, where: str, text: str, source_text: str) -> list[str]:
    """The numbers a translation adds or drops against its source (a notebook cell, or a whole page)."""
    ours, theirs = _figures(text), _figures(source_text)
    if ours == theirs:
        return []
    return [f"{translated}:{where} does not carry the source's numbers"
            + "".join(f"; {verb} {', '.join(sorted(numbers))}" for verb, numbers in (("adds", ours - theirs),
                                                                                    ("drops", theirs - ours)) if numbers)]


def _notebook_problems(translated: Path, source: Path, own_path: str) -> list[str]:
    """Same cells in the same order; code cells (source and outputs) exactly the source's; every
    markdown cell translated; the Colab badge opens the translated notebook itself."""
    ours, theirs = nbformat.read(translated, as_version=4), nbformat.read(source, as_version=4)
    if [(c.id, c.cell_type) for c in ours.cells] != [(c.id, c.cell_type) for c in theirs.cells]:
        return [f"{translated}: cells differ from {source} (ids or types); rebuild it from the source"]
    problems = [f"{translated}: {a.cell_type} cell {a.id} " + ("differs from the source's" if a.cell_type == "code"
                                                               else "is not translated")
                for a, b in zip(ours.cells, theirs.cells, strict=False) if (a == b) == (a.cell_type == "markdown")]
    if "colab.research.google.com" in ours.cells[0].source and f"/blob/main/{own_path}" not in ours.cells[0].source:
        problems.append(f"{translated}: the Colab badge does not open {own_path}")
    prose = "\n\n".join(c.source for c in theirs.cells if c.cell_type == "markdown")
    for a, b in zip(ours.cells, theirs.cells, strict=True):
        if a.cell_type == "markdown":
            problems += _number_problems(translated, f" markdown cell {a.id}", a.source, b.source)
            problems += _markdown_problems(translated, source, a.source, prose)
    return problems


def sources(root: Path = ROOT) -> list[str]:
    """What every language translates: the front page and every notebook."""
    return ["README.md", *(p.relative_to(root).as_posix() for p in sorted((root / "notebooks").glob("*.ipynb")))]


def _made_by_a_run(relative: Path) -> bool:
    """What running a translated notebook in place leaves beside it (its ../runs/ folder, Jupyter's
    .ipynb_checkpoints): not a translation, and ignored by git like the English notebooks' own."""
    return any(part == "runs" or part.startswith(".") for part in relative.parts[:-1])


def check(lang: str, root: Path = ROOT) -> list[str]:
    """Every problem of a language's translations: missing, untracked, orphaned, stale or inconsistent files."""
    folder = root / "translations" / lang
    entries = metadata(lang, root)
    problems = [f"{folder / name}: missing, {name} has no translation; "
                + (f"run `python -m tools.translations sync {lang} {name}`, translate its markdown, then "
                   if name.endswith(".ipynb") else "translate it, then ")
                + f"run `python -m tools.translations stamp {lang} {name}`"
                for name in sources(root) if name not in entries and not (folder / name).exists()]
    problems += [f"{f}: no entry in {folder / METADATA}; translate it, then run "
                 f"`python -m tools.translations stamp {lang} {f.relative_to(folder).as_posix()}`"
                 for f in sorted(folder.rglob("*")) if f.is_file() and f.name not in (METADATA, GLOSSARY)
                 and f.relative_to(folder).as_posix() not in entries and not _made_by_a_run(f.relative_to(folder))]
    for name, entry in entries.items():
        source, translated = root / name, folder / name
        if not source.exists() or not translated.exists():
            problems.append(f"{translated}: {'source' if translated.exists() else 'translation'} missing")
            continue
        if entry["original_hash"] != file_md5(source):
            problems.append(f"{translated} is stale: {name} changed since it was translated; update the "
                            f"translation, then run `python -m tools.translations stamp {lang} {name}`")
        if translated.suffix == ".ipynb":
            problems += _notebook_problems(translated, source, translated.relative_to(root).as_posix())
        else:
            text, original = translated.read_text(encoding="utf-8"), source.read_text(encoding="utf-8")
            problems += _markdown_problems(translated, source, text, original)
            problems += _number_problems(translated, "", text, original)
    return problems


def relink(text: str, translated: Path, source: Path, root: Path = ROOT) -> str:
    """Relative links rewritten to work from the translation's folder: a link into the English files
    goes to their translation where one exists (another notebook, the front page), else to the file
    itself; a link to the translation's own source stays (it names the original)."""
    folder = (root / "translations" / translated.relative_to(root / "translations").parts[0]).resolve()

    def fix(match: re.Match) -> str:
        target = match.group(1)
        path, _, anchor = target.partition("#")
        if _elsewhere(target):
            return match.group(0)
        here = (translated.parent / path).resolve()
        original = here if here.exists() else (source.parent / path).resolve()
        if not original.exists():
            return match.group(0)
        if not original.is_relative_to(folder) and original != source.resolve():
            mirrored = folder / original.relative_to(root.resolve())
            original = mirrored if mirrored.exists() else original
        if original == here:
            return match.group(0)
        relative = Path(os.path.relpath(original, translated.parent.resolve())).as_posix()
        return f"]({relative}{'#' + anchor if anchor else ''})"
    return LINK.sub(fix, text)


def sync(lang: str, source_name: str, root: Path = ROOT) -> Path:
    """Bring a notebook's translation in step with its source: the source's cells in its order, code
    cells (and every cell's metadata) copied, translated markdown kept by cell id (the source's text
    where there is none yet), the Colab badge opening the translation, relative links working from
    its folder. Returns the translation's path; nothing is stamped."""
    source = root / source_name
    translated = root / "translations" / lang / source_name
    theirs = nbformat.read(source, as_version=4)
    previous = nbformat.read(translated, as_version=4) if translated.exists() else nbformat.v4.new_notebook()
    ours = {c.id: c for c in previous.cells}
    theirs.metadata = previous.metadata | theirs.metadata | {"language": lang}
    own_path = translated.relative_to(root).as_posix()
    for i, cell in enumerate(theirs.cells):
        if cell.cell_type == "markdown":
            text = ours[cell.id].source if cell.id in ours and ours[cell.id].cell_type == "markdown" else cell.source
            if i == 0:
                text = re.sub(r"(colab\.research\.google\.com/github/[^)\s]+?/blob/main/)[^)\s]+\.ipynb",
                              rf"\g<1>{own_path}", text)
            cell.source = relink(text, translated, source, root)
    translated.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(theirs, translated)
    return translated


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check or stamp the course's translations.")
    parser.add_argument("action", choices=["check", "stamp", "sync"])
    parser.add_argument("lang")
    parser.add_argument("sources", nargs="*", help="stamp, sync: source paths, relative to the course folder")
    parser.add_argument("--force", action="store_true", help="stamp: although changed English cells kept their translation")
    args = parser.parse_args(argv)
    if args.action == "stamp":
        try:
            for source in args.sources:
                print(stamp(args.lang, source, force=args.force))
        except StaleCells as error:
            print(error, file=sys.stderr)
            return 1
        return 0
    if args.action == "sync":
        for source in args.sources:
            print(f"synced {sync(args.lang, source).relative_to(ROOT)} with {source}")
            stale = changed_since_stamp(args.lang, source)
            if stale:
                print(f"  changed in English since the last stamp, translate again: {', '.join(stale)}")
        return 0
    problems = check(args.lang)
    print("\n".join(problems) or f"translations/{args.lang}: up to date")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

"""The README's layout section names every module of the code folders, under its folder's entry, and
names no file that is not there: a newcomer can trust it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[1]
FOLDERS = ("app/", "workers/", "cli/", "tandem/domain/", "tandem/infra/")


def entries() -> dict[str, str]:
    text = (ROOT / "README.md").read_text()
    layout = text[text.index("\n## Layout\n") :]
    layout = layout[: layout.index("\n## ", 1)] if "\n## " in layout[1:] else layout
    found = {}
    for entry in re.split(r"\n- ", layout)[1:]:
        folder = re.match(r"`([^`]+)`", entry)
        if folder and folder[1] in FOLDERS:
            found[folder[1]] = entry
    return found


def modules(folder: str) -> set[str]:
    path = ROOT / folder
    return {
        f"{child.name}/" if child.is_dir() else child.name
        for child in path.iterdir()
        if (child.suffix == ".py" and child.name != "__init__.py")
        or (child.is_dir() and (child / "__init__.py").exists())
    }


def test_every_module_is_named_under_its_folder():
    found = entries()
    assert set(found) == set(FOLDERS)
    missing = {folder: sorted(m for m in modules(folder) if f"`{m}`" not in found[folder]) for folder in FOLDERS}
    assert {folder: names for folder, names in missing.items() if names} == {}


def test_every_file_the_layout_names_exists():
    for folder, entry in entries().items():
        for name in re.findall(r"`([\w/]+(?:\.py|/))`", entry):
            here = [ROOT / name, ROOT / folder / name, *(ROOT / folder).rglob(name.rstrip("/"))]
            assert any(path.exists() for path in here), f"{folder}: {name}"

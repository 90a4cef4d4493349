"""The repository explains itself: no file cites a document that lives outside it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SELF = Path(__file__).resolve().relative_to(ROOT).as_posix()
# Built from parts, so this file does not match what it looks for.
BRIEF, GUIDE, SECTION = "DES" + "IGN", "STY" + "LE", " §"
FORMS = (
    BRIEF + SECTION,
    GUIDE + SECTION,
    BRIEF + r"\.md",
    "sha" + "red/",
    "refer" + r"ence/[\w.-]+\.md",
)
OUTSIDE = re.compile("|".join(FORMS))


def project_files() -> list[str]:
    """Tracked files and new files not ignored, relative to the repository root."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    return [name for name in listed if name != SELF and not name.startswith("docs/")]


def citations(name: str, text: str) -> list[str]:
    return [
        f"{name}:{number}: {line.strip()}"
        for number, line in enumerate(text.splitlines(), 1)
        if OUTSIDE.search(line)
    ]


def test_no_file_cites_an_outside_document() -> None:
    """No file outside `docs/` names the design brief, the style guide or the reference notes."""
    found: list[str] = []
    for name in project_files():
        path = ROOT / name
        if path.is_file():
            found += citations(name, path.read_bytes().decode("utf-8", errors="ignore"))
    assert found == []


def test_the_pattern_catches_each_form() -> None:
    """Each citation form the check guards against is matched; ordinary text is not."""
    cited = [f"see {BRIEF}{SECTION}5", f"{GUIDE}{SECTION}1", f"{BRIEF}.md", "../sha" + "red/x"]
    cited.append("refer" + "ence/peers.md")
    assert all(OUTSIDE.search(line) for line in cited)
    assert citations("a.py", "the design of the run\nreference counting\n") == []

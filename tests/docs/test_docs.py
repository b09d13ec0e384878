"""The documentation: figures generated from the result files, and every relative link resolves."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.bench import summary

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^ {0,3}(```|~~~)")
HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$")


def markdown_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.md"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout
        return sorted(ROOT / line for line in out.splitlines() if (ROOT / line).is_file())
    except (OSError, subprocess.CalledProcessError):  # not a git checkout
        return sorted(p for p in ROOT.rglob("*.md") if not any(part.startswith(".") or part in ("build", "runs") for part in p.parts))


def prose(text: str) -> list[str]:
    """The lines outside fenced code blocks, inline code spans removed."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append(re.sub(r"`[^`]*`", "", line))
    return lines


def anchors(path: Path) -> set[str]:
    """GitHub's heading ids: lower case, punctuation dropped, spaces to hyphens, repeats numbered."""
    ids, counts, fenced = set(), {}, False
    for line in path.read_text().splitlines() if path.suffix == ".md" else []:
        if FENCE.match(line):
            fenced = not fenced
            continue
        if fenced or not (match := HEADING.match(line)):
            continue
        slug = "".join(c for c in match.group(1).lower() if c.isalnum() or c in " -_").replace(" ", "-")
        ids.add(f"{slug}-{counts[slug]}" if slug in counts else slug)
        counts[slug] = counts.get(slug, 0) + 1
    return ids


def links() -> list[tuple[str, str]]:
    found = []
    for md in markdown_files():
        for line in prose(md.read_text()):
            found += [(md.relative_to(ROOT).as_posix(), target) for target in LINK.findall(line)]
    return found


def broken(source: str, target: str) -> str | None:
    if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
        return None
    file_part, _, fragment = target.partition("#")
    path = (ROOT / source).parent / file_part if file_part else ROOT / source
    path = path.resolve()
    if ROOT not in path.parents and path != ROOT:
        return "points outside the repository"
    if not path.exists():
        return "no such file"
    if fragment and path.suffix == ".md" and fragment not in anchors(path):
        return f"no heading #{fragment} in {path.relative_to(ROOT).as_posix()}"
    return None


def test_readme_figures_are_generated_from_the_result_files():
    text = summary.README.read_text()
    assert summary.updated(text) == text, "README.md figures are stale: run python3 -m tests.bench.summary"


def test_every_relative_link_resolves():
    problems = [f"{source}: ({target}) {why}" for source, target in links() if (why := broken(source, target))]
    assert not problems, "\n".join(problems)


def test_the_link_checker_finds_a_broken_link():
    assert broken("README.md", "function/README.md#limits-memory-and-cpu") is None
    assert broken("README.md", "function/README.md#no-such-heading")
    assert broken("README.md", "no/such/file.md")
    assert broken("function/README.md", "../../outside.md")


@pytest.mark.parametrize("heading, slug", [("## Explanations: `?explain=1`", "explanations-explain1"),
                                           ("## Limits: memory and CPU", "limits-memory-and-cpu"),
                                           ("### Memory per format", "memory-per-format")])
def test_anchors_follow_github(tmp_path, heading, slug):
    doc = tmp_path / "doc.md"
    doc.write_text(f"# Title\n\n```\n# not a heading\n```\n\n{heading}\n")
    assert slug in anchors(doc) and "not-a-heading" not in anchors(doc)

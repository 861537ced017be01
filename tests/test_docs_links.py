"""Every relative link in the README and the docs points at something that exists.

The README, ``docs/*.md`` and ``results/README.md`` link each other, the committed results
and the scripts by relative path, often to a heading (``findings.md#calling-conventions``).
A page that moves or a heading that is renamed breaks such links silently; this finds them.
Links with a scheme (``https:``, ``mailto:``) are not followed: no network in a test.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]

# The pages checked: the README, every page under docs/, and the results folder's README.
PAGES = sorted([ROOT / "README.md", ROOT / "results" / "README.md", *ROOT.glob("docs/*.md")])

# A fenced code block starts and ends with a line of three or more backticks or tildes.
FENCE = re.compile(r"^\s*(```|~~~)")
# An inline code span: backticks, anything, the same number of backticks.
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
# The target of an inline link or image, `](target)` or `](target "title")`.
LINK_TARGET = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def prose_lines(text: str) -> list[tuple[int, str]]:
    """The lines outside fenced and indented code blocks, numbered from 1.

    Args:
        text: a markdown page.

    Returns:
        (line number, line) for every line that is neither in a code block nor its fence.
    """
    lines = []
    in_fence = False
    for number, line in enumerate(text.splitlines(), start=1):
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        if not in_fence and not line.startswith("    "):
            lines.append((number, line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens.

    Args:
        heading: the heading's text, without the leading ``#``s.

    Returns:
        The fragment a link uses to reach that heading (before de-duplication).
    """
    kept = [
        char
        for char in heading.lower()
        if char.isalnum() or char in " -_" or unicodedata.category(char).startswith("M")
    ]
    return "".join(kept).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every anchor a page's headings give, with GitHub's ``-1``, ``-2`` for repeats.

    Args:
        page: a markdown file.

    Returns:
        The set of fragments that reach a heading of the page.
    """
    seen: dict[str, int] = {}
    found = set()
    for _, line in prose_lines(page.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    """The relative links of a page that do not resolve, one line each.

    A link resolves when its path (relative to the page) exists inside ``root``, and, when
    it names a heading (``#fragment``) of a markdown file, that file has the heading.

    Args:
        page: the markdown file to check.
        root: the repository root; a link leading outside it is broken (a clone lacks it).

    Returns:
        ``page:line: target (why)`` for each broken link, in page order.
    """
    problems = []
    for number, line in prose_lines(page.read_text(encoding="utf-8")):
        for target in LINK_TARGET.findall(CODE_SPAN.sub("", line)):
            if SCHEME.match(target):
                continue
            path_part, _, fragment = target.partition("#")
            resolved = (page.parent / unquote(path_part)).resolve() if path_part else page
            where = f"{page.relative_to(root)}:{number}: {target}"
            if not resolved.is_relative_to(root):
                problems.append(f"{where} (outside the repository)")
            elif not resolved.exists():
                problems.append(f"{where} (no such file)")
            elif fragment and resolved.suffix == ".md" and fragment not in anchors(resolved):
                problems.append(f"{where} (no such heading)")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    assert page.exists()
    assert broken_links(page) == []


def test_the_docs_index_lists_every_page() -> None:
    index = (ROOT / "docs" / "README.md").read_text(encoding="utf-8")
    for page in ROOT.glob("docs/*.md"):
        if page.name != "README.md":
            assert f"]({page.name})" in index, page.name


def test_slug_follows_github() -> None:
    assert slug("`linfit check`") == "linfit-check"
    assert slug("A 2-core CPU (EPYC VM, TF 2.21)") == "a-2-core-cpu-epyc-vm-tf-221"
    assert slug("Against the goal: best TF within 1.5x") == "against-the-goal-best-tf-within-15x"
    assert slug("A/B pairs files") == "ab-pairs-files"


def test_a_broken_link_is_found(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other page\n\n## Twice\n\n## Twice\n\n## `a b`\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n"
        "[ok](other.md) [ok](other.md#other-page) [ok](other.md#twice-1) [ok](other.md#a-b)\n"
        "[gone](missing.md) ![gone](fig.png) [no heading](other.md#twice-2)\n"
        "[web](https://example.org/x.md) `[code](missing.md)` [ok](#page)\n"
        "```\n[fenced](missing.md)\n```\n"
        "[outside](../elsewhere.md)\n"
    )
    (tmp_path.parent / "elsewhere.md").write_text("# Elsewhere\n")
    assert broken_links(page, root=tmp_path) == [
        "page.md:3: missing.md (no such file)",
        "page.md:3: fig.png (no such file)",
        "page.md:3: other.md#twice-2 (no such heading)",
        "page.md:8: ../elsewhere.md (outside the repository)",
    ]

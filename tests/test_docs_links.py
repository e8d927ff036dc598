"""Every relative link of the README, CONTRIBUTING.md, app/README.md and the pages under docs/ names a
file or folder that exists: moving a page or a record cannot leave a link behind that leads nowhere."""

import re
from pathlib import Path

import pytest
from conftest import ROOT

# [text](target) and ![alt](target), with an optional "title"; <img src="target">.
MARKDOWN_LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
IMG_SRC = re.compile(r"<img\b[^>]*?\bsrc\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE)
CODE_SPAN = re.compile(r"(`+).+?\1", re.DOTALL)


def pages() -> list[Path]:
    found = [
        ROOT / "README.md",
        ROOT / "CONTRIBUTING.md",
        *ROOT.glob("app/**/*.md"),
        *ROOT.glob("docs/**/*.md"),
    ]
    return sorted(page for page in found if page.is_file())


def without_code(markdown: str) -> str:
    """The text outside fenced code blocks and code spans, where `[x](y)` is code, not a link."""
    prose, fenced = [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        elif not fenced:
            prose.append(line)
    return CODE_SPAN.sub("", "\n".join(prose))


def local_targets(markdown: str) -> list[str]:
    """The link targets that name a path: not web or mail addresses, not anchors within the page;
    a #fragment is dropped."""
    text = without_code(markdown)
    targets = MARKDOWN_LINK.findall(text) + IMG_SRC.findall(text)
    paths = []
    for target in targets:
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith("#"):
            continue  # http:, https:, mailto:, ...; or an anchor on the same page
        paths.append(target.split("#", 1)[0])
    return paths


def broken_links(page: Path) -> list[str]:
    return [target for target in local_targets(page.read_text()) if not (page.parent / target).exists()]


def test_the_link_parser_finds_links_and_images_and_skips_the_rest():
    markdown = """See [usage](docs/usage.md#offline-use), ![plot](results/macro_f1.png "a plot") and
<img src="../docs/app/evidence-toxic.png" width="600">. Not these: [web](https://example.com),
[mail](mailto:someone@example.com), [here](#tests), `[code](not/a/link.md)`, and

```python
print(lists[0](nope.md))
```
"""
    assert local_targets(markdown) == [
        "docs/usage.md",
        "results/macro_f1.png",
        "../docs/app/evidence-toxic.png",
    ]


def test_a_broken_link_is_found(tmp_path):
    (tmp_path / "there.md").write_text("here")
    page = tmp_path / "page.md"
    page.write_text("[fine](there.md) [gone](missing/file.png#top) [also fine](./there.md#x)\n")
    assert broken_links(page) == ["missing/file.png"]


def test_the_pages_are_found():
    names = {page.relative_to(ROOT).as_posix() for page in pages()}
    assert {"README.md", "CONTRIBUTING.md", "app/README.md"} <= names


@pytest.mark.parametrize("page", pages(), ids=lambda page: page.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(page):
    assert broken_links(page) == [], f"{page.relative_to(ROOT)} links to paths that do not exist"

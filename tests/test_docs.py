"""Every code block of README.md and docs/*.md runs, page by page, in a fresh directory.

Which blocks run:
- ```python blocks, executed in order in one namespace per page;
- ```bash blocks of docs/*.md and README.md whose lines start with ``wasmexport `` (one
  command per line, ``# comments`` allowed), run through the CLI in the same directory, so
  they see the files the page's earlier blocks wrote. Each must exit 0.

Markers, an HTML comment on the line before a block (invisible when rendered):

    <!-- doc-test: skip (why) -->               never run this block; the reason is required
    <!-- doc-test: requires-adapter NAME -->    skip the block (and say so) unless the
                                                framework adapter NAME is registered
    <!-- doc-test: exit N -->                   a bash block whose commands exit with N

Other blocks (```text, ```json, ```c, shell lines that are not wasmexport commands) are
shown, not run.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MARKER = re.compile(r"<!--\s*doc-test:\s*(.*?)\s*-->")
FENCE = re.compile(r"^```(\w*)\s*$")


@dataclass
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    marker: str  # the doc-test marker before it, or ""

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The fenced code blocks of a page, with the doc-test marker before each."""
    lines = page.read_text(encoding="utf-8").splitlines()
    out, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        start, lang = i, m.group(1)
        j = i + 1
        while j < len(lines) and lines[j].rstrip() != "```":
            j += 1
        before = next((lines[k] for k in range(start - 1, -1, -1) if lines[k].strip()), "")
        marker = MARKER.search(before)
        out.append(Block(page, start + 1, lang, "\n".join(lines[start + 1 : j]),
                         marker.group(1) if marker else ""))  # fmt: skip
        i = j + 1
    return out


def wasmexport_commands(block: Block) -> list[list[str]]:
    """The wasmexport command lines of a bash block (empty when it has none)."""
    if block.lang not in ("bash", "sh", "console"):
        return []
    commands = [shlex.split(line, comments=True) for line in block.code.splitlines()]
    commands = [c for c in commands if c]
    if not commands or any(c[0] != "wasmexport" for c in commands):
        return []
    return [c[1:] for c in commands]


def runnable(page: Path) -> list[Block]:
    return [b for b in blocks(page) if b.lang == "python" or wasmexport_commands(b)]


def test_markers_are_known_and_give_reasons():
    for page in PAGES:
        for b in blocks(page):
            if not b.marker:
                continue
            ok = (
                re.fullmatch(r"skip \(.+\)", b.marker)
                or re.fullmatch(r"requires-adapter \w+", b.marker)
                or re.fullmatch(r"exit \d+", b.marker)
            )
            assert ok, f"{b.where}: unknown doc-test marker {b.marker!r} (see {__file__})"


def test_the_docs_have_runnable_blocks():
    names = {p.name for p in PAGES}
    for page in ("getting-started-torch.md", "getting-started-onnx.md", "README.md"):
        assert page in names
    assert sum(len(runnable(p)) for p in PAGES) >= 10


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_page_code_blocks_run(page, tmp_path, monkeypatch, capsys):
    from wasmexport.exporters import list_adapters

    todo = runnable(page)
    if not todo:
        pytest.skip(f"{page.name} has no runnable code blocks")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WASMEXPORT_PROGRESS", "0")
    namespace: dict = {"__name__": "__doc_test__"}
    skipped = []
    for b in todo:
        if b.marker.startswith("skip"):
            continue
        if b.marker.startswith("requires-adapter"):
            name = b.marker.split()[1]
            if name not in list_adapters():
                skipped.append(f"{b.where}: the {name!r} adapter is not available")
                continue
        if b.lang == "python":
            try:
                exec(compile(b.code, b.where, "exec"), namespace)
            except Exception as e:
                pytest.fail(f"{b.where}: {type(e).__name__}: {e}")
        else:
            _run_commands(b)
    if skipped:
        # an honest record in the output; the rest of the page did run
        print("doc-test skipped:\n  " + "\n  ".join(skipped))
    if skipped and len(skipped) == len([b for b in todo if not b.marker.startswith("skip")]):
        pytest.skip("; ".join(skipped))


def _run_commands(block: Block) -> None:
    from wasmexport.cli import main

    want = int(block.marker.split()[1]) if block.marker.startswith("exit") else 0
    for args in wasmexport_commands(block):
        code = main(args)
        assert code == want, f"{block.where}: `wasmexport {shlex.join(args)}` exited {code}"


def test_api_reference_is_up_to_date():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_api_reference", ROOT / "docs" /
                                                  "make_api_reference.py")  # fmt: skip
    maker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(maker)
    committed = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    assert committed == maker.render(), (
        "docs/api.md is out of date: run python docs/make_api_reference.py"
    )

"""The tutorials in docs/ and the README's examples run: each file's ```python blocks
execute in order in one namespace, so an `assert` in a tutorial is a number the suite checks. Blocks fenced as
```python no-run are shown, not run. A ```text output block holds the exact output the
python block before it prints (checked); a plain ```text block is not checked.
Tracebacks point at the markdown file's own lines.

Also checked: relative links in docs/ and the README point at files that exist, and a link to a line,
[`Function.apply`](../tinygrad_vg/autograd.py#L140), lands on a line holding the name in
its text (the last identifier before any "(": here `apply`). When the code moves, the
failure message says where the name is now.
"""
from __future__ import annotations  # `X | None` hints on Python 3.9

import contextlib
import io
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
TUTORIALS = sorted(p for p in DOCS.glob("*.md") if "```python" in p.read_text())
FENCE = re.compile(r"^```(\w*)([^\n]*)\n(.*?)^```[ \t]*$", re.M | re.S)
LINK = re.compile(r"\[([^\]]*)\]\(([^)\s]+)\)")


def fenced_blocks(text: str) -> list[tuple[str, set, int, str]]:
    """(language, options, first line number, content) of each fenced block, in order."""
    return [(m[1], set(m[2].split()), text.count("\n", 0, m.start(3)) + 1, m[3])
            for m in FENCE.finditer(text)]


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(first line number, code) of each ```python block to run, in order."""
    return [(line, code) for lang, options, line, code in fenced_blocks(text)
            if lang == "python" and "no-run" not in options]


def run_markdown(text: str, filename: str, outputs: list | None = None) -> dict:
    """Execute the python blocks of a markdown text in one namespace and compare each
    ```text output block with what the python block before it printed. Returns the namespace.
    With a list as `outputs`, collect (first line, printed text) per output block instead."""
    namespace = {"__name__": "__tutorial__"}
    printed = None   # stdout of the last python block run
    for lang, options, first_line, content in fenced_blocks(text):
        if lang == "python" and "no-run" not in options:
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                # padding so that line numbers in a traceback are the markdown file's
                exec(compile("\n" * (first_line - 1) + content, filename, "exec"), namespace)
            printed = out.getvalue()
        elif lang == "text" and "output" in options:
            assert printed is not None, f"{filename}:{first_line}: a text output block follows no python block"
            if outputs is not None:
                outputs.append((first_line, printed))
                printed = None
                continue
            got = [line.rstrip() for line in printed.rstrip("\n").splitlines()]
            want = [line.rstrip() for line in content.rstrip("\n").splitlines()]
            assert got == want, (f"{filename}:{first_line}: the python block above printed\n"
                                 + "\n".join(got) + "\nbut the page shows\n" + "\n".join(want))
            printed = None
    return namespace


def test_the_tutorials_are_found():
    names = {p.name for p in TUTORIALS}
    assert {"backprop-by-hand.md", "residual-gradients.md", "property-test-your-op.md",
            "recurrent-nets-are-deep-nets.md", "internals.md"} <= names


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda p: p.name)
def test_tutorial_runs(path, monkeypatch, tmp_path):
    pytest.importorskip("hypothesis")
    monkeypatch.chdir(tmp_path)   # a tutorial that writes a file writes it here
    run_markdown(path.read_text(), str(path))


def test_the_readme_examples_run(monkeypatch, tmp_path):
    # the README's python blocks, in order, in one namespace (an excerpt is fenced no-run)
    monkeypatch.chdir(tmp_path)
    readme = ROOT / "README.md"
    assert len(python_blocks(readme.read_text())) >= 8
    run_markdown(readme.read_text(), str(readme))


def test_a_wrong_number_in_a_tutorial_fails_and_points_at_its_line():
    text = "# t\n\ntext\n\n```python\nx = 0.99 ** 100\n```\n\n```python no-run\nraise SystemExit\n```\n\n" \
           "```python\nassert abs(x - 0.37) < 1e-6, x\n```\n"
    with pytest.raises(AssertionError) as info:
        run_markdown(text, "wrong.md")
    frame = info.traceback[-1]
    assert frame.path == "wrong.md" and frame.lineno + 1 == 14   # pytest's lineno is 0-based
    assert python_blocks(text) == [(6, "x = 0.99 ** 100\n"), (14, "assert abs(x - 0.37) < 1e-6, x\n")]


def test_text_output_blocks_must_match_what_was_printed():
    page = "```python\nprint(0.99 ** 3)\n```\n\n```text output\n0.970299\n```\n"
    run_markdown(page, "good.md")
    with pytest.raises(AssertionError, match="printed"):
        run_markdown(page.replace("0.970299\n```", "0.97\n```"), "bad.md")
    run_markdown(page.replace("text output", "text"), "unchecked.md")


def _links():
    for page in sorted(DOCS.glob("*.md")) + [ROOT / "README.md"]:
        for match in LINK.finditer(page.read_text()):
            text, target = match[1], match[2]
            if not re.match(r"[a-z]+:", target) and not target.startswith("#"):
                yield page, text, target


def test_relative_links_in_docs_point_at_files_that_exist():
    missing = [f"{page.name}: {target}" for page, _, target in _links()
               if not (page.parent / target.split("#")[0]).exists()]
    assert not missing, missing


def test_line_links_land_on_the_named_line():
    checked, wrong = 0, []
    for page, text, target in _links():
        m = re.fullmatch(r"(.+)#L(\d+)", target)
        if not m:
            continue
        lines = (page.parent / m[1]).read_text().splitlines()
        number = int(m[2])
        checked += 1
        if not (text.startswith("`") and text.endswith("`")):
            wrong.append(f"{page.name}: [{text}]({target}): a line link's text must be the `name` it links to")
            continue
        # the name is the last identifier before any '(':  `Function.apply` -> apply, `tape(t)` -> tape
        name = re.findall(r"\w+", text.strip("`").split("(")[0])[-1]
        if not (1 <= number <= len(lines) and re.search(rf"\b{name}\b", lines[number - 1])):
            now = [i + 1 for i, line in enumerate(lines)
                   if re.search(rf"\b(def|class) {name}\b|^\s*{name}\s*=|\b{name}\b", line)][:3]
            found = repr(lines[number - 1].strip()) if 1 <= number <= len(lines) else "past the end"
            wrong.append(f"{page.name}: [{text}]({target}), but line {number} is {found}; "
                         f"{name!r} is now on lines {now}")
    assert checked >= 10, "internals.md should link to lines of the engine"
    assert not wrong, "\n".join(wrong)


def update_outputs(path: Path) -> None:
    """Rewrite the ```text output blocks of a tutorial with what its code prints now.
    For a deliberate change only (then read the diff): `python tests/test_docs.py docs/x.md`."""
    text = path.read_text()
    outputs: list = []
    run_markdown(text, str(path), outputs)
    lines = text.splitlines(keepends=True)
    for first_line, printed in reversed(outputs):   # from the end, so earlier line numbers hold
        end = first_line - 1
        while not lines[end].startswith("```"):
            end += 1
        lines[first_line - 1:end] = [line.rstrip() + "\n" for line in printed.rstrip("\n").splitlines()]
    path.write_text("".join(lines))


if __name__ == "__main__":
    import sys
    for name in sys.argv[1:]:
        update_outputs(Path(name))

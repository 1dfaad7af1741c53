"""tinygrad_vg/ops/listing.py and `python -m tinygrad_vg.ops`: README.md's op table is the one
generated from the package, and it names every op class and every function the package exports."""
import re
from pathlib import Path

import pytest

from tinygrad_vg import functional, ops
from tinygrad_vg.ops import listing
from tinygrad_vg.ops.__main__ import main

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_table() -> str:
    text = README.read_text()
    assert listing.BEGIN in text and listing.END in text, "README.md lost its op table markers"
    return text[text.index(listing.BEGIN):text.index(listing.END)]


def test_the_readme_op_table_is_the_generated_one():
    assert listing.update(README, check=True), (
        "README.md's op table is stale: run `python -m tinygrad_vg.ops --write README.md`")


def test_every_op_class_has_a_row_in_the_readme():
    table = readme_table()
    classes = [n for n in ops.__all__ if listing._is_op(getattr(ops, n))]
    missing = [n for n in classes if f"| `{n}` |" not in table]
    assert not missing, f"op classes missing from README.md's table: {missing}"
    assert len(classes) > 80


def test_every_exported_function_and_alias_is_named_in_the_readme():
    table = readme_table()
    named = set(re.findall(r"`([a-z_0-9]+)(?: \(([a-z_0-9, ]+)\))?`", table))
    words = {w for name, aliases in named for w in [name, *aliases.split(", ")] if w}
    missing = sorted(set(functional.__all__) - words)
    assert not missing, f"functions of tinygrad_vg.functional missing from README.md's op table: {missing}"


def test_the_added_ops_are_found_with_their_functions_and_methods():
    by_name = {r["name"]: r for r in listing.rows()}
    assert by_name["ExpandDims"]["functions"] == ["expand_dims (unsqueeze)"]
    assert by_name["ExpandDims"]["methods"] == ["x.unsqueeze"]
    assert set(by_name["TakeAlongAxis"]["functions"]) == {"take_along_axis", "gather", "topk"}
    assert by_name["Add"]["methods"] == ["a + b"]
    assert by_name["Sign"]["math"].startswith("y = sign(x)")


def test_update_writes_between_the_markers_and_detects_a_stale_table(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(f"# title\n\n{listing.BEGIN}\nold\n{listing.END}\n\nafter\n")
    assert not listing.update(page, check=True)
    assert "old" in page.read_text()          # check=True writes nothing
    assert main(["--check", str(page)]) == 1
    assert main(["--write", str(page)]) == 0
    text = page.read_text()
    assert text.startswith("# title\n\n") and text.endswith("\n\nafter\n") and "| `Einsum` |" in text
    assert listing.update(page, check=True) and main(["--check", str(page)]) == 0


def test_a_page_without_markers_or_a_missing_file_is_an_error_not_a_traceback(tmp_path, capsys):
    page = tmp_path / "plain.md"
    page.write_text("no markers\n")
    with pytest.raises(ValueError, match="no op table markers"):
        listing.update(page)
    assert main(["--write", str(page)]) == 2
    assert main(["--check", str(tmp_path / "absent.md")]) == 2
    assert "error:" in capsys.readouterr().err


def test_printing_the_table(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith(listing.BEGIN) and "| `Maximum` | math | `maximum` | `x.maximum` |" in out

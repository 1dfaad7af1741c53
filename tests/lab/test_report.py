"""report.py: the summary table (terminal and HTML), the conclusions, and the one self-contained HTML page."""
import base64
import copy
import html
import json
import re

import pytest

from tinygrad_vg.lab import run_experiment
from tinygrad_vg.lab.report import (CONFIG_FIELDS, DamagedResults, NoResults, conclusion, format_table,
                                    summary_rows, write_report)

SMALL = {
    "seed-figure": dict(width=5, depth=4, batch=4, steps=2),
    "init": dict(inits=["standard", "orthogonal"], scales=[0.5, 2.0], width=5, depth=4, batch=4),
    "depth": dict(depths=[2, 5], kinds=["plain", "residual"], norms=["none", "batch"], width=5, batch=4),
    "recurrent": dict(T=10, hidden=4, input_size=3, batch=2, gate_biases=[0.0, 2.0]),
    "activations": dict(activations=["sigmoid", "tanh", "relu"], width=5, depth=4, batch=4),
    "learning-speed": dict(kinds=["plain", "residual"], width=5, depth=4, batch=4, steps=3),
    "arch-seed-figure": dict(variants=["plain", "dense", "plain+wn"], width=5, depth=4, batch=4, steps=2),
    "arch-depth": dict(depths=[2, 5], variants=["plain", "residual+maxout"], width=5, batch=4),
    "narx": dict(delays=[1, 2], narx_inits=["fan_in"], cells=["lstm"], gate_biases=[0.0], T=12, hidden=4,
                 input_size=3, batch=2),
    "conv-depth": dict(kinds=["plain", "residual"], depths=[8], image_size=8, classes=2, train_size=16, batch=8,
                       probe_batch=8, steps=2),
}


@pytest.fixture(scope="module")
def results():
    return {name: run_experiment(name, **options) for name, options in SMALL.items()}


# ----- summary_rows / format_table -------------------------------------------------
@pytest.mark.parametrize("name", list(SMALL))
def test_summary_rows_shape(results, name):
    data = results[name]
    headers, rows = summary_rows(data)
    assert len(rows) == len(data["runs"])
    assert all(len(row) == len(headers) for row in rows)
    assert all(isinstance(cell, str) for row in rows for cell in row)
    assert "log10_ratio_h" in headers and "loss" in headers
    config = [h for h in headers if h in CONFIG_FIELDS]
    assert headers[:len(config)] == config                      # configuration first, in CONFIG_FIELDS order
    assert config == [f for f in CONFIG_FIELDS if f in config]
    ratio = headers.index("log10_ratio_h")
    for run, row in zip(data["runs"], rows):
        assert float(row[ratio]) == pytest.approx(run["log10_ratio_h"], abs=0.006)


def test_summary_columns_per_experiment(results):
    headers, rows = summary_rows(results["seed-figure"])
    assert headers[:2] == ["kind", "phase"]
    assert [r[1] for r in rows] == ["init", "trained"] * 3
    headers, _ = summary_rows(results["recurrent"])
    assert "cell" in headers and "kind" not in headers and "gate_bias" in headers and "T" in headers
    headers, _ = summary_rows(results["depth"])
    assert {"kind", "norm", "depth", "width", "seed"} <= set(headers)
    headers, rows = summary_rows(results["init"])
    assert {"scale", "gain_per_layer", "predicted_gain"} <= set(headers)
    predicted = headers.index("predicted_gain")
    assert [r[predicted] for r in rows] == ["-", "-", "-0.301", "+0.301"]


def test_summary_says_underflow(results):
    data = copy.deepcopy(results["depth"])
    data["runs"][0]["grad_h_norm"][1] = 0.0
    data["runs"][0]["log10_ratio_h"] = None
    headers, rows = summary_rows(data)
    assert rows[0][headers.index("log10_ratio_h")] == "underflow"


def test_format_table():
    text = format_table(["kind", "depth", "log10_ratio_h"],
                        [["plain", "20", "-4.87"], ["residual", "1000", "underflow"]])
    lines = text.splitlines()
    assert len(lines) == 4
    assert lines[0].split() == ["kind", "depth", "log10_ratio_h"]
    assert set(lines[1]) == {"-", " "}
    assert lines[2].split() == ["plain", "20", "-4.87"]
    # text left-aligned, numbers right-aligned: the columns end where the header's rule ends
    rule_ends = [m.end() for m in re.finditer("-+", lines[1])]
    assert lines[2].index("20") + 2 == rule_ends[1] and lines[3].index("1000") + 4 == rule_ends[1]
    assert lines[2].startswith("plain ") and lines[3].startswith("residual")
    assert lines[2].endswith("-4.87") and len(lines[2]) == len(lines[3])


def test_format_table_of_real_data(results):
    headers, rows = summary_rows(results["depth"])
    lines = format_table(headers, rows).splitlines()
    assert len(lines) == len(rows) + 2
    assert all(len(line) <= len(lines[1]) for line in lines)


# ----- the page --------------------------------------------------------------------
def write_results(results, directory, names):
    for name in names:
        (directory / f"{name}.json").write_text(json.dumps(results[name]))


def test_report_is_self_contained_with_every_figure(results, tmp_path):
    from tinygrad_vg.lab.plots import figure_files
    write_results(results, tmp_path, SMALL)
    pngs = {}
    for name in SMALL:   # as the CLI does: JSON first, then its PNGs, which the report reuses
        for i, fig_name in enumerate(figure_files(results[name])):
            # stand-ins: drawing is test_plots' job; here each file's bytes must come back intact
            pngs[fig_name] = b"\x89PNG\r\n\x1a\n" + f"{fig_name} {i}".encode() * 50
            (tmp_path / fig_name).write_bytes(pngs[fig_name])
    page_path = write_report(tmp_path)
    assert page_path == tmp_path / "report.html"
    page = page_path.read_text(encoding="utf-8")

    uris = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(uris) == len(pngs) == 3 + 1 + 1 + 1 + 1 + 1 + 3 + 1   # + arch-seed-figure, arch-depth, narx; conv-depth
    assert sorted(base64.b64decode(u) for u in uris) == sorted(pngs.values())
    # nothing external: no links, scripts, stylesheets or images from anywhere else
    assert not re.search(r"https?:", page)
    assert all(src.startswith("data:") for src in re.findall(r'src="([^"]*)"', page))
    assert "<link" not in page and "<script" not in page and "<style>" in page
    assert "log10(||dL/dh_1|| / ||dL/dh_L||)" in page and "vanishes toward" in page
    for name in SMALL:                      # every experiment: a section with its options and table
        assert f'<section id="{name}">' in page and f"<h2>{name}</h2>" in page
    assert page.count("<h3>Options</h3>") == page.count("<h3>Summary</h3>") == len(SMALL)
    assert "<td>gate_biases</td><td>0.0, 2.0</td>" in page
    assert page.index('id="seed-figure"') < page.index('id="init"') < page.index('id="depth"')


def test_report_draws_missing_figures_without_touching_the_directory(results, tmp_path):
    pytest.importorskip("matplotlib")
    (tmp_path / "rnn_short.json").write_text(json.dumps(results["recurrent"]))   # not NAME.json, no PNGs
    (tmp_path / "notes.json").write_text(json.dumps({"hello": 1}))
    before = sorted(p.name for p in tmp_path.iterdir())
    page = write_report(tmp_path).read_text(encoding="utf-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(before + ["report.html"])
    uris = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(uris) == 1 and base64.b64decode(uris[0])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "notes.json: not an experiment result" in page
    assert '<section id="rnn_short">' in page


def test_report_needs_results(tmp_path):
    with pytest.raises(NoResults, match="holds no experiment results"):
        write_report(tmp_path)
    with pytest.raises(ValueError, match="not a directory"):
        write_report(tmp_path / "missing")


# ----- conclusions, captions, and what the page must not say ----------------------------
@pytest.mark.parametrize("name", list(SMALL))
def test_each_conclusion_is_one_sentence_of_the_numbers(results, name):
    text = conclusion(results[name])
    assert text.endswith(".") and text[0].isupper()
    assert not re.search(r"\.\s+[A-Z]", text), text         # one sentence
    assert re.search(r"\d", text) and "`" not in text and "None" not in text


def test_the_depth_conclusion_follows_the_numbers(results):
    data = copy.deepcopy(results["depth"])
    deepest = max(r["depth"] for r in data["runs"])
    for run in data["runs"]:
        if run["kind"] == "plain" and run["depth"] == deepest:
            run["log10_ratio_h"] = -7.25 if run["norm"] == "none" else 9.04
    assert conclusion(data) == (f"Batch norm turns the plain net's vanishing into explosion: at depth {deepest} its "
                                "gradient loses 7.2 decades without batch norm and gains 9.0 decades with it, so "
                                "batch norm alone does not keep this net's gradient healthy at initialisation.")
    for run in data["runs"]:
        if run["kind"] == "plain" and run["depth"] == deepest:
            run["log10_ratio_h"] = -7.25 if run["norm"] == "none" else -0.5
    assert conclusion(data).endswith("without batch norm and loses 0.5 decades with it: batch norm keeps the "
                                     "gradient closer to its size.")


def test_the_activations_conclusion_names_the_largest_and_smallest_change(results):
    data = copy.deepcopy(results["activations"])
    for run, ratio in zip(data["runs"], [-2.0, 0.04, 3.25]):   # sigmoid, tanh, relu
        run["log10_ratio_h"] = ratio
    assert conclusion(data) == ("Over 4 layers the gradient of the relu net gains 3.2 decades, the largest change of "
                                "the 3 activations, and that of the tanh net keeps its size, the smallest.")


def test_the_recurrent_conclusion_names_the_best_gated_cell(results):
    data = copy.deepcopy(results["recurrent"])
    lstm = next(r for r in data["runs"] if r["cell"] == "lstm" and r["gate_bias"] == 2.0)
    lstm["log10_ratio_h"] = 0.31
    assert "the best gated cell, the lstm with gate bias +2, gains 0.3 decades" in conclusion(data)


def test_the_page_has_no_placeholders_or_internal_labels_and_a_conclusion_per_section(results, tmp_path):
    from tinygrad_vg.lab.plots import figure_files
    write_results(results, tmp_path, SMALL)
    for name in SMALL:   # stand-ins, so that the page does not draw them
        for fig_name in figure_files(results[name]):
            (tmp_path / fig_name).write_bytes(b"\x89PNG\r\n\x1a\n")
    page = write_report(tmp_path).read_text(encoding="utf-8")
    text = re.sub(r"<[^>]+>", " ", re.sub(r'src="[^"]*"', "", page.split("</style>")[1]))
    assert "`" not in text and "{" not in text and not re.search(r"Seed 0\d\d", text)
    assert page.count('<p class="conclusion">') == len(SMALL)
    for name in SMALL:
        section = page.split(f'<section id="{name}">')[1].split("</section>")[0]
        assert html.escape(conclusion(results[name])) in section


def test_heatmap_captions_say_which_colour_scales_differ():
    from tinygrad_vg.lab.plots import CAPTIONS
    for name in ("seed_figure_init.png", "seed_figure_trained.png"):
        assert "own colour scale" in CAPTIONS[name] and "shared by every panel" in CAPTIONS[name] \
            or "own colour scale" in CAPTIONS[name] and "the gradient colour scale is the one" in CAPTIONS[name]
    assert "one log colour scale shared by every panel" in CAPTIONS["learning_speed.png"]


# ----- damaged and foreign files ---------------------------------------------------------
def test_a_damaged_file_stops_the_report_and_changes_nothing(results, tmp_path):
    write_results(results, tmp_path, ["depth"])
    (tmp_path / "report.html").write_text("the old report")
    (tmp_path / "cut.json").write_text(json.dumps(results["init"])[:200])
    (tmp_path / "odd.json").write_text('{"experiment": ["depth"], "runs": []}')
    with pytest.raises(DamagedResults) as info:
        write_report(tmp_path)
    assert [name.split("/")[-1] for name, _ in info.value.damaged] == ["cut.json", "odd.json"]
    assert "cut.json (not valid JSON" in str(info.value) and "its 'experiment' field is ['depth']" in str(info.value)
    assert (tmp_path / "report.html").read_text() == "the old report"
    named = []
    page = write_report(tmp_path, skip_bad=True, on_skip=lambda name, why: named.append(name)).read_text()
    assert [n.split("/")[-1] for n in named] == ["cut.json", "odd.json"]
    assert "cut.json: not valid JSON" in page and '<section id="depth">' in page


def test_with_several_seeds_the_conclusion_reads_the_medians_and_says_so():
    from tinygrad_vg.lab import run_experiment
    from tinygrad_vg.lab.report import conclusion
    data = run_experiment("depth", depths=[4], kinds=["plain", "residual"], norms=["none"], width=6, batch=4, seeds=3)
    text = conclusion(data)
    assert text.endswith("(Medians over 3 seeds; the table gives mean +- sd.)")
    median = sorted(r["log10_ratio_h"] for r in data["runs"] if r["kind"] == "plain")[1]
    assert f"plain net's gradient loses {abs(median):.1f} decade" in text


def test_each_section_says_what_produced_its_numbers(tmp_path):
    import json

    from tinygrad_vg import __version__, kernels
    from tinygrad_vg.lab import run_experiment
    from tinygrad_vg.lab.report import write_report
    data = run_experiment("depth", depths=[3], kinds=["plain"], norms=["none"], width=4, batch=3)
    (tmp_path / "depth.json").write_text(json.dumps(data))
    page = write_report(tmp_path).read_text()
    assert f"tinygrad_vg {__version__}" in page and f"{kernels.BACKEND} kernels" in page
    assert data["provenance"]["finished_utc"] in page

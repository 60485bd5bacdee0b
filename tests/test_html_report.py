"""report.html: one self-contained page (embedded PNGs, no external links) holding the run's figures."""

from __future__ import annotations

import base64
import json
from html.parser import HTMLParser

import numpy as np
import pytest
from test_protocols_and_recipes import learnable_folder

from tscnn import report
from tscnn.config import Config
from tscnn.datasets import read_flowfolder
from tscnn.html_report import per_class_f1
from tscnn.runner import config_for, run_experiment


class Page(HTMLParser):
    """Tables (by id) as lists of rows of cell texts, every src/href, and the title and h1 texts."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.links: list[tuple[str, str]] = []
        self.headings: list[str] = []
        self.title = ""
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._row: list[str] | None = None
        self._heading: list[str] | None = None
        self._in_title = False
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in ("src", "href"):
            if name in attrs:
                self.links.append((name, attrs[name]))
        if tag == "script":
            self.scripts += 1
        if tag == "table":
            self._table = attrs.get("id") or f"table{len(self.tables)}"
            self.tables[self._table] = []
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "h1":
            self._heading = []
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None
        elif tag == "h1":
            self.headings.append("".join(self._heading))
            self._heading = None
        elif tag == "title":
            self._in_title = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._heading is not None:
            self._heading.append(data)
        if self._in_title:
            self.title += data


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    flows = learnable_folder(tmp_path_factory.mktemp("flows"))
    config = config_for("ststnet", dataset="flowfolder", root=str(flows), classes="all", max_epochs=3, seeds=(0, 1))
    db = read_flowfolder(flows)
    result = run_experiment(config, tmp_path_factory.mktemp("run") / "run", progress=False, database=db)
    report.write_report(result, config, db.table)
    return result


def test_report_html_is_self_contained_and_holds_the_figures(finished_run):
    out, metrics = finished_run.out, finished_run.metrics
    page = Page()
    page.feed((out / "report.html").read_text(encoding="utf-8"))
    assert "STSTNet" in page.headings[0] and "flowfolder" in page.headings[0] and "LEAKY" not in page.headings[0]
    assert "leave-one-subject-out" in page.title
    # The metrics table: mean, std, seed ensemble (two seeds) and the leaky shadow marked as not a result.
    rows = page.tables["metrics"]
    assert rows[0] == ["metric", "mean over seeds", "std over seeds", "seed ensemble", "leaky shadow (not a result)"]
    ms, ensemble = metrics["mean_std_over_seeds"], metrics["seed_ensemble"]
    shadow = metrics["leaky_shadow"]["mean_std_over_seeds"]
    for row, key in zip(rows[1:], ("accuracy", "uf1", "uar"), strict=True):
        assert row[0].split()[0].lower() == key
        expected = [ms[key]["mean"], ms[key]["std"], ensemble[key], shadow[key]["mean"]]
        assert [float(c) for c in row[1:]] == pytest.approx(expected, abs=6e-5)
    # Per-class F1 from seed 0's pooled confusion matrix, whose mean is that seed's UF1.
    f1_rows = page.tables["per-class-f1"]
    assert [r[0] for r in f1_rows[1:]] == metrics["classes"]
    f1 = [float(r[5]) for r in f1_rows[1:]]
    assert np.mean(f1) == pytest.approx(metrics["per_seed"][0]["uf1"], abs=1e-4)
    # A composite of two databases: its per-database table.
    assert [r[0] for r in page.tables["per-dataset"][1:]] == ["casme2", "smic"]
    assert page.tables["folds"][1][3] == "3" and len(page.tables["folds"]) == 1 + 6
    assert any(r[0] == "max_epochs" and r[1] == "3" for r in page.tables["settings"])
    assert {r[0] for r in page.tables["machine"]} >= {"CPU", "threads", "bf16 autocast", "torch", "code version"}
    # Pictures embedded as PNGs; no external link and no script.
    images = [v for k, v in page.links if k == "src"]
    assert len(images) >= 2
    for uri in images:
        assert uri.startswith("data:image/png;base64,")
        assert base64.b64decode(uri.split(",", 1)[1]).startswith(b"\x89PNG\r\n\x1a\n")
    assert all(v.startswith(("data:", "#")) for _, v in page.links)
    assert page.scripts == 0
    # The Markdown report is still written, and the curves picture exists (ststnet has epochs).
    assert (out / "report.md").is_file() and (out / "curves.png").is_file()
    assert "population standard deviation (ddof 0)" in (out / "report.md").read_text()
    assert "FER2013" not in (out / "report.md").read_text()  # STSTNet has no static stream to pre-train
    history = json.loads(next((out / "seed_0" / "folds").glob("*.json")).read_text())["history"]
    assert len(history) == 3


def test_a_one_epoch_run_draws_no_curves_and_says_why(tmp_path):
    """One epoch per fold: each curve would be a single point, so neither report draws the figure; both say why,
    and the per-epoch losses are still kept in history.csv."""
    flows = learnable_folder(tmp_path / "flows")
    config = config_for("ststnet", dataset="flowfolder", root=str(flows), classes="all", max_epochs=1)
    db = read_flowfolder(flows)
    result = run_experiment(config, tmp_path / "run", progress=False, database=db)
    (tmp_path / "run" / "curves.png").write_bytes(b"stale")  # a picture left from before is not kept
    report.write_report(result, config, db.table)
    out = tmp_path / "run"
    assert not (out / "curves.png").exists()
    assert "every fold trained one epoch" in (out / "report.md").read_text()
    assert "every fold trained one epoch" in (out / "report.html").read_text(encoding="utf-8")
    assert (out / "history.csv").read_text().count("\n") == 1 + 6  # a header and one epoch of each fold


def test_per_class_f1_from_a_confusion_matrix():
    rows = per_class_f1([[3, 1, 0], [0, 2, 2], [0, 0, 0]], ["a", "b", "c"])
    assert rows[0]["f1"] == pytest.approx(2 * 3 / (4 + 3))
    assert rows[1]["precision"] == pytest.approx(2 / 3) and rows[1]["recall"] == pytest.approx(0.5)
    assert rows[2]["f1"] is None and rows[2]["n"] == 0  # absent from the truth: not part of UF1


def test_a_features_model_gets_a_page_without_curves(tmp_path):
    flows = learnable_folder(tmp_path / "flows")
    config = config_for("linear", dataset="flowfolder", root=str(flows), classes="all")
    db = read_flowfolder(flows)
    result = run_experiment(config, tmp_path / "run", progress=False, database=db)
    report.write_report(result, config, db.table)
    assert not (tmp_path / "run" / "curves.png").exists()
    page = Page()
    text = (tmp_path / "run" / "report.html").read_text(encoding="utf-8")
    page.feed(text)
    assert "No training curves" in text
    # No epochs, so no leaky shadow (it would repeat the honest figure) and no training recipe in the report.
    assert page.tables["metrics"][0] == ["metric", "value"]
    markdown = (tmp_path / "run" / "report.md").read_text()
    assert "leaky shadow" not in markdown.lower() and "no epochs, no recipe" in markdown
    assert "leaky shadow" not in report.metrics_table(result.metrics)


def test_the_report_says_whether_the_static_stream_was_pre_trained():
    from tscnn.report import _pretraining_note

    assert "random weights (no FER2013 pre-training" in _pretraining_note(Config())
    started = "Input convolutions of the pre-trained streams and the trunk started from `p.pt`. "
    assert _pretraining_note(Config(pretrained="p.pt")) == started
    assert _pretraining_note(Config(streams=("dt",), pretrained="p.pt")) == started
    assert _pretraining_note(Config(streams=("dt",))) == ""  # no static stream
    assert _pretraining_note(Config(model="ststnet", streams=("uvs",))) == ""

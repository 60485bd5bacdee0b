"""``tscnn bench`` (``tscnn.bench``): the real-data benchmark as a package module and a command: rows on a tiny
flow folder, pairs that train on several databases, merge, the paired comparison with the floor, and the
script in benchmarks/ as a thin caller."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_flowfolder import make_folder
from test_protocols_and_recipes import learnable_folder

from tscnn.bench import merge, paired_to_base, row_config
from tscnn.bench_rows import parse_pair
from tscnn.cli import main
from tscnn.datasets.flowfolder import write_flow_image
from tscnn.metrics import pooled_metrics

ROOT = Path(__file__).resolve().parents[1]


def three_database_folder(root: Path) -> Path:
    """A tiny learnable flow folder of three databases (casme2, smic, samm), two subjects each."""
    learnable_folder(root, per_subject=3)
    index = pd.read_csv(root / "index.csv")
    rng = np.random.default_rng(3)
    rows = []
    for subject in ("006", "007"):
        for i in range(3):
            relative = f"flow/{subject}_{i}.png"
            maps = rng.random((3, 28, 28)).astype(np.float32)
            maps[:, 0, 0], maps[:, 1, 1] = 0, 1
            write_flow_image(root / relative, maps)
            rows.append({"dataset": "samm", "subject": subject, "clip": f"{subject}_{i}", "label": i % 3,
                         "label_name": index.label_name[index.label == i % 3].iloc[0], "flow": relative})
    pd.concat([index, pd.DataFrame(rows)]).to_csv(root / "index.csv", index=False)
    return root


def test_a_pair_side_may_join_databases():
    assert parse_pair("casme2:smic") == (("casme2",), ("smic",))
    assert parse_pair("casme2+smic:samm") == (("casme2", "smic"), ("samm",))
    for bad in ("casme2", "casme2:", ":smic", "a:b:c"):
        with pytest.raises(ValueError, match="TRAIN:TEST"):
            parse_pair(bad)
    config = row_config("linear", Path("x"), (0,), "cross", parse_pair("casme2+smic:samm"), 0)
    assert config.train_datasets == ("casme2", "smic") and config.test_datasets == ("samm",)


def test_bench_trains_on_two_databases_and_prints_json(tmp_path, capsys):
    """``--pairs casme2+smic:samm``: one cross-database row trained on two databases, in its own folder; with
    ``--json`` stdout holds only the summary (progress goes to stderr)."""
    data = three_database_folder(tmp_path / "three")
    summary = tmp_path / "bench" / "summary.json"
    code = main(["bench", "--data", str(data), "--rows", "linear", "--protocols", "cross", "--pairs",
                 "casme2+smic:samm", "--seeds", "0", "--out", str(tmp_path / "out"), "--summary", str(summary),
                 "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err[-2000:]
    printed = json.loads(captured.out)
    assert printed == json.loads(summary.read_text())
    row = printed["rows"]["linear [casme2+smic -> samm]"]
    assert row["protocol_short"] == "casme2+smic -> samm" and row["clips"] == 24
    assert row["config"]["train_datasets"] == ["casme2", "smic"] and row["config"]["test_datasets"] == ["samm"]
    assert (tmp_path / "out" / "linear-casme2+smic-to-samm" / "predictions.csv").is_file()
    assert "UF1" in captured.err


def test_bench_runs_on_a_folder_of_one_database(tmp_path, capsys):
    """The benchmark on a folder holding only SMIC clips: no cross-database pair to make, and the database's
    column repeats the whole set's figures (a one-database run has no per-database subsets)."""
    clips = [("smic", f"s{s}", f"s{s}_{i}", label, ("negative", "positive", "surprise")[label])
             for s in range(1, 5) for i, label in enumerate((0, 1, 2, 0))]
    data = make_folder(tmp_path / "smic-only", clips=clips)
    summary = tmp_path / "summary.json"
    assert main(["bench", "--data", str(data), "--rows", "linear", "--seeds", "0", "--out", str(tmp_path / "out"),
                 "--summary", str(summary)]) == 0
    out = capsys.readouterr().out
    assert "16 clips, 4 subjects, databases smic 16" in out
    stored = json.loads(summary.read_text())
    assert stored["databases"] == ["smic"] and list(stored["rows"]) == ["linear"]
    whole = stored["rows"]["linear"]["honest"]["whole"]
    row = next(line for line in out.splitlines() if line.startswith("| linear |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[4] == f"{whole['uf1']['mean']:.3f} +- {whole['uf1']['std']:.3f} / " \
                       f"{whole['uar']['mean']:.3f} +- {whole['uar']['std']:.3f}"


def test_paired_compares_finished_rows_with_the_floor(tmp_path):
    """``--paired linear`` reads finished folders (LOSO and each pair, a pair of several databases too), prints
    the differences and stores them in the summary."""
    subjects = [f"s{i}" for i in range(6) for _ in range(3)]
    labels = [0, 1, 2] * 6
    for row, preds in (("linear", labels), ("ststnet", [0, 1, 1] * 6), ("linear-casme2-to-smic", labels),
                       ("ststnet-casme2-to-smic", labels), ("linear-casme2+smic-to-samm", labels),
                       ("hoof-casme2+smic-to-samm", labels)):
        (tmp_path / row).mkdir()
        pd.DataFrame({"subject": subjects, "label": labels, "pred": preds, "seed": 0}).to_csv(
            tmp_path / row / "predictions.csv", index=False)
        (tmp_path / row / "metrics.json").write_text(json.dumps({"classes": ["a", "b", "c"]}))
    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps({"rows": {}}))
    comparison = paired_to_base(tmp_path, "linear", summary)
    expected = pooled_metrics(np.array(labels), np.array([0, 1, 1] * 6), 3)["uf1"] - 1
    stored = json.loads(summary.read_text())["paired_subject_bootstrap"]["linear"]
    assert stored["rows"] == comparison["rows"]
    assert stored["rows"]["ststnet"]["uf1_difference"] == pytest.approx(expected)
    assert stored["rows"]["ststnet"]["ci_high"] < 0  # wrong on every subject: every resample is below the floor
    assert stored["rows"]["ststnet [casme2 -> smic]"]["uf1_difference"] == 0  # the pair, compared alone
    assert set(stored["rows"]) == {"ststnet", "ststnet [casme2 -> smic]", "hoof [casme2+smic -> samm]"}
    with pytest.raises(ValueError, match="no finished LOSO run of 'hoof'"):
        paired_to_base(tmp_path, "hoof", summary)


def test_merge_keeps_the_machine_of_each_row(tmp_path):
    """``--merge`` joins summaries made on different machines; each row names the machine it ran on."""
    cell = {"uf1": 0.5, "uar": 0.5}
    row = {"honest": {"whole": cell}, "seed_ensemble": {"whole": cell}, "leaky_shadow": {"whole": cell},
           "minutes_per_seed": 1.0, "protocol_short": "loso"}
    parts = []
    for name, cpu in (("a", "Intel Xeon"), ("b", "AMD EPYC")):
        parts.append(tmp_path / f"{name}.json")
        parts[-1].write_text(json.dumps({"databases": ["casme2"], "machine": {"cpu": cpu}, "rows": {name: row}}))
    merged = tmp_path / "merged.json"
    result = merge(parts, merged)
    stored = json.loads(merged.read_text())
    assert stored == json.loads(json.dumps(result))
    assert {name: r["machine"]["cpu"] for name, r in stored["rows"].items()} == {"a": "Intel Xeon", "b": "AMD EPYC"}
    assert stored["machine"]["cpu"] == "Intel Xeon"  # the summary's own: the first part's


def test_the_script_is_a_thin_caller_with_its_own_options(tmp_path):
    """``benchmarks/flow_benchmark.py`` keeps ``--json FILE`` (its summary) and the same rows and table."""
    cell = {"uf1": 0.5, "uar": 0.25}
    row = {"honest": {"whole": cell}, "seed_ensemble": {"whole": cell}, "leaky_shadow": {"whole": cell},
           "minutes_per_seed": 1.0, "protocol_short": "loso"}
    part = tmp_path / "a.json"
    part.write_text(json.dumps({"databases": ["casme2"], "machine": {"cpu": "x"}, "rows": {"linear": row}}))
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "flow_benchmark.py"), "--merge", str(part),
                           "--json", str(tmp_path / "merged.json")], capture_output=True, text=True, timeout=300,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| linear | loso | 0.500 | 0.250 |" in done.stdout and (tmp_path / "merged.json").is_file()
    assert len(done.stdout) < 2000 and "tscnn.bench" in (ROOT / "benchmarks" / "flow_benchmark.py").read_text()


def test_bench_help_needs_no_heavy_module():
    """``tscnn bench --help`` works from a plain install and builds its parser without torch or pandas."""
    code = ("import sys\nfrom tscnn.bench_rows import add_bench_arguments\nimport argparse\n"
            "add_bench_arguments(argparse.ArgumentParser())\n"
            "assert 'torch' not in sys.modules and 'pandas' not in sys.modules, sorted(sys.modules)\n")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120).returncode == 0
    done = subprocess.run([sys.executable, "-m", "tscnn.cli", "bench", "--help"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0 and "casme2+smic:samm" in done.stdout and "--json" in done.stdout

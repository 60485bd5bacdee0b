"""benchmarks/collect_runs.py: finished results folders -> one JSON and a Markdown table; unfinished ones left out."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "collect_runs.py"


def load_script():
    spec = importlib.util.spec_from_file_location("collect_runs", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def figures(uf1: float) -> dict:
    return {"accuracy": {"mean": 0.5, "std": 0.0}, "uf1": {"mean": uf1, "std": 0.01}, "uar": {"mean": 0.4, "std": 0.0}}


def results_folder(root: Path, name: str, finished: bool = True) -> Path:
    folder = root / name
    (folder / "seed_0" / "folds").mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model": "sssnet", "preset": "sssnet", "streams": ["uvs"],
                                                     "size": 28, "protocol": "loso", "seeds": [0]}))
    (folder / "run_info.json").write_text(json.dumps({"code_version": "0.1.0+gabc1234", "cpu": "AMD EPYC",
                                                       "threads": 1, "jobs": 2, "bf16": False}))
    for subject, seconds in (("s01", 90.0), ("s02", 30.0)):
        (folder / "seed_0" / "folds" / f"{subject}.json").write_text(json.dumps({"seconds": seconds}))
    if finished:
        (folder / "metrics.json").write_text(json.dumps({
            "mean_std_over_seeds": figures(0.61), "leaky_shadow": {"mean_std_over_seeds": figures(0.7)},
            "seed_ensemble": {"accuracy": 0.5, "uf1": 0.61, "uar": 0.4, "confusion": [[1]]}}))
    return folder


def test_rows_hold_the_figures_and_unfinished_runs_are_left_out(tmp_path, capsys):
    done = results_folder(tmp_path, "done")
    running = results_folder(tmp_path, "running", finished=False)
    out = tmp_path / "runs.json"
    assert load_script().main([str(done), str(running), "--data", "casme2-keyframes", "--json", str(out)]) == 0
    stored = json.loads(out.read_text())
    assert stored["data"] == "casme2-keyframes" and [r["folder"] for r in stored["rows"]] == ["done"]
    row = stored["rows"][0]
    assert row["honest"]["uf1"]["mean"] == 0.61 and row["leaky_shadow"]["uf1"]["mean"] == 0.7
    assert row["seed_ensemble"] == {"accuracy": 0.5, "uf1": 0.61, "uar": 0.4}
    assert row["fold_minutes"] == 2.0 and row["code_version"] == "0.1.0+gabc1234" and row["cpu"] == "AMD EPYC"
    table = capsys.readouterr().out.splitlines()
    assert len(table) == 3
    assert table[2] == ("| sssnet | sssnet | uvs | 1 | 0.500 +- 0.000 | 0.610 +- 0.010 | 0.400 +- 0.000 | "
                        "0.700 +- 0.010 | 0.1.0+gabc1234 | AMD EPYC | 2.0 |")

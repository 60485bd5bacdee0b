"""The paper's Tables 3 and 4 as LOSO grids: every variant run, resumable, published figures beside."""

import json

from tscnn.config import from_preset
from tscnn.tables import PAPER, TABLES, run_table


def subset(db, n):
    table = db.table[db.table.subject.isin(sorted(db.table.subject.unique())[:n])].reset_index(drop=True)
    return type(db)(db.name, db.root, table, db.classes, [])


def test_blocks_table(synth_db, tmp_path):
    db = subset(synth_db, 3)
    config = from_preset("demo-sgd", dataset="casme2", root="unused", flow="dis", max_epochs=1)
    path = run_table("blocks", config, tmp_path / "t3", tmp_path / "cache", database=db, progress=False)
    text = path.read_text()
    for variant, (accuracy, f1) in PAPER["blocks"]["casme2"].items():
        assert f"| {variant} |" in text and f"{f1:.4f}" in text and f"{accuracy / 100:.4f}" in text
    stored = json.loads((tmp_path / "t3" / "table.json").read_text())
    assert set(stored["rows"]) == set(TABLES["blocks"])
    assert "| UF1 (pooled F1) | F1, mean over folds |" in text
    assert all("fold_mean_f1" in row for row in stored["rows"].values())
    assert json.loads((tmp_path / "t3" / "k2" / "config.json").read_text())["blocks"] == 2
    # Run again: every fold is found on disk, nothing is retrained, the table is the same.
    folds = sorted((tmp_path / "t3").glob("*/seed_0/folds/*.json"))
    stamps = [f.stat().st_mtime_ns for f in folds]
    assert run_table("blocks", config, tmp_path / "t3", tmp_path / "cache", database=db,
                     progress=False).read_text() == text
    assert [f.stat().st_mtime_ns for f in folds] == stamps


def test_streams_table_has_every_structure(synth_db, tmp_path):
    db = subset(synth_db, 2)  # one training subject per fold: no validation subjects, so a fixed budget
    config = from_preset("demo-sgd", dataset="samm", root="unused", flow="dis", max_epochs=1, selection="fixed",
                         val_fraction=0.0)
    run_table("streams", config, tmp_path / "t4", tmp_path / "cache", database=db, progress=False)
    stored = json.loads((tmp_path / "t4" / "table.json").read_text())
    assert list(stored["rows"]) == ["SS", "LS", "DT", "SS+LS", "LS+DT", "DT+SS", "TSCNN"]
    assert stored["paper"]["DT"] == [70.88, 0.6760]  # SAMM's published row beside ours
    saved = json.loads((tmp_path / "t4" / "ls-dt" / "config.json").read_text())
    assert saved["streams"] == ["ls", "dt"]

"""The MEGC2019 composite: counts on the real spreadsheets, ids against the challenge's list, LOSO over all."""

import cv2
import numpy as np
import pandas as pd
import pytest

from tscnn.datasets import DatasetError, read_casme2, read_megc2019, read_samm, read_smic
from tscnn.datasets.megc2019 import combine, parse_parts
from tscnn.metrics import evaluate_predictions
from tscnn.protocols import loso_folds

SMIC_NAMES = {0: "negative", 1: "positive", 2: "surprise"}


def smic_tree_from_list(gt: pd.DataFrame, root):
    """A SMIC-HS folder tree (tiny frames) holding the clips of the challenge's list, as named on disk."""
    for rec in gt[gt.data == "smic"].itertuples():
        folder_subject = f"s{int(rec.subject[1:])}"
        clip = folder_subject + rec.clip[len(rec.subject):]
        clip_dir = root / "HS" / folder_subject / "micro" / SMIC_NAMES[rec.label] / clip
        clip_dir.mkdir(parents=True)
        for n in range(3):
            cv2.imwrite(str(clip_dir / f"reg_image{36000 + n:06d}.bmp"), np.full((8, 8), 100 + n, np.uint8))
    return root


@pytest.fixture(scope="module")
def composite(real_annotations, tmp_path_factory):
    gt = pd.read_csv(real_annotations / "combined_3_class_gt.csv")
    smic_root = smic_tree_from_list(gt, tmp_path_factory.mktemp("smic"))
    parts = [
        read_casme2(real_annotations, coding=real_annotations / "CASME2-coding-20140508.xlsx", classes="megc2019",
                    check_frames=False),
        read_samm(real_annotations, coding=real_annotations / "SAMM_Micro_FACS_Codes_v2.xlsx", classes="megc2019",
                  check_frames=False),
        read_smic(smic_root, apex_fallback="middle"),
    ]
    return combine(parts), gt


def test_composite_counts(composite):
    db, _ = composite
    t = db.table
    assert len(t) == 442 and t.subject.nunique() == 68
    assert t.dataset.value_counts().to_dict() == {"smic": 164, "casme2": 145, "samm": 133}
    assert t.emotion.value_counts().to_dict() == {"negative": 250, "positive": 109, "surprise": 83}
    assert db.classes == ("negative", "positive", "surprise")
    assert (t.label == t.emotion.map({"negative": 0, "positive": 1, "surprise": 2})).all()


def test_composite_matches_the_challenge_list(composite):
    db, gt = composite
    ours = db.table.assign(subject=db.table.subject.str.lstrip("0"))  # the list writes SAMM's 006 as 6
    mine = set(zip(ours.dataset, ours.subject, ours["clip"], ours.label, strict=True))
    theirs = set(zip(gt.data, gt.subject.astype(str).str.lstrip("0"), gt["clip"], gt.label, strict=True))
    assert mine == theirs


def test_composite_loso_is_over_all_68_subjects(composite):
    db, _ = composite
    folds = loso_folds(db.table, val_fraction=0.2, seed=0)
    assert len(folds) == 68
    for fold in folds:
        assert db.table.iloc[fold.test].subject.nunique() == 1
        assert not set(db.table.iloc[fold.train].subject) & set(db.table.iloc[fold.test].subject)


def test_composite_metrics_per_database(composite):
    db, _ = composite
    rng = np.random.default_rng(0)
    pred = db.table[["dataset", "subject", "clip", "label"]].copy()
    pred["pred"] = np.where(rng.random(len(pred)) < 0.7, pred.label, rng.integers(0, 3, len(pred)))
    metrics = evaluate_predictions(pred, 3)
    assert set(metrics["per_dataset"]) == {"casme2", "samm", "smic"}
    part = pred[pred.dataset == "samm"]
    assert metrics["per_dataset"]["samm"]["accuracy"] == pytest.approx((part.pred == part.label).mean())


def test_composite_root_forms(tmp_path):
    assert parse_parts("casme2=/a,samm=/b,smic=/c", "root") == {"casme2": "/a", "samm": "/b", "smic": "/c"}
    with pytest.raises(DatasetError, match="unknown part 'casme3'"):
        parse_parts("casme3=/a", "root")
    (tmp_path / "CASME2").mkdir()
    (tmp_path / "SAMM").mkdir()
    with pytest.raises(DatasetError, match="expected one smic folder"):
        read_megc2019(tmp_path)
    with pytest.raises(DatasetError, match="only the 3-class set"):
        read_megc2019(tmp_path, classes="5class")


def test_synthetic_composite_runs_end_to_end(tmp_path):
    """Three synthetic databases in a folder, found by name, LOSO over all subjects, metrics per database."""
    from tscnn.config import from_preset
    from tscnn.report import write_report
    from tscnn.runner import run_experiment
    from tscnn.synth import SynthSettings, write_database

    for folder, layout in (("CASME2_Cropped", "casme2"), ("SAMM", "samm"), ("SMIC_all_cropped", "smic")):
        write_database(tmp_path / folder, SynthSettings(subjects=2, seed=4, layout=layout))
    db = read_megc2019(tmp_path, apex_fallback="middle")
    assert set(db.table.dataset) == {"casme2", "samm", "smic"} and db.table.subject.nunique() == 6
    config = from_preset("demo-sgd", dataset="megc2019", root=str(tmp_path), classes="3class", streams=("dt",),
                         flow="dis", max_epochs=1, selection="fixed", val_fraction=0.0)
    result = run_experiment(config, tmp_path / "run", tmp_path / "cache", database=db, progress=False)
    assert result.predictions.subject.nunique() == 6
    assert set(result.metrics["per_dataset_mean_std_over_seeds"]) == {"casme2", "samm", "smic"}
    text = write_report(result, config, db.table).read_text()
    assert "| smic |" in text and "Apex rule (annotated apex when valid" in text
    smic_clips = db.table[db.table.dataset == "smic"]["clip"]
    assert all(clip in text for clip in smic_clips)  # every clip the apex rule applied to is listed

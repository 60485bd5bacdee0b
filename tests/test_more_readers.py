"""SMIC-HS, CAS(ME)^3 part A and MMEW readers: real tables and synthetic folders in each real layout."""

import pandas as pd
import pytest

from tscnn.datasets import DatasetError, load_database, read_casme3, read_mmew, read_smic
from tscnn.synth import SynthSettings, write_database


@pytest.mark.parametrize("layout, classes", [("smic", "3class"), ("casme3", "7class"), ("mmew", "7class")])
def test_synthetic_layout_loads_through_the_real_reader(tmp_path, layout, classes):
    write_database(tmp_path, SynthSettings(subjects=3, seed=1, layout=layout))
    db = load_database(layout, str(tmp_path), classes=classes, apex_fallback="middle")
    truth = pd.read_csv(tmp_path / "ground_truth.csv", dtype={"subject": str})
    assert len(db.table) == len(truth) > 15 and db.table.subject.nunique() == 3
    merged = db.table.merge(truth, on=["subject", "clip"], suffixes=("", "_true"))
    assert len(merged) == len(truth)  # every rendered clip is found under the id the reader gives it
    assert (merged.emotion == merged.emotion_true).all()
    assert (merged.onset == merged.onset_true).all() and (merged.offset == merged.offset_true).all()
    if layout == "smic":  # no apex annotation: every clip gets the rule, and it is reported
        assert set(db.table.apex_rule) == {"middle"} and len(db.quirks) == len(db.table)
    else:
        assert (merged.apex == merged.apex_true).all() and set(db.table.apex_rule) == {"annotated"}


def test_smic_ids_follow_the_megc2019_spelling(tmp_path):
    write_database(tmp_path, SynthSettings(subjects=2, seed=1, layout="smic"))
    db = read_smic(tmp_path, apex_fallback="middle")
    row = db.table.iloc[0]
    assert row.subject == "s01" and row["clip"].startswith("s01_")  # on disk: s1/.../s1_ne_01
    assert "/HS/s1/micro/" in row.frames_dir
    assert db.classes == ("negative", "positive", "surprise")
    # The root may be the folder holding HS or HS itself.
    assert len(read_smic(tmp_path / "HS", apex_fallback="middle").table) == len(db.table)


def test_smic_spotter_stays_inside_the_clip(tmp_path):
    write_database(tmp_path, SynthSettings(subjects=2, seed=5, layout="smic"))
    t = read_smic(tmp_path).table
    assert set(t.apex_rule) == {"spotter"}
    assert ((t.apex > t.onset) & (t.apex < t.offset)).all()


def test_real_casme3_table_counts_and_quirks(real_annotations):
    coding = real_annotations / "casme3_partA_table.xlsx"
    every = read_casme3(real_annotations, coding=coding, classes="7class", check_frames=False)
    assert len(every.table) == 860 and every.table.subject.nunique() == 94
    assert every.table.emotion.value_counts().to_dict() == {
        "disgust": 250, "surprise": 187, "others": 161, "fear": 86, "anger": 64, "sad": 57, "happy": 55}
    assert sum("'Others' read as 'others'" in q for q in every.quirks) == 3
    assert sum("offset 0" in q for q in every.quirks) == 2
    assert not every.table.duplicated(["subject", "clip"]).any()
    three = read_casme3(real_annotations, coding=coding, classes="3class", check_frames=False)
    assert len(three.table) == 699
    assert three.table.emotion.value_counts().to_dict() == {"negative": 457, "surprise": 187, "positive": 55}


def test_real_mmew_table_counts(real_annotations):
    db = read_mmew(real_annotations, coding=real_annotations / "MMEW_Micro_Exp_delete_others.htnet.csv",
                   check_frames=False)
    assert len(db.table) == 234 and db.table.subject.nunique() == 30
    assert db.table.emotion.value_counts().to_dict() == {
        "surprise": 89, "disgust": 72, "happiness": 36, "fear": 16, "sadness": 13, "anger": 8}
    assert db.table.subject.iloc[0] == "S01" and db.table["clip"].iloc[0] == "S01-01-001"


def test_unknown_class_sets_are_refused(real_annotations):
    with pytest.raises(ValueError, match="unknown MMEW class set"):
        read_mmew(real_annotations, classes="5class", check_frames=False)
    with pytest.raises(DatasetError, match="no coding file"):
        read_smic(real_annotations, coding="x.xlsx")

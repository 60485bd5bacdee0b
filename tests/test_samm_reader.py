import pytest

from tscnn.datasets import DatasetError, read_samm
from tscnn.synth import SynthSettings, write_database


def test_real_samm_coding_counts_and_quirks(real_annotations):
    coding = real_annotations / "SAMM_Micro_FACS_Codes_v2.xlsx"
    db = read_samm(real_annotations, coding=coding, check_frames=False)
    assert len(db.table) == 136 and db.table.subject.nunique() == 27
    assert db.table.emotion.value_counts().to_dict() == {
        "Anger": 57, "Happiness": 26, "Other": 26, "Surprise": 15, "Contempt": 12}
    assert db.table.subject.iloc[0] == "006"  # zero-padded text ids, as the folders
    assert len(db.quirks) == 2
    assert any("028_4_1" in q for q in db.quirks) and any("032_3_1" in q for q in db.quirks)
    assert len(read_samm(real_annotations, coding=coding, classes="3class", check_frames=False).table) == 133


def test_synthetic_samm_layout_loads_unchanged(tmp_path):
    write_database(tmp_path, SynthSettings(subjects=3, seed=2, layout="samm"))
    db = read_samm(tmp_path, classes="all")
    assert len(db.table) > 20 and db.table.subject.nunique() == 3
    assert db.table.cropped.all()
    row = db.table.iloc[0]
    assert row.apex_path.split("/")[-1].startswith(f"{row.subject}_")
    paddings = {len(p.split("_")[-1].split(".")[0]) for p in db.table.onset_path}
    assert paddings == {4, 5}  # per-clip zero padding, parsed not assumed


def test_samm_missing_frame_is_named(tmp_path):
    write_database(tmp_path, SynthSettings(subjects=2, seed=2, layout="samm"))
    row = read_samm(tmp_path, classes="all").table.iloc[0]
    (tmp_path / row.onset_path).unlink()
    with pytest.raises(DatasetError, match=f"{row.subject}/{row['clip']}: onset frame {row.onset} is missing"):
        read_samm(tmp_path, classes="all")

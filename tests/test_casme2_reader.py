import shutil

import pytest

from tscnn.datasets import DatasetError, read_casme2
from tscnn.datasets.base import list_frames, resolve_apex


def test_real_2014_coding_gives_246_five_class_clips(real_annotations):
    db = read_casme2(real_annotations, coding=real_annotations / "CASME2-coding-20140508.xlsx", check_frames=False)
    assert len(db.table) == 246
    assert db.table.subject.nunique() == 26
    assert db.table.emotion.value_counts().to_dict() == {
        "others": 99, "disgust": 63, "happiness": 32, "repression": 27, "surprise": 25}
    assert db.classes == ("disgust", "happiness", "repression", "surprise", "others")
    # The '/' apex of sub04/EP12_01f is resolved by the documented rule and reported.
    row = db.table[(db.table.subject == "sub04") & (db.table["clip"] == "EP12_01f")].iloc[0]
    assert row.apex_rule == "middle" and row.apex == (row.onset + row.offset) // 2
    assert len(db.quirks) == 1 and "sub04/EP12_01f" in db.quirks[0]


def test_real_2019_coding_and_all_classes(real_annotations):
    db = read_casme2(real_annotations, coding=real_annotations / "CASME2-coding-20190701.xlsx", check_frames=False)
    assert len(db.table) == 249
    every = read_casme2(real_annotations, coding=real_annotations / "CASME2-coding-20140508.xlsx",
                        classes="all", check_frames=False)
    assert len(every.table) == 255


def test_two_coding_files_in_one_folder_are_a_quirk_naming_both(real_annotations, tmp_path):
    """CASME II's 2014 and 2019 sheets list different clips (246 and 249 five-class): with both beside the
    frames and no --coding, the newest is read and the run says so."""
    for name in ("CASME2-coding-20140508.xlsx", "CASME2-coding-20190701.xlsx"):
        shutil.copy(real_annotations / name, tmp_path / name)
    db = read_casme2(tmp_path, check_frames=False)
    assert len(db.table) == 249
    both = [q for q in db.quirks if "several CASME II coding files" in q]
    assert len(both) == 1 and "CASME2-coding-20140508.xlsx, CASME2-coding-20190701.xlsx" in both[0]
    assert "read CASME2-coding-20190701.xlsx" in both[0] and "--coding" in both[0]
    chosen = read_casme2(tmp_path, coding=tmp_path / "CASME2-coding-20140508.xlsx", check_frames=False)
    assert len(chosen.table) == 246 and not any("several" in q for q in chosen.quirks)
    (tmp_path / "CASME2-coding-20190701.xlsx").unlink()
    assert not any("several" in q for q in read_casme2(tmp_path, check_frames=False).quirks)


def test_synthetic_database_loads_unchanged(synth_db, synth_root):
    t = synth_db.table
    assert len(t) > 40 and t.subject.nunique() == 6
    assert set(t.emotion) <= set(synth_db.classes)
    assert t.cropped.all()
    first = t.iloc[0]
    assert first.apex_path.endswith(f"reg_img{first.apex}.jpg")


def test_frame_numbers_sort_numerically(tmp_path):
    for n in (9, 10, 100):
        (tmp_path / f"img{n}.jpg").write_bytes(b"x")
    assert sorted(list_frames(tmp_path)) == [9, 10, 100]


def test_missing_frame_names_clip_and_folder(synth_root, tmp_path):
    root = tmp_path / "db"
    shutil.copytree(synth_root, root)
    db = read_casme2(root)
    row = db.table.iloc[0]
    (root / row.subject / row["clip"] / f"reg_img{row.apex}.jpg").unlink()
    with pytest.raises(DatasetError, match=f"{row.subject}/{row['clip']}.*apex frame {row.apex} is missing"):
        read_casme2(root)


def test_nested_cropped_layout_and_raw_prefix(synth_root, tmp_path):
    nested = tmp_path / "CASME2" / "Cropped" / "Cropped"
    shutil.copytree(synth_root, nested)
    coding = next(nested.glob("*.xlsx"))
    db = read_casme2(tmp_path / "CASME2", coding=coding)
    assert len(db.table) == len(read_casme2(synth_root).table)
    # RAW_selected frames are named imgN.jpg and are not face crops.
    raw = tmp_path / "raw"
    for sub in synth_root.glob("sub*"):
        for clip in sub.iterdir():
            (raw / sub.name / clip.name).mkdir(parents=True)
            for f in clip.iterdir():
                shutil.copy(f, raw / sub.name / clip.name / f.name.replace("reg_img", "img"))
    raw_db = read_casme2(raw, coding=coding)
    assert not raw_db.table.cropped.any()
    assert raw_db.table.iloc[0].apex_path.endswith(f"/img{raw_db.table.iloc[0].apex}.jpg")


def test_apex_rule():
    assert resolve_apex(10, "15", 20, "x") == (15, "annotated", None)
    apex, rule, quirk = resolve_apex(10, "/", 20, "file row 3 clip sub04/EP12_01f")
    assert (apex, rule) == (15, "middle") and "sub04/EP12_01f" in quirk and "middle" in quirk
    apex, rule, quirk = resolve_apex(10, 25, 20, "x")
    assert (apex, rule) == (15, "middle") and "outside" in quirk
    with pytest.raises(ValueError, match="apex fallback"):
        resolve_apex(10, "/", 20, "x", fallback="guess")


def test_invalid_apex_uses_the_spotter_when_frames_exist(synth_root, tmp_path):
    """A '/' apex with frames on disk: the spotter picks a frame inside [onset, offset], and it is reported."""
    from openpyxl import load_workbook

    root = tmp_path / "db"
    shutil.copytree(synth_root, root)
    coding = next(root.glob("*.xlsx"))
    wb = load_workbook(coding)
    wb.active.cell(row=2, column=5).value = "/"
    wb.save(coding)
    row = read_casme2(root).table.iloc[0]
    assert row.apex_rule == "spotter" and row.onset < row.apex < row.offset
    middle = read_casme2(root, apex_fallback="middle").table.iloc[0]
    assert middle.apex_rule == "middle" and middle.apex == (row.onset + row.offset) // 2


def test_bad_spreadsheet_and_emotion(synth_root, tmp_path):
    bad = tmp_path / "bad.xlsx"
    from openpyxl import Workbook

    wb = Workbook()
    wb.active.append(["Subject", "Filename"])
    wb.save(bad)
    with pytest.raises(DatasetError, match="missing columns"):
        read_casme2(synth_root, coding=bad)
    with pytest.raises(DatasetError, match="does not exist"):
        read_casme2(synth_root, coding=tmp_path / "nope.xlsx")

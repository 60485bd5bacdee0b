"""Bad input gives an error that names the file and the clip; known quirks are resolved and reported."""

import shutil

import pytest
from openpyxl import load_workbook

from tscnn.config import Config
from tscnn.datasets import DatasetError, read_casme2, read_mmew, read_smic
from tscnn.preprocessing.prepare import prepare
from tscnn.synth import SynthSettings, write_database


@pytest.fixture()
def casme2_copy(synth_root, tmp_path):
    root = tmp_path / "db"
    shutil.copytree(synth_root, root)
    return root


def edit_first_row(root, column: int, value) -> tuple[str, str]:
    """Set one cell of the first clip's row in the CASME II coding sheet; returns (subject, clip)."""
    coding = next(root.glob("*.xlsx"))
    wb = load_workbook(coding)
    ws = wb.active
    ws.cell(row=2, column=column).value = value
    wb.save(coding)
    return f"sub{int(ws.cell(row=2, column=1).value):02d}", ws.cell(row=2, column=2).value


def test_unknown_label_names_file_row_and_clip(casme2_copy):
    subject, clip = edit_first_row(casme2_copy, 9, "joy")
    with pytest.raises(DatasetError, match=rf"CASME2-coding-synthetic.xlsx row 2: clip {subject}/{clip}: unknown "
                                           r"emotion 'joy'"):
        read_casme2(casme2_copy)


def test_offset_beyond_the_clip_names_file_and_clip(casme2_copy):
    subject, clip = edit_first_row(casme2_copy, 6, 99999)
    with pytest.raises(DatasetError, match=rf"row 2: clip {subject}/{clip}: offset frame 99999 is missing from "
                                           r".*frames on disk"):
        read_casme2(casme2_copy)


def test_non_numeric_onset_names_file_and_clip(casme2_copy):
    subject, clip = edit_first_row(casme2_copy, 4, "x12")
    with pytest.raises(DatasetError, match=rf"row 2: clip {subject}/{clip}: onset 'x12' is not a frame number"):
        read_casme2(casme2_copy)
    edit_first_row(casme2_copy, 4, None)
    with pytest.raises(DatasetError, match=rf"row 2: clip {subject}/{clip}: onset is empty"):
        read_casme2(casme2_copy)


def test_apex_outside_onset_offset_is_resolved_and_reported(casme2_copy):
    subject, clip = edit_first_row(casme2_copy, 5, 99999)
    db = read_casme2(casme2_copy)
    row = db.table.iloc[0]
    assert row.apex_rule == "spotter" and row.onset <= row.apex <= row.offset
    assert len(db.quirks) == 1
    assert f"row 2 clip {subject}/{clip}: apex 99999 outside [onset" in db.quirks[0]


def test_empty_clip_folder_names_the_folder(casme2_copy):
    row = read_casme2(casme2_copy).table.iloc[0]
    for frame in (casme2_copy / row.subject / row["clip"]).iterdir():
        frame.unlink()
    with pytest.raises(DatasetError, match=rf"clip {row.subject}/{row['clip']}: no frames found in .*{row['clip']}"):
        read_casme2(casme2_copy)


def test_corrupt_image_names_file_and_clip(casme2_copy, tmp_path):
    db = read_casme2(casme2_copy)
    row = db.table.iloc[0]
    with open(row.apex_path, "wb") as f:
        f.write(b"not a jpeg")
    with pytest.raises(DatasetError, match=rf"clip casme2:{row.subject}/{row['clip']}: cannot read image .*"
                                           rf"reg_img{row.apex}.jpg"):
        prepare(db.table.iloc[:1], Config().prep(), tmp_path / "cache", progress=False)


@pytest.fixture(scope="module")
def smic_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("smic")
    write_database(root, SynthSettings(subjects=2, seed=1, layout="smic"))
    return root


def test_smic_unknown_emotion_folder_and_empty_clip(smic_root, tmp_path):
    root = tmp_path / "smic"
    shutil.copytree(smic_root, root)
    clip_dir = next((root / "HS" / "s1" / "micro").glob("*/*"))
    for frame in clip_dir.iterdir():
        frame.unlink()
    with pytest.raises(DatasetError, match=rf"{clip_dir}: clip s01/s01_.*: no frames found"):
        read_smic(root, apex_fallback="middle")
    clip_dir.rmdir()
    (root / "HS" / "s1" / "micro" / "joy").mkdir()
    with pytest.raises(DatasetError, match=r"micro/joy: unknown emotion folder 'joy'"):
        read_smic(root, apex_fallback="middle")


def test_smic_corrupt_frame_is_named_by_the_spotter(smic_root, tmp_path):
    root = tmp_path / "smic"
    shutil.copytree(smic_root, root)
    frame = sorted(next((root / "HS" / "s1" / "micro").glob("*/*")).iterdir())[3]
    frame.write_bytes(b"garbage")
    with pytest.raises(DatasetError, match=rf"SMIC-HS clip s01/.*cannot read image {frame}"):
        read_smic(root)


def test_mmew_unknown_emotion(tmp_path):
    (tmp_path / "MMEW_Micro_Exp.csv").write_text(
        "Subject,Filename,OnsetFrame,ApexFrame,OffsetFrame,Action Units,Estimated Emotion,remarks\n"
        "1,S01-01-001,1,15,31,6+12,happiness,\n2,S02-01-001,1,5,9,4,boredom,\n")
    with pytest.raises(DatasetError, match=r"MMEW_Micro_Exp.csv row 3: clip S02/S02-01-001: unknown emotion "
                                           r"'boredom'"):
        read_mmew(tmp_path, check_frames=False)


def test_no_face_found_names_file_and_clip(casme2_copy, tmp_path):
    import cv2
    import numpy as np

    db = read_casme2(casme2_copy)
    rows = db.table.iloc[:1].copy()
    rows["cropped"] = False  # as for RAW frames: the face must be detected
    shape = cv2.imread(rows.iloc[0].onset_path).shape
    cv2.imwrite(rows.iloc[0].onset_path, np.full(shape, 128, np.uint8))  # a flat frame: no face in it
    with pytest.raises(DatasetError, match=rf"clip casme2:{rows.iloc[0].subject}/.*: no face found in "
                                           rf"{rows.iloc[0].onset_path}"):
        prepare(rows, Config().prep(), tmp_path / "cache", progress=False)

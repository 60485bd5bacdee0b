"""Bad input gives an error that names the file and the clip; known quirks are resolved and reported."""

import shutil

import pandas as pd
import pytest
from openpyxl import load_workbook

from tscnn.cli import main
from tscnn.config import Config
from tscnn.datasets import (
    READERS,
    DatasetError,
    load_database,
    read_casme2,
    read_casme3,
    read_flowfolder,
    read_mmew,
    read_samm,
    read_smic,
)
from tscnn.datasets.fer2013 import read_fer2013
from tscnn.preprocessing.prepare import PrepSettings, prepare
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
        prepare(db.table.iloc[:1], PrepSettings.from_config(Config()), tmp_path / "cache", progress=False)


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
        prepare(rows, PrepSettings.from_config(Config()), tmp_path / "cache", progress=False)


# Spreadsheets the library cannot read, and a missing --root: one line naming the file.

XLSX_READERS = {"casme2": read_casme2, "samm": read_samm, "casme3": read_casme3, "mmew": read_mmew}


def real_xlsx(path):
    """A small but real workbook (several rows, so that half of its bytes is a truncated zip archive)."""
    pd.DataFrame({"Subject": ["01"] * 40, "Filename": [f"EP{i:02d}_01f" for i in range(40)],
                  "OnsetFrame": range(40), "ApexFrame": range(40), "OffsetFrame": range(40),
                  "Estimated Emotion": ["happiness"] * 40}).to_excel(path, index=False)
    return path


def one_line_error(call, *args, **kwargs) -> str:
    with pytest.raises(DatasetError) as caught:
        call(*args, **kwargs)
    message = str(caught.value)
    assert "\n" not in message, message
    return message


@pytest.mark.parametrize("name", sorted(XLSX_READERS))
def test_truncated_xlsx_names_the_file(name, tmp_path):
    whole = real_xlsx(tmp_path / "whole.xlsx").read_bytes()
    cut = tmp_path / "coding.xlsx"
    cut.write_bytes(whole[:len(whole) // 2])
    message = one_line_error(XLSX_READERS[name], tmp_path, coding=cut, check_frames=False)
    assert message == f"{cut}: cannot read this spreadsheet (the workbook is truncated or damaged (its zip archive " \
                      "is incomplete))"


@pytest.mark.parametrize("name", sorted(XLSX_READERS))
def test_text_renamed_xlsx_names_the_file(name, tmp_path):
    fake = tmp_path / "coding.xlsx"
    fake.write_text("Subject,Filename,OnsetFrame\n01,EP02_01f,46\n")
    message = one_line_error(XLSX_READERS[name], tmp_path, coding=fake, check_frames=False)
    assert message.startswith(f"{fake}: cannot read this spreadsheet (not an Excel workbook")


def test_empty_xlsx_found_in_the_root_names_the_file(tmp_path):
    (tmp_path / "CASME2-coding-2019.xlsx").write_bytes(b"")
    message = one_line_error(read_casme2, tmp_path)
    assert message == f"{tmp_path / 'CASME2-coding-2019.xlsx'}: cannot read this spreadsheet (the file is empty)"


def test_cli_prints_one_line_for_a_truncated_xlsx(tmp_path, capsys):
    whole = real_xlsx(tmp_path / "whole.xlsx").read_bytes()
    cut = tmp_path / "cut.xlsx"
    cut.write_bytes(whole[:len(whole) // 2])
    assert main(["datasets", "describe", "casme2", str(tmp_path), "--coding", str(cut), "--annotations-only"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {cut}: cannot read this spreadsheet") and err.count("\n") == 1, err


def test_non_csv_files_name_the_file(tmp_path):
    binary = tmp_path / "MMEW_Micro_Exp.csv"
    binary.write_bytes(real_xlsx(tmp_path / "x.xlsx").read_bytes())  # a workbook renamed .csv
    assert one_line_error(read_mmew, tmp_path, check_frames=False).startswith(
        f"{binary}: cannot read this CSV file (")
    fer = tmp_path / "fer2013.csv"
    fer.write_bytes(binary.read_bytes())
    assert one_line_error(read_fer2013, fer).startswith(f"{fer}: cannot read this CSV file (")
    ragged = tmp_path / "ragged.csv"
    ragged.write_text('emotion,pixels,Usage\n0,"1 2 3,Training\n')  # an unclosed quote
    assert one_line_error(read_fer2013, ragged).startswith(f"{ragged}: cannot read this CSV file (")


def test_flow_folder_index_that_is_not_csv_names_the_file(tmp_path):
    (tmp_path / "index.csv").write_bytes(bytes(range(256)) * 4)
    assert one_line_error(read_flowfolder, tmp_path).startswith(f"{tmp_path / 'index.csv'}: cannot read this CSV")


@pytest.mark.parametrize("name", sorted(READERS))
def test_missing_root_is_reported_as_such(name, tmp_path):
    missing = tmp_path / "no-such-folder"
    message = one_line_error(load_database, name, str(missing))
    assert message.endswith(f"database folder {missing} does not exist"), message
    assert "coding" not in message and "index" not in message


def test_root_that_is_a_file_is_reported_as_such(tmp_path):
    not_a_folder = real_xlsx(tmp_path / "CASME2-coding-2019.xlsx")
    assert one_line_error(read_casme2, not_a_folder) == f"CASME II database folder {not_a_folder} is not a folder"


def test_non_numeric_subject_names_file_and_row(casme2_copy):
    coding = next(casme2_copy.glob("*.xlsx"))
    wb = load_workbook(coding)
    wb.active.cell(row=2, column=1).value = "sub one"
    wb.save(coding)
    with pytest.raises(DatasetError, match=r"CASME2-coding-synthetic.xlsx row 2: clip EP\S+: subject 'sub one' is "
                                           r"not a subject number"):
        read_casme2(casme2_copy)

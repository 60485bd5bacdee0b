"""Key-frame databases (only the onset, apex and offset frames of each clip on disk): what runs on them, what
refuses and how, and the apex rule of a key-frame clip with no valid apex. Fixture: a small synthetic CASME II
database and a copy of it with every other frame deleted; the real key frames are read when present."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tscnn.cli import main
from tscnn.datasets import DatasetError, read_casme2, read_flowfolder, write_flow_folder
from tscnn.datasets.base import resolve_apex
from tscnn.preprocessing.keyframes import APEX_RULE, key_frame_clips, key_frame_note, key_frames_only
from tscnn.preprocessing.prepare import PrepSettings, prepare
from tscnn.synth import SynthSettings, write_database

REAL_KEYFRAMES = Path(__file__).resolve().parents[2] / "shared" / "real" / "casme2-keyframes"
FAST = {"flow": "dis", "work_size": 64, "size": 28, "augment": False}


@pytest.fixture(scope="module")
def databases(tmp_path_factory):
    """(full, key-frame) copies of one synthetic database: same coding sheet, the second holding only the
    onset, apex and offset frame of each clip."""
    root = tmp_path_factory.mktemp("keyframes")
    full = root / "full"
    write_database(full, SynthSettings(subjects=3, seed=2, clips_per_subject=3))
    keyed = root / "keyed"
    shutil.copytree(full, keyed)
    table = read_casme2(keyed, apex_fallback="middle").table
    for row in table.to_dict("records"):
        keep = {row["onset_path"], row["apex_path"], row["offset_path"]}
        for path in Path(row["frames_dir"]).iterdir():
            if str(path) not in keep:
                path.unlink()
    return full, keyed


def test_the_fixture_holds_key_frames_only(databases):
    full, keyed = databases
    db = read_casme2(keyed)
    assert len(key_frame_clips(db.table)) == len(db.table) > 0
    assert not key_frame_clips(read_casme2(full).table)
    assert "key frames only" in key_frame_note(db.table) and key_frame_note(read_casme2(full).table) == ""


def test_every_three_frame_stream_is_the_same_as_on_the_full_database(databases):
    full, keyed = databases
    a, b = read_casme2(full).table, read_casme2(keyed).table
    assert list(a.apex) == list(b.apex)  # annotated apexes: no rule involved
    settings = PrepSettings(size=28, flow="dis", work_size=64, augment=False)
    from_full = prepare(a, settings, progress=False)
    from_keys = prepare(b, settings, progress=False)
    assert set(from_keys.arrays) == {"ss", "ls", "dt", "uvs"}
    for name, array in from_keys.arrays.items():
        np.testing.assert_array_equal(array, from_full.arrays[name])


def test_flow_export_runs_on_key_frames(databases, tmp_path):
    _, keyed = databases
    db = read_casme2(keyed)
    write_flow_folder(db, tmp_path / "flows", size=28, settings=PrepSettings(flow="dis", work_size=64))
    assert len(read_flowfolder(tmp_path / "flows").table) == len(db.table)


@pytest.mark.parametrize(("model", "streams"), [("tscnn", ("ss", "ls", "dt")), ("ststnet", None),
                                                ("offapexnet", None), ("sssnet", None), ("hoof", None),
                                                ("linear", None)])
def test_models_that_read_three_frames_run(databases, tmp_path, model, streams):
    from tscnn.runner import config_for, run_experiment

    _, keyed = databases
    config = config_for(model, dataset="casme2", root=str(keyed), classes="5class", streams=streams, max_epochs=1,
                        selection="fixed", val_fraction=0.0, **FAST)
    result = run_experiment(config, tmp_path / "run", tmp_path / "cache", progress=False)
    assert len(result.predictions) == len(read_casme2(keyed).table)


def test_lbptop_refuses_in_one_line_naming_the_clip_before_any_work(databases, tmp_path, capsys):
    from tscnn.runner import config_for, run_experiment

    full, keyed = databases
    config = config_for("lbptop", dataset="casme2", root=str(keyed))
    with pytest.raises(DatasetError, match=r"^clip casme2:sub\S+ \(.*\): only 3 of the \d+ frames .* vol stream"):
        run_experiment(config, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()
    code = main(["run", "--model", "lbptop", "--dataset", "casme2", "--root", str(keyed), "--out",
                 str(tmp_path / "cli"), "--cache", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: clip casme2:") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "cli").exists()
    prepare(read_casme2(full).table.iloc[:1], PrepSettings(size=16), progress=False, streams=("vol",))  # full: runs


def test_spotting_a_key_frame_folder_refuses(databases, capsys):
    _, keyed = databases
    folder = Path(read_casme2(keyed).table.frames_dir[0])
    assert main(["spot", str(folder), "--fps", "200", "--cropped"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {folder}: only 3 of the") and "spotting needs every frame" in err


def test_apex_rule_of_a_key_frame_clip(tmp_path):
    frames = {n: tmp_path / f"img{n}.jpg" for n in (261, 300, 321)}  # sub04/EP12_01f of the real key frames
    for fallback in ("spotter", "middle"):
        apex, rule, quirk = resolve_apex(261, "/", 321, "sheet row 24 clip sub04/EP12_01f", frames, fallback)
        assert (apex, rule) == (300, APEX_RULE)
        assert quirk == ("sheet row 24 clip sub04/EP12_01f: apex '/' is not a frame number -> key frames only (3 of 61 "
                         "frames on disk; the apex spotter needs them all): middle frame present 300")
    assert resolve_apex(261, 300, 321, "x", frames)[:2] == (300, "annotated")  # a valid apex stays
    five = {n: tmp_path / f"img{n}.jpg" for n in (0, 10, 20, 30, 90)}
    assert resolve_apex(0, None, 90, "x", five)[0] == 20  # the middle of the frames between onset and offset
    with pytest.raises(DatasetError, match=r"^x: no apex annotated, and only key frames are on disk \(2 of 91"):
        resolve_apex(0, None, 90, "x", {0: tmp_path / "a", 90: tmp_path / "b"})
    # A span missing only a frame or two is not key frames only.
    assert not key_frames_only([*range(0, 10), *range(12, 30)], 0, 29) and key_frames_only([0, 15, 29], 0, 29)


def test_real_casme2_key_frames_describe():
    if not (REAL_KEYFRAMES / "Cropped").is_dir():
        pytest.skip("../shared/real/casme2-keyframes is absent")
    db = read_casme2(REAL_KEYFRAMES)
    assert len(db.table) == 218 and db.table.subject.nunique() == 26
    row = db.table[(db.table.subject == "sub04") & (db.table["clip"] == "EP12_01f")].iloc[0]
    assert (row.apex, row.apex_rule) == (300, APEX_RULE)
    assert len(key_frame_clips(db.table)) == 218
    part = db.table.iloc[:2]
    prepared = prepare(part, PrepSettings(size=28, augment=False), progress=False, streams=("ss", "ls", "dt", "uvs"))
    assert prepared.arrays["ss"].shape == (2, 1, 1, 28, 28) and prepared.arrays["dt"].shape == (2, 1, 4, 28, 28)
    with pytest.raises(DatasetError, match="key frames only"):
        prepare(part, PrepSettings(size=28), progress=False, streams=("vol",))

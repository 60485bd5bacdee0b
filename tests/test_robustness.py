"""Nothing lost, nothing silent: every option refused in one line before any work, one writer per results folder,
Ctrl-C mid-fold resumed to the uninterrupted predictions, user folders never written into, damaged inputs named."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from test_protocols_and_recipes import learnable_folder

from tscnn.cli import main
from tscnn.config import DOMAINS, Config, Domain
from tscnn.datasets import DatasetError, read_casme2, read_flowfolder
from tscnn.errors import SettingError, SpotWarning, option_name
from tscnn.predict import read_clip
from tscnn.preprocessing.frames import read_grey, write_flow_image
from tscnn.results_folder import HOLDER, MARKER, atomic_write_text, exclusive
from tscnn.spot import open_source, spot

SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.fixture(scope="module")
def flows(tmp_path_factory) -> Path:
    return learnable_folder(tmp_path_factory.mktemp("flows"))


def one_line(capsys, argv: list[str]) -> str:
    """The command's stderr, asserted to be one ``error:`` line with exit status 2."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def bad_value(domain: Domain, default: object) -> object:
    """A value outside ``domain``: an unknown name, a number below its bound, a repeated or empty list."""
    if domain.choices is not None:
        return "no-such-name"
    if isinstance(default, tuple):
        if domain.low is not None:
            return (-1,)
        return ("a", "a")
    if domain.high is not None and domain.low == 0 and not domain.low_open:
        return domain.high + 0.5
    return type(default)(domain.low - 1 if not domain.low_open else domain.low)


@pytest.mark.parametrize("name", sorted(DOMAINS))
def test_every_setting_outside_its_domain_is_refused_by_the_dataclass(name):
    value = bad_value(DOMAINS[name], getattr(Config(), name))
    with pytest.raises(SettingError) as caught:
        Config(**{name: value})
    message = str(caught.value)
    assert message.startswith(f"{option_name(name)}: ") and "(got " in message and "\n" not in message


def test_every_number_of_the_settings_has_a_domain():
    numbers = [f for f, v in Config().to_dict().items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    assert set(numbers) <= set(DOMAINS)


CLI_CASES = [  # one bad value for each numeric or list setting of the command line
    ("--threads", "-2"), ("--max-epochs", "0"), ("--lr", "-1"), ("--seeds", "-1"), ("--jobs", "0"),
    ("--batch-size", "0"), ("--dropout", "1.5"), ("--weight-decay", "-1"), ("--max-new-folds", "-1"),
    ("--streams", "dt,dt"), ("--size", "4"), ("--blocks", "0"), ("--work-size", "0"), ("--dense1", "0"),
    ("--dense2", "-3"), ("--momentum", "2"), ("--patience", "0"), ("--val-fraction", "1"),
    ("--train-fraction", "0"), ("--average-last", "-1"), ("--mixup", "-0.5"), ("--data-seed", "-1"),
    ("--seeds", "0,0"), ("--train-datasets", "casme2,casme2"),
]


@pytest.mark.parametrize("option,value", CLI_CASES)
def test_a_bad_option_of_run_is_one_line_before_any_work(option, value, tmp_path, capsys):
    out = tmp_path / "out"
    err = one_line(capsys, ["run", "--root", str(tmp_path / "db"), "--preset", "demo", "--streams", "dt",
                            "--out", str(out), option, value])
    assert err.startswith(f"error: {option}: ") and f"(got {value}" in err
    assert not out.exists()


@pytest.mark.parametrize("argv,option", [
    (["table", "streams", "--root", "db", "--lr", "-1"], "--lr"),
    (["train", "--root", "db", "--batch-size", "0"], "--batch-size"),
    (["predict", "model.pt", "clip", "--onset", "-1"], "--onset"),
    (["spot", "video.mp4", "--z", "-1"], "--z"),
    (["spot", "frames", "--fps", "0"], "--fps"),
    (["export", "model.pt", "model.onnx", "--tolerance", "-1"], "--tolerance"),
    (["synth", "db", "--subjects", "0"], "--subjects"),
    (["demo", "--seeds", "-2"], "--seeds"),
    (["pretrain", "--max-epochs", "0"], "--max-epochs"),
])
def test_every_command_checks_its_options_first(argv, option, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert one_line(capsys, argv).startswith(f"error: {option}: ")
    assert not any(tmp_path.iterdir())  # nothing created


def test_spot_settings_and_export_check_their_domain_in_the_api(tmp_path):
    from tscnn.export import export_onnx
    from tscnn.spot import SpotSettings

    with pytest.raises(SettingError, match=r"^--z: must be positive \(got -1"):
        SpotSettings(z=-1)
    with pytest.raises(SettingError, match=r"^--tolerance: must be positive"):
        export_onnx(tmp_path / "model.pt", tmp_path / "model.onnx", tolerance=-1)


def flow_run(flows: Path, out: Path, cache: Path, *extra: str) -> list[str]:
    return ["run", "--dataset", "flowfolder", "--root", str(flows), "--model", "ststnet", "--classes", "all",
            "--lr", "5e-3", "--batch-size", "8", "--threads", "1", "--out", str(out), "--cache", str(cache), *extra]


def test_a_stored_config_outside_its_domain_is_refused_naming_the_file(flows, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(flow_run(flows, out, tmp_path / "cache", "--max-epochs", "1", "--max-new-folds", "0")) == 0
    stored = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps({**stored, "lr": -1}))
    capsys.readouterr()
    err = one_line(capsys, flow_run(flows, out, tmp_path / "cache", "--max-epochs", "1"))
    assert err == f"error: {out / 'config.json'}: --lr: must be positive (got -1)"


def test_a_folder_that_is_not_a_results_folder_is_never_written(flows, tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "report.md").write_text("my notes")
    err = one_line(capsys, flow_run(flows, mine, tmp_path / "cache", "--max-epochs", "1"))
    assert str(mine) in err and "not empty" in err
    assert sorted(p.name for p in mine.iterdir()) == ["report.md"] and (mine / "report.md").read_text() == "my notes"


def test_a_late_failure_leaves_no_results_folder_behind(flows, tmp_path, capsys, monkeypatch):
    """A data error found while preparing, after the folder was made: the folder this run created is removed,
    so the corrected command is not refused as 'a run with other settings'."""
    from tscnn import runner

    def broken(*args, **kwargs):
        raise DatasetError("clip x: cannot read image y (corrupt, or not an image)")
    out = tmp_path / "out"
    monkeypatch.setattr(runner, "prepare", broken)
    assert one_line(capsys, flow_run(flows, out, tmp_path / "cache")) == \
        "error: clip x: cannot read image y (corrupt, or not an image)"
    assert not out.exists()


def test_synth_refuses_a_folder_that_is_not_empty(tmp_path, capsys):
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / "old.txt").write_text("x")
    assert "must be a new or empty folder" in one_line(capsys, ["synth", str(tmp_path / "db"), "--subjects", "2"])
    assert [p.name for p in (tmp_path / "db").iterdir()] == ["old.txt"]


HOLD = ("import sys, time; from tscnn.results_folder import claim, exclusive; claim(sys.argv[1]); "
        "lock = exclusive(sys.argv[1]); lock.__enter__(); print('held', flush=True); time.sleep(60)")


def holder_process(folder: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": SRC}
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True, env=env)
    assert process.stdout.readline().strip() == "held"
    return process


def test_a_second_writer_is_refused_naming_the_holder_and_a_dead_holder_is_taken_over(flows, tmp_path, capsys):
    out = tmp_path / "run"
    first = holder_process(out)
    try:
        err = one_line(capsys, flow_run(flows, out, tmp_path / "cache", "--max-epochs", "1"))
        assert f"{out}: another run is writing this results folder (pid {first.pid} on " in err
        assert not (out / "config.json").exists()
    finally:
        first.kill()
        first.wait()
    assert (out / HOLDER).exists()  # a killed process leaves its holder file; the OS released its lock
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with exclusive(out):
            assert json.loads((out / HOLDER).read_text())["pid"] == os.getpid()
    assert any(f"pid {first.pid}" in str(w.message) and "took over" in str(w.message) for w in seen)
    assert not (out / HOLDER).exists()


def test_ctrl_c_in_the_middle_of_a_fold_saves_what_is_done_and_the_resume_is_identical(flows, tmp_path):
    """A real SIGINT after the first fold is saved (the second one training): exit 130, one line saying what
    is saved, no temporary file; the same command resumes to the uninterrupted run's predictions."""
    cache = tmp_path / "cache"
    args = flow_run(flows, tmp_path / "interrupted", cache, "--max-epochs", "40")
    assert main(flow_run(flows, tmp_path / "whole", cache, "--max-epochs", "40")) == 0
    folds = tmp_path / "interrupted" / "seed_0" / "folds"
    process = subprocess.Popen([sys.executable, "-m", "tscnn.cli", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": SRC})
    deadline = time.monotonic() + 50
    while not list(folds.glob("*.json")) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    saved = len(list(folds.glob("*.json")))
    assert 1 <= saved < 6  # interrupted inside a fold, not after the last
    lines = err.strip().splitlines()
    assert lines[-1] == (f"interrupted: {tmp_path / 'interrupted'}: {saved} finished fold(s) saved; run the same "
                         "command again to resume from them") and "Traceback" not in err
    assert not list((tmp_path / "interrupted").glob("**/*.tmp"))
    assert main(args) == 0
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "interrupted" / "predictions.csv"),
                                  pd.read_csv(tmp_path / "whole" / "predictions.csv"))


def test_atomic_write_leaves_the_old_file_whole_on_failure(tmp_path):
    path = tmp_path / "record.json"
    atomic_write_text(path, "old")
    with pytest.raises(TypeError):
        atomic_write_text(path, None)  # type: ignore[arg-type]
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["record.json"]


def half_cut(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    return path


def copy_clip(synth_root: Path, tmp_path: Path) -> tuple[Path, list[Path]]:
    row = read_casme2(synth_root).table.iloc[0]
    folder = tmp_path / "clip"
    folder.mkdir()
    for frame in sorted(Path(row.frames_dir).iterdir()):
        (folder / frame.name).write_bytes(frame.read_bytes())
    return folder, sorted(folder.iterdir())


def test_a_jpeg_cut_to_half_is_an_error_naming_the_file(synth_root, tmp_path, capsys):
    folder, frames = copy_clip(synth_root, tmp_path)
    assert cv2.imread(str(half_cut(frames[1])), cv2.IMREAD_GRAYSCALE) is not None  # OpenCV alone decodes it
    with pytest.raises(DatasetError, match=rf"clip c1: cannot read image {frames[1]} \(truncated: the JPEG"):
        read_grey(frames[1], "c1")
    with pytest.raises(DatasetError, match=rf"cannot read image {frames[1]} \(truncated"):
        read_clip(folder)
    err = one_line(capsys, ["spot", str(folder), "--fps", "200", "--cropped"])
    assert str(frames[1]) in err and "truncated" in err


def test_frames_of_different_sizes_and_a_single_frame_are_named(synth_root, tmp_path):
    from tscnn.predict import predict_frames

    folder, frames = copy_clip(synth_root, tmp_path)
    image = cv2.imread(str(frames[2]), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(frames[2]), cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2)))
    with pytest.raises(DatasetError, match=rf"{folder}: frame {frames[2]} is \d+x\d+ px, the first frame"):
        read_clip(folder)
    with pytest.raises(DatasetError, match="clip.mp4: 1 frame\\(s\\); a clip needs at least two"):
        predict_frames(None, [image], [0], "clip.mp4")


def test_a_flow_image_of_another_size_is_an_error_naming_it(flows, tmp_path, capsys):
    folder = tmp_path / "flows"
    index = pd.read_csv(flows / "index.csv")
    for relative in index.flow:
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_bytes((flows / relative).read_bytes())
    index.to_csv(folder / "index.csv", index=False)
    odd = folder / index.flow.iloc[3]
    write_flow_image(odd, np.random.default_rng(0).random((3, 40, 40)))
    with pytest.raises(DatasetError, match=rf"row 5: clip .*: flow image {odd} is 40x40 px, the folder's others 28x28"):
        read_flowfolder(folder)
    assert str(odd) in one_line(capsys, ["datasets", "describe", "flowfolder", str(folder)])


def test_clips_outside_the_class_set_are_counted_and_named(synth_root):
    every = read_casme2(synth_root, classes="all", check_frames=False)
    three = read_casme2(synth_root, classes="3class", check_frames=False)
    ids = lambda db: set(db.table["subject"] + "/" + db.table["clip"])  # noqa: E731
    dropped = sorted(ids(every) - ids(three))
    assert dropped and sorted(clip for clip, _ in three.left_out) == dropped
    text = three.describe()
    assert f"{len(dropped)} clips outside the class set, left out: " in text and dropped[0] in text


def test_spot_reports_the_folders_own_frame_numbers_and_warns_on_a_short_video(synth_root, tmp_path):
    folder, frames = copy_clip(synth_root, tmp_path)
    source = open_source(folder, fps=200)
    numbers = sorted(int("".join(filter(str.isdigit, f.name))) for f in frames)
    assert source.numbers == numbers and numbers[0] > 0
    with pytest.warns(SpotWarning, match="too short to spot in"):
        result = spot(source, cropped=True)
    assert all(numbers[0] <= n <= numbers[-1] for iv in result.intervals for n in (iv.onset, iv.apex, iv.offset))
    three = tmp_path / "three"
    three.mkdir()
    for frame in frames[:3]:
        (three / frame.name).write_bytes(frame.read_bytes())
    with pytest.warns(SpotWarning, match=r"3 frames at 30 fps\), too short"):
        spot(three, cropped=True, fps=30)


def test_warnings_are_one_line_each(capsys):
    from tscnn.console import plain_warnings

    before = warnings.showwarning
    try:
        plain_warnings()
        warnings.warn_explicit("first line of a library's warning\nand its second", UserWarning, "lib.py", 3)
    finally:
        warnings.showwarning = before
    assert capsys.readouterr().err == "warning: first line of a library's warning\n"


def test_the_marker_is_written_when_a_run_makes_its_folder(flows, tmp_path):
    out = tmp_path / "run"
    assert main(flow_run(flows, out, tmp_path / "cache", "--max-epochs", "1", "--max-new-folds", "1")) == 0
    assert (out / MARKER).is_file()
    assert main(flow_run(flows, out, tmp_path / "cache", "--max-epochs", "1", "--max-new-folds", "1")) == 0

"""Apex face images in a flow folder: the ``apex`` column and the sibling layout, the SS / LS / DT streams they
give, their errors, TSCNN's three streams run end to end, and the real composite loaded (no training)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from clip_folders import write_clip_index

from tscnn.cli import main
from tscnn.datasets import DatasetError, read_casme2, read_flowfolder
from tscnn.datasets.apeximages import attach_apex_images, has_apex_images
from tscnn.datasets.flowfolder import write_flow_image
from tscnn.preprocessing.prepare import PrepSettings, available_streams, cache_path, prepare
from tscnn.preprocessing.streams import normalised_uvs_variants
from tscnn.synth import SynthSettings, write_database

REAL = Path(__file__).resolve().parents[2] / "shared" / "real"
CLASSES = ("negative", "positive", "surprise")


def _clips(subjects: int = 3, per_subject: int = 3) -> list[tuple[str, str, str, int, str]]:
    return [("casme2", f"sub{s:02d}", f"EP{i:02d}", i % 3, CLASSES[i % 3])
            for s in range(1, subjects + 1) for i in range(per_subject)]


def _apex_face(rng: np.random.Generator, label: int, side: int = 40) -> np.ndarray:
    """A BGR 'face': noise plus a bright square whose place is the class."""
    image = rng.integers(0, 60, (side, side, 3)).astype(np.uint8)
    r, c = ((4, 4), (4, 22), (22, 13))[label]
    image[r:r + 14, c:c + 14] = 220
    return image


def _flow_maps(rng: np.random.Generator, label: int, side: int = 28) -> np.ndarray:
    maps = rng.normal(0, 0.1, (3, side, side))
    r, c = ((3, 3), (3, 16), (16, 10))[label]
    maps[:, r:r + 9, c:c + 9] += 1.0
    low, high = maps.min(axis=(1, 2), keepdims=True), maps.max(axis=(1, 2), keepdims=True)
    return (maps - low) / (high - low)


def make_flow_folder(root: Path, clips, apex_column: bool, seed: int = 0) -> Path:
    """A flow folder, with the apex images named in its own index (``apex_column``) or not."""
    rng = np.random.default_rng(seed)

    def write_files(subject: str, clip: str, label: int) -> dict[str, str]:
        files = {"flow": f"flow/{subject}_{clip}.png"}
        write_flow_image(root / files["flow"], _flow_maps(rng, label))
        if apex_column:
            files["apex"] = _write_apex_face(root, subject, clip, _apex_face(rng, label))
        return files

    return write_clip_index(root, clips, write_files)


def make_sibling(root: Path, clips, seed: int = 1) -> Path:
    """The layout of megc2019-apex224: index.csv (the flow folder's keys + apex) and apex/<subject>_<clip>.jpg."""
    rng = np.random.default_rng(seed)
    return write_clip_index(root, clips, lambda subject, clip, label: {
        "apex": _write_apex_face(root, subject, clip, _apex_face(rng, label))})


def _write_apex_face(root: Path, subject: str, clip: str, image: np.ndarray) -> str:
    relative = f"apex/{subject}_{clip}.jpg"
    (root / "apex").mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(root / relative), image)
    return relative


@pytest.fixture
def sibling_pair(tmp_path):
    clips = _clips()
    return make_flow_folder(tmp_path / "flows", clips, apex_column=False), make_sibling(tmp_path / "apex", clips)


def test_without_apex_images_a_flow_folder_refuses_ss_and_ls(sibling_pair):
    flows, _ = sibling_pair
    db = read_flowfolder(flows)
    assert available_streams(db.table) == ("uvs",) and not has_apex_images(db.table)
    with pytest.raises(DatasetError, match=r"gives only the uvs stream; asked for ss, ls, dt \(.*--apex-root"):
        prepare(db.table, PrepSettings(size=28), progress=False, streams=("ss", "ls", "dt"))


def test_sibling_folder_gives_every_stream(sibling_pair, tmp_path):
    flows, apex = sibling_pair
    db = attach_apex_images(read_flowfolder(flows), apex)
    assert has_apex_images(db.table) and available_streams(db.table) == ("ss", "ls", "dt", "uvs")
    assert any("apex images from" in q for q in db.quirks)
    assert all(Path(p).parent == (apex / "apex").resolve() for p in db.table.apex_path)
    prepared = prepare(db.table, PrepSettings(size=20, blocks=3, work_size=64), tmp_path / "cache", progress=False,
                       streams=("ss", "ls", "dt"))
    n = len(db.table)
    assert prepared.arrays["ss"].shape == (n, 10, 1, 20, 20)
    assert prepared.arrays["ls"].shape == (n, 10, 9, 20, 20)
    assert prepared.arrays["dt"].shape == (n, 10, 3, 20, 20)  # u, v, strain: no apex->offset flow here
    # SS of the original variant: the grey image area-resized to work_size, then to n (as a key frame).
    row = db.table.iloc[0]
    grey = cv2.imread(row.apex_path, cv2.IMREAD_GRAYSCALE)
    key = cv2.resize(grey, (64, 64), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    np.testing.assert_allclose(prepared.arrays["ss"][0, 0, 0], cv2.resize(key, (20, 20), interpolation=cv2.INTER_AREA),
                               atol=1e-6)
    # LS block (0, 0) is the top-left third of the key frame; DT is the flow image's u, v, strain.
    np.testing.assert_allclose(prepared.arrays["ls"][0, 0, 0],
                               cv2.resize(key[:21, :21], (20, 20), interpolation=cv2.INTER_AREA), atol=1e-6)
    from tscnn.preprocessing.frames import read_flow_image

    maps = read_flow_image(row.flow_path, "x")
    np.testing.assert_allclose(prepared.arrays["dt"][0], normalised_uvs_variants(maps, 20, True), atol=1e-6)
    # Variant 1 is the mirror in every stream.
    np.testing.assert_allclose(prepared.arrays["ss"][0, 1, 0], prepared.arrays["ss"][0, 0, 0][:, ::-1], atol=1e-6)
    np.testing.assert_allclose(prepared.arrays["dt"][0, 1, 0], 1 - prepared.arrays["dt"][0, 0, 0][:, ::-1], atol=1e-6)


def test_apex_column_in_the_flow_folders_own_index(tmp_path):
    db = read_flowfolder(make_flow_folder(tmp_path / "flows", _clips(2, 2), apex_column=True))
    assert has_apex_images(db.table)
    prepared = prepare(db.table, PrepSettings(size=16, augment=False, work_size=32), progress=False,
                       streams=("ss", "ls", "dt", "uvs"))
    assert prepared.arrays["ss"].shape == (4, 1, 1, 16, 16) and prepared.arrays["uvs"].shape == (4, 1, 3, 16, 16)
    np.testing.assert_array_equal(prepared.arrays["dt"], prepared.arrays["uvs"])


def test_the_apex_image_enters_the_cache_key(sibling_pair):
    flows, apex = sibling_pair
    plain = read_flowfolder(flows).table.iloc[0]
    with_apex = attach_apex_images(read_flowfolder(flows), apex).table.iloc[0]
    settings = PrepSettings()
    assert cache_path(Path("c"), plain, settings, "k") != cache_path(Path("c"), with_apex, settings, "k")


def test_bad_apex_folders_are_named(sibling_pair, tmp_path):
    flows, apex = sibling_pair
    db = read_flowfolder(flows)
    with pytest.raises(DatasetError, match="no apex-image folder here"):
        attach_apex_images(db, tmp_path / "nowhere")
    index = pd.read_csv(apex / "index.csv", dtype=str)
    index.iloc[1:].to_csv(apex / "index.csv", index=False)
    with pytest.raises(DatasetError, match=r"index.csv: no apex image for clip casme2/sub01/EP00"):
        attach_apex_images(db, apex)
    index.drop(columns="apex").to_csv(apex / "index.csv", index=False)
    with pytest.raises(DatasetError, match=r"missing columns \['apex'\]"):
        attach_apex_images(db, apex)
    index.to_csv(apex / "index.csv", index=False)
    whole = (apex / index.apex[2]).read_bytes()
    (apex / index.apex[2]).write_bytes(whole[: len(whole) // 2])  # a copy cut short: OpenCV alone decodes it
    with pytest.raises(DatasetError, match=r"row 4: clip sub01/EP02: apex image .* unreadable: truncated"):
        attach_apex_images(db, apex)
    (apex / index.apex[2]).write_bytes(b"not a jpeg")
    with pytest.raises(DatasetError, match=r"row 4: clip sub01/EP02: apex image .* unreadable"):
        attach_apex_images(db, apex)
    (apex / index.apex[2]).unlink()
    with pytest.raises(DatasetError, match=r"apex image .* is unreadable: missing"):
        attach_apex_images(db, apex)


def test_apex_root_on_a_frames_database_is_refused(tmp_path):
    write_database(tmp_path / "db", SynthSettings(subjects=2, seed=0))
    db = read_casme2(tmp_path / "db", apex_fallback="middle")
    with pytest.raises(DatasetError, match="apex images complete a flow folder"):
        attach_apex_images(db, tmp_path)


def test_cli_describe_and_a_bad_apex_root(sibling_pair, capsys):
    flows, apex = sibling_pair
    assert main(["datasets", "describe", "flowfolder", str(flows), "--apex-root", str(apex)]) == 0
    assert "apex images from" in capsys.readouterr().out
    assert main(["datasets", "describe", "flowfolder", str(flows), "--apex-root", str(flows / "flow")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no apex-image index here" in err and len(err.strip().splitlines()) == 1


def test_tscnn_runs_its_three_streams_on_a_flow_folder_with_apex_images(sibling_pair, tmp_path):
    from tscnn.runner import config_for, run_experiment

    flows, apex = sibling_pair
    config = config_for("tscnn", preset="demo", dataset="flowfolder", root=str(flows), apex_root=str(apex),
                        classes="all", size=16, work_size=32, streams=("ss", "ls", "dt"), augment=False)
    result = run_experiment(config, tmp_path / "run", tmp_path / "cache", progress=False)
    assert len(result.predictions) == 9 and result.predictions.subject.nunique() == 3
    # Without the apex images the same run stops before any training, in one line.
    bare = config_for("tscnn", preset="demo", dataset="flowfolder", root=str(flows), classes="all", size=16,
                      streams=("ss", "ls", "dt"), augment=False)
    with pytest.raises(DatasetError, match="gives only the uvs stream; asked for ss, ls, dt"):
        run_experiment(bare, tmp_path / "bare", progress=False)
    assert not (tmp_path / "bare").exists()


def test_real_composite_with_apex_images_loads_and_prepares():
    flows, apex = REAL / "megc2019-flow28", REAL / "megc2019-apex224"
    if not ((flows / "index.csv").is_file() and (apex / "index.csv").is_file()):
        pytest.skip("../shared/real/megc2019-flow28 or megc2019-apex224 is absent")
    db = attach_apex_images(read_flowfolder(flows), apex)
    assert len(db.table) == 309 and has_apex_images(db.table)
    assert available_streams(db.table) == ("ss", "ls", "dt", "uvs")
    part = db.table.groupby("dataset").head(1)  # one CASME II clip, one SMIC clip
    prepared = prepare(part, PrepSettings(size=28, augment=False), progress=False, streams=("ss", "ls", "dt"))
    assert prepared.arrays["ss"].shape == (2, 1, 1, 28, 28)
    assert prepared.arrays["ls"].shape == (2, 1, 9, 28, 28)
    assert prepared.arrays["dt"].shape == (2, 1, 3, 28, 28)
    for name in ("ss", "ls", "dt"):
        values = prepared.arrays[name]
        assert values.min() >= 0 and values.max() <= 1 and values.std() > 0.01  # a face, a flow: not blank

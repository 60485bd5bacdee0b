"""Flow folders (u, v, strain PNGs + index.csv, the MEGC format): reader, prepare, writer, bad inputs."""

import os
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from clip_folders import write_clip_index

from tscnn.datasets import READERS, DatasetError, load_database, read_casme2, read_flowfolder, write_flow_folder
from tscnn.datasets.base import TABLE_COLUMNS
from tscnn.datasets.flowfolder import read_flow_image, write_flow_image
from tscnn.preprocessing import prepare as prep
from tscnn.preprocessing.prepare import PrepSettings, available_streams, prepare
from tscnn.synth import SynthSettings, write_database

REAL_FLOW28 = Path(__file__).resolve().parents[2] / "shared" / "real" / "megc2019-flow28"
CLIPS = [  # dataset, subject, clip, label, label_name
    ("casme2", "sub01", "EP02_01f", 1, "positive"),
    ("casme2", "sub01", "EP19_05f", 0, "negative"),
    ("casme2", "sub02", "EP01_11f", 2, "surprise"),
    ("samm", "006", "006_1_2", 0, "negative"),
    ("smic", "s3", "s3_po_05", 1, "positive"),
]


def random_maps(rng: np.random.Generator, size: int = 28) -> np.ndarray:
    """(3, n, n) smooth maps, each spanning exactly 0..1 like a min-max normalised flow image."""
    maps = cv2.GaussianBlur(rng.normal(size=(size, size, 3)).astype(np.float32), (0, 0), 2).transpose(2, 0, 1)
    return np.stack([(m - m.min()) / (m.max() - m.min()) for m in maps])


def make_folder(root, clips=CLIPS, seed=0):
    rng = np.random.default_rng(seed)

    def write_files(subject: str, clip: str, label: int) -> dict[str, str]:
        relative = f"flow/{subject}_{clip}.png"
        write_flow_image(root / relative, random_maps(rng))
        return {"flow": relative}

    return write_clip_index(root, clips, write_files)


@pytest.fixture
def folder(tmp_path):
    return make_folder(tmp_path / "flows")


def test_png_channels_are_u_v_strain_in_rgb_order(tmp_path):
    maps = random_maps(np.random.default_rng(1))
    write_flow_image(tmp_path / "a.png", maps)
    bgr = cv2.imread(str(tmp_path / "a.png"))
    np.testing.assert_allclose(bgr[..., 2] / 255.0, maps[0], atol=0.5 / 255 + 1e-6)  # R = u
    np.testing.assert_allclose(read_flow_image(tmp_path / "a.png", "x").transpose(2, 0, 1), maps,
                               atol=0.5 / 255 + 1e-6)


def test_reader_table_classes_and_subjects(folder):
    db = read_flowfolder(folder)
    t = db.table
    assert db.name == "flowfolder" and db.classes == ("negative", "positive", "surprise") and not db.quirks
    assert list(t.columns) == [*TABLE_COLUMNS, "flow_path"]
    assert list(t.subject) == [c[1] for c in CLIPS]  # '006' kept as written
    assert list(t.label) == [c[3] for c in CLIPS] and list(t.emotion) == [c[4] for c in CLIPS]
    assert (t.apex_rule == "n/a").all() and t.apex.isna().all() and (t.onset_path == "").all()
    assert all(os.path.isabs(p) and os.path.isfile(p) for p in t.flow_path)
    assert READERS["flowfolder"] is read_flowfolder
    assert len(load_database("flowfolder", str(folder)).table) == len(CLIPS)
    assert "5 clips, 4 subjects" in db.describe()


def test_labels_that_skip_numbers_are_renumbered(tmp_path):
    clips = [("casme2", "sub01", "a", 1, "positive"), ("casme2", "sub02", "b", 2, "surprise")]
    db = read_flowfolder(make_folder(tmp_path, clips))
    assert db.classes == ("positive", "surprise") and list(db.table.label) == [0, 1]
    assert "renumbered" in db.quirks[0]


def test_prepare_flow_table_gives_only_uvs_and_caches(folder, tmp_path):
    db = read_flowfolder(folder)
    assert available_streams(db.table) == ("uvs",)
    cache = tmp_path / "cache"
    prepared = prepare(db.table, PrepSettings(size=28), cache, progress=False)
    assert list(prepared.arrays) == ["uvs"] and prepared.arrays["uvs"].shape == (len(CLIPS), 10, 3, 28, 28)
    maps = read_flow_image(db.table.flow_path[0], "x").transpose(2, 0, 1)
    uvs = prepared.arrays["uvs"][0].astype(np.float32)
    np.testing.assert_allclose(uvs[0], maps, atol=1e-3)  # float16 storage
    np.testing.assert_allclose(uvs[1, 0], 1.0 - maps[0, :, ::-1], atol=1e-3)  # flip: u -> 1 - u, mirrored
    np.testing.assert_allclose(uvs[1, 1:], maps[1:, :, ::-1], atol=1e-3)
    files = sorted(cache.rglob("*.npz"))
    assert len(files) == len(CLIPS) and len({f.parent for f in files}) == 1
    again = prepare(db.table, PrepSettings(size=28), cache, progress=False, streams=["uvs"])
    np.testing.assert_array_equal(again.arrays["uvs"], prepared.arrays["uvs"])
    assert sorted(cache.rglob("*.npz")) == files  # read from the cache, nothing new
    stat = os.stat(db.table.flow_path[0])
    os.utime(db.table.flow_path[0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    prepare(db.table, PrepSettings(size=28), cache, progress=False)
    assert len(list(cache.rglob("*.npz"))) == len(CLIPS) + 1  # the touched image is prepared again
    small = prepare(db.table, PrepSettings(size=16, augment=False), cache, progress=False)
    assert small.arrays["uvs"].shape == (len(CLIPS), 1, 3, 16, 16)


def test_asking_a_frame_stream_of_a_flow_folder_is_a_clear_error(folder):
    db = read_flowfolder(folder)
    with pytest.raises(DatasetError, match=rf"the flow folder {folder}\S* gives only the uvs stream; asked for ss"):
        prepare(db.table, PrepSettings(), progress=False, streams=("ss", "uvs"))
    with pytest.raises(ValueError, match="unknown streams"):
        prepare(db.table, PrepSettings(), progress=False, streams=("xyz",))


def test_code_edit_gives_a_new_cache_folder(folder, tmp_path, monkeypatch):
    db = read_flowfolder(folder)
    cache = tmp_path / "cache"
    prepare(db.table, PrepSettings(size=16), cache, progress=False)
    sources = prep.preparation_sources()
    edited = {**sources, "tscnn.preprocessing.streams": sources["tscnn.preprocessing.streams"] + "\n# edit\n"}
    monkeypatch.setattr(prep, "preparation_sources", lambda: edited)
    prepare(db.table, PrepSettings(size=16), cache, progress=False)
    assert len(list(cache.glob("prep-*"))) == 2


@pytest.fixture(scope="module")
def synth_small(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth-flowfolder")
    write_database(root, SynthSettings(subjects=3, seed=0))
    return read_casme2(root, apex_fallback="middle")


def test_synthetic_database_round_trip(synth_small, tmp_path):
    settings = PrepSettings(size=28, flow="dis", work_size=64, augment=False)
    prepared = prepare(synth_small.table, settings, progress=False)
    assert set(prepared.arrays) == {"ss", "ls", "dt", "uvs"}
    index = write_flow_folder(prepared, tmp_path / "out")
    assert index == tmp_path / "out" / "index.csv"
    back = read_flowfolder(tmp_path / "out")
    t, b = synth_small.table, back.table
    for column in ("dataset", "subject", "clip", "emotion"):
        assert list(b[column]) == list(t[column])
    assert [back.classes[i] for i in b.label] == [synth_small.classes[i] for i in t.label]
    if set(t.label) == set(range(len(synth_small.classes))):
        assert back.classes == synth_small.classes and list(b.label) == list(t.label)
    reread = prepare(b, PrepSettings(size=28, augment=False), progress=False)
    original = prepared.arrays["uvs"].astype(np.float32)
    assert np.abs(reread.arrays["uvs"].astype(np.float32) - original).max() <= 1 / 255
    # A Database is prepared at the writer's size, without augmentation, with the given settings.
    write_flow_folder(synth_small, tmp_path / "direct", size=28, settings=settings)
    assert (tmp_path / "direct" / "index.csv").read_text() == index.read_text()
    for name in pd.read_csv(index).flow:
        np.testing.assert_array_equal(cv2.imread(str(tmp_path / "direct" / name)),
                                      cv2.imread(str(tmp_path / "out" / name)))
    # Another size: every channel is re-normalised to span 0..255.
    write_flow_folder(prepared, tmp_path / "small", size=14)
    image = cv2.imread(str(tmp_path / "small" / pd.read_csv(index).flow[0]))
    assert image.shape == (14, 14, 3) and (image.min((0, 1)) == 0).all() and (image.max((0, 1)) == 255).all()


def test_real_megc2019_flow28():
    root = REAL_FLOW28  # as conftest.real_or_skip: skip where ../shared is absent
    if not (root / "index.csv").is_file():
        pytest.skip("../shared/real/megc2019-flow28 is absent")
    db = read_flowfolder(root)
    t = db.table
    assert len(t) == 309 and t.subject.nunique() == 40
    assert db.classes == ("negative", "positive", "surprise") and not db.quirks
    assert t.groupby("dataset").size().to_dict() == {"casme2": 145, "smic": 164}
    prepared = prepare(t.iloc[:3], PrepSettings(size=28, augment=False), progress=False)
    assert prepared.arrays["uvs"].shape == (3, 1, 3, 28, 28)


# Bad inputs: each error names the file (and the row and clip where there is one).

def set_cell(folder, row, column, value):
    """Change one cell of the index (``row`` 0-based among the clips: file line row + 2)."""
    index = pd.read_csv(folder / "index.csv", dtype=str, keep_default_na=False)
    index.loc[row, column] = value
    index.to_csv(folder / "index.csv", index=False)


def test_missing_index(tmp_path):
    with pytest.raises(DatasetError, match=rf"{tmp_path}/index.csv: no flow-folder index"):
        read_flowfolder(tmp_path)


def test_missing_column(folder):
    index = pd.read_csv(folder / "index.csv").drop(columns=["label_name"])
    index.to_csv(folder / "index.csv", index=False)
    with pytest.raises(DatasetError, match=r"index.csv: not a flow-folder index, missing columns \['label_name'\]"):
        read_flowfolder(folder)


def test_empty_index(folder):
    (folder / "index.csv").write_text("dataset,subject,clip,label,label_name,flow\n")
    with pytest.raises(DatasetError, match="index.csv: the flow-folder index lists no clips"):
        read_flowfolder(folder)
    (folder / "index.csv").write_text("")
    with pytest.raises(DatasetError, match="index.csv: cannot read"):
        read_flowfolder(folder)


def test_missing_png(folder):
    (folder / "flow" / "sub01_EP19_05f.png").unlink()
    with pytest.raises(DatasetError, match=r"index.csv row 3: clip sub01/EP19_05f: flow image "
                                           r".*sub01_EP19_05f.png is missing"):
        read_flowfolder(folder)
    db = read_flowfolder(folder, check_frames=False)  # the annotation alone reads; prepare names the file
    with pytest.raises(DatasetError, match=r"clip casme2:sub01/EP19_05f: .*sub01_EP19_05f.png"):
        prepare(db.table, PrepSettings(), progress=False)


def test_unreadable_png(folder):
    (folder / "flow" / "006_006_1_2.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match=r"index.csv row 5: clip 006/006_1_2: flow image "
                                           r".*006_006_1_2.png is unreadable"):
        read_flowfolder(folder)
    cv2.imwrite(str(folder / "flow" / "006_006_1_2.png"), np.zeros((28, 28), np.uint8))
    with pytest.raises(DatasetError, match=r"row 5: clip 006/006_1_2: .*006_006_1_2.png is not a 3-channel"):
        read_flowfolder(folder)


def refused_with_cell(folder, row, column, value, message):
    """The index with one cell changed is refused with ``message``; the index is then put back as it was."""
    good = (folder / "index.csv").read_text()
    set_cell(folder, row, column, value)
    with pytest.raises(DatasetError, match=message):
        read_flowfolder(folder)
    (folder / "index.csv").write_text(good)


def test_label_and_label_name_mismatch(folder):
    refused_with_cell(folder, 2, "label_name", "positive",
                      r"index.csv row 4: clip sub02/EP01_11f: class 'positive' has label 2 here but 1 at row 2")
    refused_with_cell(folder, 3, "label", "2",
                      r"index.csv row 5: clip 006/006_1_2: label 2 is named 'negative' here but 'surprise' at row 4")


def test_unknown_class_empty_cell_and_duplicates(folder):
    refused_with_cell(folder, 1, "label", "neg", r"index.csv row 3: clip sub01/EP19_05f: unknown class: label 'neg'")
    refused_with_cell(folder, 4, "label_name", "", r"index.csv row 6: clip s3/s3_po_05: label_name is empty")
    refused_with_cell(folder, 1, "clip", "EP02_01f", r"index.csv row 3: clip sub01/EP02_01f: duplicate clip "
                                                     r"casme2/sub01/EP02_01f \(also at row 2\)")
    with pytest.raises(ValueError, match="unknown flow-folder class set '3class'"):
        read_flowfolder(folder, classes="3class")

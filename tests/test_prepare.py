"""Preparation in worker processes: the same tensors and cache files as in one process, errors as in one."""

import numpy as np
import pytest

from tscnn.errors import DatasetError
from tscnn.preprocessing.prepare import PrepSettings, prepare

SMALL = PrepSettings(size=16, work_size=48, augment=False)  # small work size: TV-L1 takes most of the time


@pytest.fixture(scope="module")
def four_clips(synth_db):
    return synth_db.table.iloc[:4].reset_index(drop=True)


def test_workers_give_the_tensors_of_one_process_and_fill_the_cache(four_clips, tmp_path):
    alone = prepare(four_clips, SMALL, progress=False)
    cache = tmp_path / "cache"
    parallel = prepare(four_clips, SMALL, cache, progress=False, jobs=2)
    assert set(parallel.arrays) == set(alone.arrays) == {"ss", "ls", "dt", "uvs"}
    for name, array in alone.arrays.items():
        assert parallel.arrays[name].dtype == array.dtype
        np.testing.assert_array_equal(parallel.arrays[name], array)
    files = sorted(cache.rglob("*.npz"))
    assert len(files) == len(four_clips)  # one file a clip, no temporary file left behind
    stamps = [f.stat().st_mtime_ns for f in files]
    again = prepare(four_clips, SMALL, cache, progress=False, jobs=2)  # all cached: read, nothing recomputed
    assert [f.stat().st_mtime_ns for f in files] == stamps
    np.testing.assert_array_equal(again.arrays["dt"], alone.arrays["dt"])


def test_a_bad_clip_in_a_worker_is_named_as_in_one_process(four_clips, tmp_path):
    rows = four_clips.copy()
    garbage = tmp_path / "reg_img7.jpg"
    garbage.write_bytes(b"not a jpeg")
    rows.loc[2, "apex_path"] = str(garbage)
    bad = rows.iloc[2]
    with pytest.raises(DatasetError, match=rf"^clip casme2:{bad.subject}/{bad['clip']}: cannot read image "
                                           rf".*reg_img7.jpg"):
        prepare(rows, SMALL, tmp_path / "cache", progress=False, jobs=2)

"""Face alignment: the geometry, the crop on a real video, and the Haar fallback without dlib."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from tscnn.config import Config
from tscnn.preprocessing import align, prepare
from tscnn.preprocessing.align import IOD_FRACTION, alignment_from_eyes, resolve_face_align
from tscnn.preprocessing.face import crop, detect_face
from tscnn.preprocessing.prepare import PrepSettings, face_frames


def _dot_centre(image: np.ndarray) -> np.ndarray:
    """Centroid (x, y) of the bright pixels of ``image``."""
    ys, xs = np.nonzero(image > 127)
    return np.array([xs.mean(), ys.mean()])


def test_geometry_levels_eyes_at_the_requested_distance_with_one_transform_per_clip(monkeypatch):
    left, right = np.array([100.0, 130.0]), np.array([170.0, 110.0])  # tilted by about -16 degrees
    alignment = alignment_from_eyes(right, left, size=128)  # order does not matter
    mapped = alignment.points([left, right])
    assert mapped[0, 1] == pytest.approx(mapped[1, 1], abs=1e-9)  # level
    assert mapped[1, 0] - mapped[0, 0] == pytest.approx(IOD_FRACTION * 128, abs=1e-9)
    assert mapped.mean(0) == pytest.approx([64, align.EYE_Y * 128])
    # The default side keeps the scale near 1.
    assert alignment_from_eyes(left, right).size == round(np.hypot(70, 20) / IOD_FRACTION)

    # Pixels follow the points: one dot per eye, warped, land where the eye centres map to.
    frame = np.zeros((300, 300), np.uint8)
    for x, y in (left, right):
        cv2.circle(frame, (int(x), int(y)), 4, 255, -1)
    warped = alignment.apply(frame)
    half = warped.shape[1] // 2
    assert _dot_centre(warped[:, :half]) == pytest.approx(mapped[0], abs=0.6)
    assert _dot_centre(warped[:, half:]) + [half, 0] == pytest.approx(mapped[1], abs=0.6)

    # face_frames finds the face on the first frame only and cuts every frame the same way, so the motion
    # between frames is kept (here a 3 px shift of the dots, rotated and scaled with the face).
    moved = np.roll(frame, 3, axis=1)
    calls = []
    monkeypatch.setattr(prepare, "resolve_face_align", lambda *a, **k: "landmarks")
    monkeypatch.setattr(prepare, "find_alignment", lambda grey: calls.append(grey) or alignment)
    out = face_frames([frame, moved], cropped=False, face_align="landmarks", error="no face")
    assert len(calls) == 1 and calls[0] is frame
    assert np.array_equal(out[0], warped) and np.array_equal(out[1], alignment.apply(moved))
    shift = _dot_centre(out[1][:, :half]) - _dot_centre(out[0][:, :half])
    assert shift == pytest.approx(alignment.matrix[:, :2] @ [3, 0], abs=0.3)


def test_the_cut_lands_on_the_face_of_a_real_video(real_faces):
    pytest.importorskip("dlib")
    if not align.landmarks_available():
        pytest.skip("the align extra (dlib-bin, face_recognition_models) is not installed")
    capture = cv2.VideoCapture(str(real_faces / "single_face.mp4"))
    ok, onset = capture.read()
    capture.release()
    assert ok
    grey = cv2.cvtColor(onset, cv2.COLOR_BGR2GRAY)
    marks = align.eye_landmarks(grey)
    assert marks is not None
    alignment = align.find_alignment(grey)
    # The mouth centre is not among dlib's 5 points: by face proportions it lies below the nose base by
    # about 0.6 of the eye-midpoint -> nose-base distance.
    eyes_mid = (marks["left_eye"] + marks["right_eye"]) / 2
    mouth = marks["nose"] + 0.6 * (marks["nose"] - eyes_mid)
    box = alignment.corners().astype(np.float32)
    for name, point in (("left eye", marks["left_eye"]), ("right eye", marks["right_eye"]),
                        ("nose", marks["nose"]), ("mouth", mouth)):
        assert cv2.pointPolygonTest(box, tuple(float(v) for v in point), True) > 5, name
    inside = alignment.points([marks["left_eye"], marks["right_eye"], mouth])
    assert abs(inside[0, 1] - inside[1, 1]) < 1e-6
    assert 0.6 * alignment.size < inside[2, 1] < 0.95 * alignment.size  # the mouth in the lower part
    # An independent detector agrees: the Haar cascade finds a face filling most of the aligned crop.
    cut = alignment.apply(grey)
    x, y, w, h = detect_face(cut, margin=0.0)
    assert w > 0.55 * alignment.size and abs(x + w / 2 - alignment.size / 2) < 0.1 * alignment.size
    # face_frames cuts every frame with that one transform.
    frames = face_frames([grey, grey[:, ::-1].copy()], cropped=False, face_align="landmarks", error="no face")
    assert np.array_equal(frames[0], cut) and np.array_equal(frames[1], alignment.apply(grey[:, ::-1].copy()))


@pytest.fixture
def no_dlib(monkeypatch):
    """dlib made unimportable (as on a machine without the align extra), the notice not yet given."""
    monkeypatch.setitem(sys.modules, "dlib", None)
    monkeypatch.setattr(align, "_NOTICE_GIVEN", False)
    align._dlib_models.cache_clear()
    yield
    align._dlib_models.cache_clear()


def test_without_dlib_auto_falls_back_to_haar_with_one_notice(no_dlib, real_faces):
    assert not align.landmarks_available()
    with pytest.warns(UserWarning, match=r"tscnn\[align\]"):
        assert resolve_face_align("auto") == "haar"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_face_align("auto") == "haar"  # once per process
        assert resolve_face_align("haar") == "haar"
    with pytest.raises(ImportError, match=r"tscnn\[align\]"):
        resolve_face_align("landmarks")
    # The cut is today's Haar box, the same for every frame.
    grey = cv2.imread(str(real_faces / "single_face.jpg"), cv2.IMREAD_GRAYSCALE)
    box = detect_face(grey)
    out = face_frames([grey, grey], cropped=False, face_align="auto", error="no face")
    assert all(np.array_equal(o, crop(grey, box)) for o in out)
    # Face crops are kept as they are.
    assert face_frames([grey], cropped=True, face_align="auto", error="no face")[0] is grey


def test_face_align_is_a_checked_setting_in_the_cache_key(no_dlib):
    assert Config().face_align == "auto"
    assert align.FACE_ALIGN == ("auto", "landmarks", "haar")
    with pytest.raises(ValueError, match="--face-align: must be one of"):
        Config(face_align="mediapipe")
    assert PrepSettings.from_config(Config(face_align="haar")).face_align == "haar"
    keys = {PrepSettings(face_align=m).key() for m in ("haar", "auto")}
    assert len(keys) == 2  # auto resolved to haar here, still its own key
    # A saved config from before the field existed reads as auto.
    assert PrepSettings.from_config(type("Old", (), {"size": 48, "blocks": 3, "flow": "tvl1", "work_size": 128,
                                                     "augment": True})()).face_align == "auto"


def test_the_haar_cut_holds_both_eyes_found_independently(real_faces):
    """Without the extra (as in CI), the cut of every real photo and of the real video's onset frame holds
    both eyes found by OpenCV's separate eye cascade on the whole frame: the crop lands on the face."""
    eyes_model = cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / "haarcascade_eye.xml"))
    # Frontal faces only: the 45-degree view is beyond a frontal cascade; multi_face holds several people.
    frames = {p.name: cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in sorted(real_faces.glob("*.jpg"))
              if p.name not in ("multi_face.jpg", "45-m7-di-ph.jpg")}
    for clip in ("single_face.mp4", "WolfgangLanger_Pexels.mp4"):
        video = cv2.VideoCapture(str(real_faces / clip))
        ok, first = video.read()
        video.release()
        assert ok, clip
        frames[f"{clip} frame 0"] = cv2.cvtColor(first, cv2.COLOR_BGR2GRAY)
    checked = 0
    for name, grey in frames.items():
        x, y, w, h = detect_face(grey)
        eyes = eyes_model.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=8, minSize=(w // 10, w // 10))
        eyes = _eye_pair(eyes)
        if eyes is None:
            continue  # the eye cascade is the weaker detector; a photo where it finds no pair is not a check
        checked += 1
        for ex, ey, ew, eh in eyes:
            cx, cy = ex + ew / 2, ey + eh / 2
            assert x <= cx <= x + w and y <= cy <= y + h * 0.6, f"{name}: an eye at ({cx:.0f}, {cy:.0f}) " \
                f"lies outside the face cut's upper part {(x, y, w, h)}"
    assert checked >= 4, f"the eye cascade found both eyes on only {checked} of {len(frames)} real images"


def _eye_pair(found: np.ndarray) -> list | None:
    """The largest pair of eye-cascade detections that sit side by side at one height (a lone nostril or
    mouth corner found as an "eye" has no such partner)."""
    best, best_area = None, 0
    for i, a in enumerate(found):
        for b in found[i + 1:]:
            size = (a[2] + b[2]) / 2
            level = abs((a[1] + a[3] / 2) - (b[1] + b[3] / 2)) < 0.5 * size
            apart = abs((a[0] + a[2] / 2) - (b[0] + b[2] / 2)) > size
            if level and apart and a[2] * a[3] + b[2] * b[3] > best_area:
                best, best_area = [a, b], a[2] * a[3] + b[2] * b[3]
    return best

"""Synthetic face identities: a parametric, textured neutral face and its landmarks.

Each subject is drawn from a seed: face shape, skin tone, skin texture, the positions and sizes of
brows, eyes, nose and mouth, a subject-specific neutral expression, and optional glasses or fringe.
Faces are drawn at 2x and downsampled, so edges are anti-aliased and sub-pixel motion is visible.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

SKIN_TONES_BGR = np.array(
    [[196, 214, 245], [160, 190, 232], [130, 170, 215], [100, 140, 190], [70, 105, 150], [50, 75, 110]],
    dtype=np.float32,
)


@dataclass
class FaceIdentity:
    """One synthetic subject: the neutral face image (BGR uint8) and named landmarks (x, y) in pixels."""

    image: np.ndarray
    landmarks: dict[str, tuple[float, float]] = field(default_factory=dict)
    face_width: float = 0.0

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the face crop."""
        return self.image.shape[0], self.image.shape[1]


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    """Zero-mean, unit-variance low-pass noise: skin texture that optical flow can track."""
    noise = rng.standard_normal(shape).astype(np.float32)
    noise = cv2.GaussianBlur(noise, (0, 0), scale)
    return noise / (noise.std() + 1e-6)


def make_identity(rng: np.random.Generator, width: int | None = None) -> FaceIdentity:
    """Draw a distinct face. ``width`` is the crop width in pixels (random in 128..160 when None)."""
    w = int(width or rng.integers(128, 161))
    h = int(round(w * rng.uniform(1.12, 1.25)))
    s = 2  # supersampling factor
    W, H = w * s, h * s
    background = rng.uniform(40, 200, size=3).astype(np.float32)
    canvas = np.empty((H, W, 3), np.float32)
    canvas[:] = background
    canvas += 12 * _smooth_noise(rng, (H, W), 20 * s)[..., None]

    # Face shape and skin.
    cx, cy = W / 2 + rng.uniform(-0.03, 0.03) * W, H * rng.uniform(0.50, 0.56)
    ax, ay = W * rng.uniform(0.40, 0.47), H * rng.uniform(0.44, 0.50)
    tone_index = rng.uniform(0, len(SKIN_TONES_BGR) - 1)
    low = int(np.floor(tone_index))
    high = min(low + 1, len(SKIN_TONES_BGR) - 1)
    skin = SKIN_TONES_BGR[low] + (tone_index - low) * (SKIN_TONES_BGR[high] - SKIN_TONES_BGR[low])
    skin = skin * rng.uniform(0.92, 1.08, size=3)
    mask = np.zeros((H, W), np.uint8)
    cv2.ellipse(mask, (int(cx), int(cy)), (int(ax), int(ay)), 0, 0, 360, 255, -1, cv2.LINE_AA)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    shading = 1.0 - 0.18 * (((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2)  # rounder-looking face
    shading += rng.uniform(-0.08, 0.08) * (xx - cx) / ax  # side lighting
    texture = 1.0 + rng.uniform(0.03, 0.07) * _smooth_noise(rng, (H, W), rng.uniform(1.5, 3.0) * s)
    texture += 0.03 * _smooth_noise(rng, (H, W), 8 * s)
    face = skin[None, None, :] * (shading * texture)[..., None]
    alpha = (mask.astype(np.float32) / 255.0)[..., None]
    canvas = canvas * (1 - alpha) + face * alpha

    # Landmark geometry (subject-specific proportions and neutral expression).
    eye_y = cy - ay * rng.uniform(0.12, 0.25)
    eye_dx = ax * rng.uniform(0.36, 0.46)
    eye_w, eye_h = ax * rng.uniform(0.16, 0.22), ay * rng.uniform(0.045, 0.07)
    brow_y = eye_y - ay * rng.uniform(0.14, 0.22)
    brow_len = eye_w * rng.uniform(1.1, 1.5)
    brow_thick = max(2, int(ay * rng.uniform(0.025, 0.05)))
    brow_tilt = rng.uniform(-0.12, 0.12) * brow_len  # subject's neutral brow slant
    nose_y = cy + ay * rng.uniform(0.12, 0.22)
    nose_w = ax * rng.uniform(0.16, 0.24)
    mouth_y = cy + ay * rng.uniform(0.42, 0.52)
    mouth_w = ax * rng.uniform(0.36, 0.50)
    lip_h = ay * rng.uniform(0.035, 0.06)
    smile = rng.uniform(-0.25, 0.25) * lip_h  # neutral mouth curvature
    chin_y = cy + ay * 0.82
    dark = np.array(rng.uniform(15, 70, size=3), np.float32)
    hair = dark * rng.uniform(0.6, 1.8)
    lip = skin * np.array([0.75, 0.70, 0.95], np.float32) * rng.uniform(0.8, 1.0)

    img = canvas
    for side in (-1, 1):
        ex = cx + side * eye_dx
        # Eye: white, iris, pupil.
        cv2.ellipse(img, (int(ex), int(eye_y)), (int(eye_w), int(eye_h * 1.6)), 0, 0, 360,
                    (225, 230, 235), -1, cv2.LINE_AA)
        iris = rng.uniform(20, 120, size=3)
        cv2.circle(img, (int(ex), int(eye_y)), int(eye_h * 1.4), tuple(float(c) for c in iris), -1, cv2.LINE_AA)
        cv2.circle(img, (int(ex), int(eye_y)), int(eye_h * 0.6), (10, 10, 10), -1, cv2.LINE_AA)
        cv2.ellipse(img, (int(ex), int(eye_y)), (int(eye_w), int(eye_h * 1.6)), 0, 180, 360,
                    tuple(float(c) for c in dark), max(2, s), cv2.LINE_AA)
        # Brow: a thick slanted curve.
        inner = (ex - side * brow_len * 0.5, brow_y + brow_tilt * 0.5)
        outer = (ex + side * brow_len * 0.5, brow_y - brow_tilt * 0.5)
        mid = ((inner[0] + outer[0]) / 2, (inner[1] + outer[1]) / 2 - brow_thick)
        pts = np.array([inner, mid, outer], np.float32)
        cv2.polylines(img, [np.round(pts).astype(np.int32)], False, tuple(float(c) for c in hair),
                      brow_thick * s, cv2.LINE_AA)
        # Cheek shading and nasolabial fold.
        cv2.line(img, (int(cx + side * nose_w * 1.1), int(nose_y)),
                 (int(cx + side * mouth_w * 0.62), int(mouth_y + lip_h)),
                 tuple(float(c) for c in skin * 0.8), s, cv2.LINE_AA)
    # Nose: bridge line, wings and nostrils.
    cv2.line(img, (int(cx), int(eye_y)), (int(cx + nose_w * 0.2), int(nose_y)),
             tuple(float(c) for c in skin * 0.82), s, cv2.LINE_AA)
    cv2.ellipse(img, (int(cx), int(nose_y)), (int(nose_w), int(nose_w * 0.45)), 0, 0, 180,
                tuple(float(c) for c in skin * 0.6), max(2, s), cv2.LINE_AA)
    for side in (-1, 1):
        cv2.circle(img, (int(cx + side * nose_w * 0.45), int(nose_y + nose_w * 0.1)), int(nose_w * 0.18),
                   tuple(float(c) for c in skin * 0.35), -1, cv2.LINE_AA)
    # Mouth: upper and lower lip as filled curves, a dark line between.
    xs = np.linspace(-mouth_w, mouth_w, 25)
    curve = smile * (1 - (xs / mouth_w) ** 2) * -1
    upper = np.stack([cx + xs, mouth_y + curve - lip_h * (1 - (xs / mouth_w) ** 2)], 1)
    lower = np.stack([cx + xs, mouth_y + curve + 1.3 * lip_h * (1 - (xs / mouth_w) ** 2)], 1)
    middle = np.stack([cx + xs, mouth_y + curve], 1)
    cv2.fillPoly(img, [np.round(np.concatenate([upper, middle[::-1]])).astype(np.int32)],
                 tuple(float(c) for c in lip), cv2.LINE_AA)
    cv2.fillPoly(img, [np.round(np.concatenate([middle, lower[::-1]])).astype(np.int32)],
                 tuple(float(c) for c in lip * 1.1), cv2.LINE_AA)
    cv2.polylines(img, [np.round(middle).astype(np.int32)], False, tuple(float(c) for c in lip * 0.45),
                  max(2, s), cv2.LINE_AA)
    # Moles / freckles.
    for _ in range(int(rng.integers(0, 6))):
        px, py = cx + rng.uniform(-0.7, 0.7) * ax, cy + rng.uniform(-0.5, 0.7) * ay
        cv2.circle(img, (int(px), int(py)), int(rng.integers(1, 3) * s), tuple(float(c) for c in skin * 0.6),
                   -1, cv2.LINE_AA)
    # Optional fringe (hair over the forehead) and glasses.
    if rng.random() < 0.35:
        top = cy - ay * 1.05
        edge = brow_y - ay * rng.uniform(0.05, 0.2)
        xs_f = np.linspace(cx - ax * 1.05, cx + ax * 1.05, 12)
        jag = edge + rng.uniform(-0.06, 0.06, size=12) * ay
        poly = np.concatenate([np.stack([xs_f, jag], 1), [[cx + ax * 1.05, top], [cx - ax * 1.05, top]]])
        cv2.fillPoly(img, [np.round(poly).astype(np.int32)], tuple(float(c) for c in hair), cv2.LINE_AA)
    if rng.random() < 0.25:
        frame_colour = tuple(float(c) for c in rng.uniform(10, 90, size=3))
        for side in (-1, 1):
            cv2.ellipse(img, (int(cx + side * eye_dx), int(eye_y)), (int(eye_w * 1.55), int(eye_w * 1.15)),
                        0, 0, 360, frame_colour, max(2, s), cv2.LINE_AA)
        cv2.line(img, (int(cx - eye_dx + eye_w * 1.55), int(eye_y)), (int(cx + eye_dx - eye_w * 1.55), int(eye_y)),
                 frame_colour, max(2, s), cv2.LINE_AA)

    image = cv2.resize(np.clip(img, 0, 255), (w, h), interpolation=cv2.INTER_AREA).astype(np.uint8)
    landmarks = {}
    for name, side in (("left", -1), ("right", 1)):
        ex = cx + side * eye_dx
        landmarks[f"brow_inner_{name}"] = (ex - side * brow_len * 0.45, brow_y + brow_tilt * 0.45)
        landmarks[f"brow_outer_{name}"] = (ex + side * brow_len * 0.45, brow_y - brow_tilt * 0.45)
        landmarks[f"brow_{name}"] = (ex, brow_y)
        landmarks[f"eye_lower_{name}"] = (ex, eye_y + eye_h * 1.6)
        landmarks[f"cheek_{name}"] = (ex, (eye_y + nose_y) / 2 + eye_h)
        landmarks[f"nose_wing_{name}"] = (cx + side * nose_w, nose_y - nose_w * 0.2)
        landmarks[f"mouth_corner_{name}"] = (cx + side * mouth_w, mouth_y)
    landmarks["glabella"] = (cx, brow_y)
    landmarks["upper_lip"] = (cx, mouth_y - lip_h)
    landmarks["lower_lip"] = (cx, mouth_y + lip_h * 1.3)
    landmarks["chin"] = (cx, chin_y)
    landmarks = {k: (x / s, y / s) for k, (x, y) in landmarks.items()}
    return FaceIdentity(image=image, landmarks=landmarks, face_width=2 * ax / s)

"""Action units as local displacement fields, and the emotion -> action-unit rules of the generator.

An action unit (AU) moves a few facial landmarks a little: each moved landmark contributes a
Gaussian-windowed displacement around it. A clip's motion at time t is
``amplitude * intensity(t) * sum(AU fields)``, which is also the exact ground-truth flow.
"""

from __future__ import annotations

import numpy as np

from tscnn.synth.faces import FaceIdentity

# AU -> list of (landmark, (dx, dy) in image directions; "in" means toward the midline, sigma as a
# fraction of the face width). Left/right landmark pairs use the sign of their side for "in/out".
AU_MOVES: dict[str, list[tuple[str, tuple[float, float], float]]] = {
    "1": [("brow_inner_*", (0.0, -1.0), 0.10)],
    "2": [("brow_outer_*", (0.0, -1.0), 0.10)],
    "4": [("brow_*", (0.45, 0.9), 0.12), ("glabella", (0.0, 0.6), 0.08)],
    "6": [("cheek_*", (0.0, -1.0), 0.12)],
    "7": [("eye_lower_*", (0.0, -1.0), 0.07)],
    "9": [("nose_wing_*", (0.2, -1.0), 0.09), ("glabella", (0.0, 0.5), 0.07)],
    "10": [("upper_lip", (0.0, -1.0), 0.10), ("nose_wing_*", (0.0, -0.4), 0.07)],
    "12": [("mouth_corner_*", (-0.8, -0.7), 0.10)],
    "14": [("mouth_corner_*", (-0.9, 0.1), 0.08)],
    "15": [("mouth_corner_*", (0.1, 1.0), 0.10)],
    "17": [("chin", (0.0, -1.0), 0.12), ("lower_lip", (0.0, -0.6), 0.08)],
    "18": [("mouth_corner_*", (1.0, 0.0), 0.08)],
    "20": [("mouth_corner_*", (-1.0, 0.3), 0.09)],
    "25": [("lower_lip", (0.0, 1.0), 0.10), ("chin", (0.0, 0.7), 0.12)],
}

# Emotion -> (typical AU combinations, atypical ones used for ``atypical_rate`` of the clips).
# Modelled on the AUs coded in CASME II and SAMM; "L"/"R" make an AU one-sided.
EMOTION_RULES: dict[str, tuple[list[str], list[str]]] = {
    "happiness": (["6+12", "12", "6+12", "12+25"], ["12+15", "1+12", "6"]),
    "disgust": (["4+9", "4+10", "4+7+10", "9", "4+L10"], ["4", "4+7", "14"]),
    "repression": (["15", "14", "17", "15+17", "14+17"], ["12+15", "4+15", "R14"]),
    "surprise": (["1+2", "1+2+25", "1+2", "2"], ["1", "1+4", "25"]),
    "others": (["4", "4+7", "1", "7", "L2", "18", "R12", "4+1", "20", "10"], []),
    "sadness": (["1+4+15", "1+15", "4+15"], ["17"]),
    "fear": (["1+2+4+20", "20", "4+20"], ["1+2"]),
    # SAMM spellings.
    "Anger": (["4+7", "4", "4+17", "7"], ["L2", "15"]),
    "Contempt": (["R14", "L14", "R12", "L10"], ["14", "4"]),
    "Happiness": (["6+12", "12", "12+25"], ["12+15", "6"]),
    "Surprise": (["1+2", "1+2+25", "2"], ["1", "25"]),
    "Other": (["4", "1", "7", "18", "20", "L2", "10", "17"], []),
    "Disgust": (["4+9", "9+10", "4+10"], ["4"]),
    "Fear": (["1+2+4+20", "20"], ["1+2"]),
    "Sadness": (["1+4+15", "15"], ["17"]),
}
# Other databases' spellings of the same emotions (SMIC's classes, CAS(ME)^3's and MMEW's names).
EMOTION_RULES |= {
    "negative": (["4+9", "4+7", "4+15", "1+4+15", "14", "4+10", "15+17"], ["1", "12+15"]),
    "positive": EMOTION_RULES["happiness"],
    "anger": EMOTION_RULES["Anger"],
    "sad": EMOTION_RULES["sadness"],
    "happy": EMOTION_RULES["happiness"],
}


def parse_aus(code: str) -> list[tuple[str, str]]:
    """Split "4+L10" into [("4", "both"), ("10", "left")]."""
    out = []
    for token in str(code).split("+"):
        token = token.strip()
        side = "both"
        if token[:1] in "LR":
            side = "left" if token[0] == "L" else "right"
            token = token[1:]
        if token not in AU_MOVES:
            raise ValueError(f"unknown action unit {token!r} in {code!r}")
        out.append((token, side))
    return out


def displacement_field(face: FaceIdentity, aus: str) -> np.ndarray:
    """Unit-amplitude displacement (H, W, 2) of an AU combination on this face, peak magnitude 1 px."""
    h, w = face.size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    field = np.zeros((h, w, 2), np.float32)
    cx = face.landmarks["glabella"][0]
    for au, side in parse_aus(aus):
        for landmark, (dx, dy), sigma in AU_MOVES[au]:
            names = [landmark.replace("*", s) for s in ("left", "right")] if "*" in landmark else [landmark]
            for name in names:
                name_side = "left" if name.endswith("left") else "right" if name.endswith("right") else "both"
                if side != "both" and name_side not in (side, "both"):
                    continue
                x0, y0 = face.landmarks[name]
                inward = 1.0 if x0 < cx else -1.0  # +x points toward the midline on the left side
                vx = dx * inward if name_side != "both" else dx
                sig = sigma * face.face_width
                weight = np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * sig * sig))
                field[..., 0] += vx * weight
                field[..., 1] += dy * weight
    peak = np.sqrt((field**2).sum(-1)).max()
    return field / peak if peak > 0 else field


def intensity_profile(n_frames: int, onset: int, apex: int, offset: int) -> np.ndarray:
    """Smooth rise (onset -> apex) and fall (apex -> offset) of the movement, 0..1 per frame index."""
    t = np.arange(n_frames, dtype=np.float32)
    rise = np.clip((t - onset) / max(apex - onset, 1), 0, 1)
    fall = np.clip((offset - t) / max(offset - apex, 1), 0, 1)
    up = 0.5 - 0.5 * np.cos(np.pi * rise)
    down = 0.5 - 0.5 * np.cos(np.pi * fall)
    return np.where(t <= apex, up, down).astype(np.float32)


def choose_aus(rng: np.random.Generator, emotion: str, atypical_rate: float) -> tuple[str, bool]:
    """An AU combination for a clip of this emotion, and whether it is an atypical one (label noise)."""
    typical, atypical = EMOTION_RULES[emotion]
    if atypical and rng.random() < atypical_rate:
        return atypical[int(rng.integers(len(atypical)))], True
    return typical[int(rng.integers(len(typical)))], False

"""A synthetic macro-expression set in FER2013's shape, for exercising pre-training without FER2013.

Each synthetic subject shows the 7 FER2013 classes as *macro* expressions: the same action-unit
fields as the micro-expression generator at 10-16 px (instead of 0.8-2 px), one still frame each,
grey 48x48. Subjects are split by identity into Training and PublicTest, like FER2013's usages.
"""

from __future__ import annotations

import cv2
import numpy as np

from tscnn.datasets.fer2013 import FER_CLASSES, SIDE, FaceImages
from tscnn.synth.actions import EMOTION_RULES, choose_aus, displacement_field
from tscnn.synth.faces import make_identity

# FER2013 class -> the generator's emotion rules (neutral has no motion).
RULE_OF_CLASS = {"angry": "anger", "disgust": "disgust", "fear": "fear", "happy": "happiness", "sad": "sadness",
                 "surprise": "surprise", "neutral": None}


def render_expression(face, aus: str | None, amplitude: float, rng: np.random.Generator) -> np.ndarray:
    """One grey 48x48 still of ``face`` showing ``aus`` at ``amplitude`` pixels (per 128 px of face width)."""
    h, w = face.size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    disp = np.zeros((h, w, 2), np.float32)
    if aus:
        disp = amplitude * face.face_width / 128.0 * displacement_field(face, aus)
    shift = rng.normal(0, 1.0, 2)
    map_x = (xx - disp[..., 0] - shift[0]).astype(np.float32)
    map_y = (yy - disp[..., 1] - shift[1]).astype(np.float32)
    frame = cv2.remap(face.image.astype(np.float32), map_x, map_y,
                      cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    frame = frame * rng.uniform(0.85, 1.15) + rng.normal(0, 2.0, frame.shape)
    grey = cv2.cvtColor(np.clip(frame, 0, 255).astype(np.uint8), cv2.COLOR_BGR2GRAY)
    return cv2.resize(grey, (SIDE, SIDE), interpolation=cv2.INTER_AREA)


def macro_expression_set(subjects: int = 40, per_class: int = 3, seed: int = 0,
                         val_fraction: float = 0.2) -> FaceImages:
    """``subjects`` x 7 classes x ``per_class`` images; the last ``val_fraction`` of subjects are PublicTest."""
    images, labels, usage = [], [], []
    n_val = max(1, int(round(subjects * val_fraction)))
    for s in range(subjects):
        face = make_identity(np.random.default_rng([seed, s, 0, 9]))
        rng = np.random.default_rng([seed, s, 1, 9])
        for label, name in enumerate(FER_CLASSES):
            for _ in range(per_class):
                rule = RULE_OF_CLASS[name]
                aus = choose_aus(rng, rule, 0.0)[0] if rule in EMOTION_RULES else None
                images.append(render_expression(face, aus, float(rng.uniform(10.0, 16.0)), rng))
                labels.append(label)
                usage.append("PublicTest" if s >= subjects - n_val else "Training")
    return FaceImages(np.stack(images), np.array(labels, np.int64), np.array(usage), FER_CLASSES,
                      f"synthetic macro-expressions ({subjects} subjects, seed {seed})")

"""The streams of a flow-folder clip that has an apex face image: SS and LS from the image, DT from the flow.

A flow folder gives onset->apex u, v and optical strain, each min-max normalised per image
(``tscnn.datasets.flowfolder``); an apex face image beside it (``tscnn.datasets.apeximages``) gives
the key frame. The streams are built as from frames (``tscnn.preprocessing.prepare``):

* SS, LS: the image read in grey (the paper's SS stream is grey), taken as a face crop as it is
  (the composite's images are aligned face crops: no face detection), area-resized to
  ``work_size`` like a key frame, then for every augmentation variant flipped / rotated and cut by
  ``make_streams`` (SS resized to n x n, LS the k x k blocks each resized to n x n).
* DT: the flow image's three maps u, v, strain (3 channels, not the frames' 4: a composite has no
  apex->offset flow), the same maps as the ``uvs`` stream and augmented the same approximate way
  (``normalised_uvs_variants``). Variant i of every stream is the same flip and rotation.

Every array is float32 (the flow maps' 8-bit levels, as for ``uvs``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from tscnn.errors import DatasetError
from tscnn.preprocessing.frames import decode_image
from tscnn.preprocessing.streams import AUGMENTATIONS, make_streams, normalised_uvs_variants, transform_image

FLOW_APEX_STREAMS = ("ss", "ls", "dt", "uvs")
"""The streams of a flow-folder clip with an apex image."""
DT_CHANNELS = ("u", "v", "strain")
"""What the DT stream of a flow-folder clip holds, in channel order."""


def read_apex_image(path: str | Path, where: str) -> np.ndarray:
    """An apex image in grey (uint8), or a DatasetError naming ``where`` and the file."""
    image, why = decode_image(path, cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise DatasetError(f"{where}: apex image {path} is unreadable: {why}")
    return image


def flow_apex_streams(maps: np.ndarray, apex: np.ndarray | None, size: int, blocks: int, work_size: int,
                      augment: bool, streams: Sequence[str] = FLOW_APEX_STREAMS) -> dict[str, np.ndarray]:
    """(A, C, n, n) float32 per stream of one flow-folder clip: ``maps`` the (H, W, 3) u, v, strain in [0, 1],
    ``apex`` the grey apex face image (needed for SS and LS). A = 10 with ``augment``, else 1."""
    out: dict[str, np.ndarray] = {}
    if "uvs" in streams or "dt" in streams:
        flow = normalised_uvs_variants(maps, size, augment).astype(np.float32)
        out |= {name: flow for name in ("uvs", "dt") if name in streams}
    spatial = [s for s in ("ss", "ls") if s in streams]
    if spatial:
        if apex is None:
            raise ValueError("the SS and LS streams of a flow-folder clip need its apex image")
        key = cv2.resize(apex, (work_size, work_size), interpolation=cv2.INTER_AREA)
        variants = AUGMENTATIONS if augment else AUGMENTATIONS[:1]
        built = [make_streams(transform_image(key, flip, angle), None, None, size, blocks, spatial)
                 for flip, angle in variants]
        out |= {name: np.stack([b[name] for b in built]).astype(np.float32) for name in spatial}
    return {name: out[name] for name in streams}

"""The three TSCNN inputs (plus the peers' u, v, strain input) and the x10 augmentation, applied
consistently to images and flow.

* SS: the key (apex) frame, grey, resized to n x n.
* LS: the key frame cut by a k x k grid, block (r, c) resized to n x n and stacked as channel r*k + c.
* DT: flows onset->key (X1, Y1) and key->offset (X2, Y2), each map min-max normalised on its own.
* UVS: flow onset->key u, v and its optical strain magnitude, each map min-max normalised on its own:
  the input of STSTNet / Off-ApexNet and the format the MEGC challenges distribute (at 28 x 28).

Augmentation (paper section 3.2): the original, its horizontal flip, and rotations by +-5 and +-10
degrees of both. Optical flow is a vector field: a flip mirrors the maps and negates X; a rotation
rotates the maps and the (X, Y) vectors with them. Augmentation acts on the face crop and the raw
flow, before blocks are cut and before strain and min-max normalisation.

Flow that arrives already normalised (a flow folder: u, v, strain each min-max scaled per image)
can only be augmented approximately: a horizontal flip mirrors the maps and turns u into 1 - u,
the exact min-max image of -u; rotations move the maps but cannot turn the vectors, since u and v
were normalised separately (their scales and offsets are lost).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from tscnn.preprocessing.flow import minmax_normalise, optical_strain

AUGMENTATIONS: tuple[tuple[bool, float], ...] = (
    (False, 0.0), (True, 0.0),
    (False, 5.0), (False, -5.0), (False, 10.0), (False, -10.0),
    (True, 5.0), (True, -5.0), (True, 10.0), (True, -10.0),
)
"""(horizontal flip, rotation in degrees, counter-clockwise) of the 10 training variants; index 0 is
the original, the only one used for validation and test."""


def rotation_matrix(shape: tuple[int, int], angle: float) -> np.ndarray:
    """2x3 affine rotation about the image centre (OpenCV convention: positive = counter-clockwise)."""
    h, w = shape[:2]
    return cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), angle, 1.0)


def transform_image(image: np.ndarray, flip: bool, angle: float) -> np.ndarray:
    """Flip then rotate an image (borders replicated so no black corners enter the face)."""
    if flip:
        image = image[:, ::-1]
    if angle:
        h, w = image.shape[:2]
        image = cv2.warpAffine(np.ascontiguousarray(image), rotation_matrix(image.shape, angle), (w, h),
                               flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return np.ascontiguousarray(image)


def transform_flow(flow: np.ndarray, flip: bool, angle: float) -> np.ndarray:
    """The flow field of the flipped/rotated frames: maps moved like an image, vectors turned with them."""
    flow = flow.astype(np.float32)
    if flip:
        flow = flow[:, ::-1].copy()
        flow[..., 0] *= -1
    if angle:
        h, w = flow.shape[:2]
        matrix = rotation_matrix(flow.shape, angle)
        flow = cv2.warpAffine(np.ascontiguousarray(flow), matrix, (w, h), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
        flow = flow @ matrix[:, :2].T.astype(np.float32)
    return np.ascontiguousarray(flow)


def grid_bounds(length: int, k: int) -> list[tuple[int, int]]:
    """Start/stop of k nearly equal cells along an axis of ``length`` pixels."""
    edges = np.round(np.linspace(0, length, k + 1)).astype(int)
    return list(zip(edges[:-1], edges[1:], strict=True))


def local_blocks(image: np.ndarray, k: int, size: int) -> np.ndarray:
    """(k*k, size, size): block (r, c) of a k x k grid, resized, in channel r*k + c (row-major)."""
    rows, cols = grid_bounds(image.shape[0], k), grid_bounds(image.shape[1], k)
    return np.stack([cv2.resize(image[r0:r1, c0:c1], (size, size), interpolation=cv2.INTER_AREA)
                     for r0, r1 in rows for c0, c1 in cols])


def resize_flow(flow: np.ndarray, size: int) -> np.ndarray:
    """Flow resized to size x size, vectors rescaled to the new pixel units."""
    h, w = flow.shape[:2]
    out = cv2.resize(flow, (size, size), interpolation=cv2.INTER_AREA)
    return out * np.array([size / w, size / h], np.float32)


def uvs_maps(flow: np.ndarray, size: int) -> np.ndarray:
    """(3, n, n): u, v and optical strain of a raw flow field, each min-max normalised on its own.

    The strain is taken at the flow's own resolution (derivatives of a downsized field are coarser)
    and then area-resized; u and v are the flow resized to n x n.
    """
    uv = resize_flow(flow, size)
    strain = cv2.resize(optical_strain(flow), (size, size), interpolation=cv2.INTER_AREA)
    return np.stack([minmax_normalise(uv[..., 0]), minmax_normalise(uv[..., 1]), minmax_normalise(strain)])


def make_streams(key: np.ndarray, flow_onset_key: np.ndarray, flow_key_offset: np.ndarray, size: int = 48,
                 blocks: int = 3, streams: Sequence[str] = ("ss", "ls", "dt", "uvs")) -> dict[str, np.ndarray]:
    """SS (1, n, n), LS (k*k, n, n) in [0, 1], DT (4, n, n) and UVS (3, n, n), each flow map
    min-max normalised on its own; only the ``streams`` asked for are built (a network reading DT alone
    costs no block grid)."""
    out: dict[str, np.ndarray] = {}
    if "ss" in streams or "ls" in streams:
        grey = key.astype(np.float32) / 255.0
        if "ss" in streams:
            out["ss"] = cv2.resize(grey, (size, size), interpolation=cv2.INTER_AREA)[None]
        if "ls" in streams:
            out["ls"] = local_blocks(grey, blocks, size)
    if "dt" in streams:
        maps = [resize_flow(flow_onset_key, size), resize_flow(flow_key_offset, size)]
        out["dt"] = np.stack([minmax_normalise(m[..., c]) for m in maps for c in (0, 1)])
    if "uvs" in streams:
        out["uvs"] = uvs_maps(flow_onset_key, size)
    return out


def clip_views(key: np.ndarray, flow_onset_key: np.ndarray, flow_key_offset: np.ndarray, size: int = 48,
               blocks: int = 3, streams: Sequence[str] = ("ss", "ls", "dt", "uvs"),
               mirrored: bool = False) -> dict[str, np.ndarray]:
    """(V, C, n, n) per stream: the clip (V = 1), and with ``mirrored`` also its horizontal mirror (V = 2), the
    two views a model with test-time flip averaging (``Config.tta_flip``) predicts from."""
    views = [make_streams(transform_image(key, flip, 0.0), transform_flow(flow_onset_key, flip, 0.0),
                          transform_flow(flow_key_offset, flip, 0.0), size, blocks, streams)
             for flip in ((False, True) if mirrored else (False,))]
    return {s: np.stack([view[s] for view in views]) for s in views[0]}


def augmented_streams(key: np.ndarray, flow_onset_key: np.ndarray, flow_key_offset: np.ndarray, size: int = 48,
                      blocks: int = 3, augment: bool = True) -> dict[str, np.ndarray]:
    """All augmentation variants of one clip's streams: each array is (A, C, n, n), A = 10 or 1."""
    variants = AUGMENTATIONS if augment else AUGMENTATIONS[:1]
    out: dict[str, list[np.ndarray]] = {"ss": [], "ls": [], "dt": [], "uvs": []}
    for flip, angle in variants:
        streams = make_streams(transform_image(key, flip, angle), transform_flow(flow_onset_key, flip, angle),
                               transform_flow(flow_key_offset, flip, angle), size, blocks)
        for name, array in streams.items():
            out[name].append(array)
    return {name: np.stack(arrays) for name, arrays in out.items()}


def normalised_uvs_variants(maps: np.ndarray, size: int = 48, augment: bool = True) -> np.ndarray:
    """(A, 3, n, n) augmentation variants of already-normalised (H, W, 3) u, v, strain maps in [0, 1].

    Used for flow folders, whose raw flow is lost: the maps are resized (bilinear), then moved like
    an image; a flip also turns u into 1 - u (exact). Rotations cannot turn the vectors (see the
    module docstring), so rotated variants are an approximation of the raw-flow augmentation.
    """
    if maps.ndim != 3 or maps.shape[2] != 3:
        raise ValueError(f"expected (H, W, 3) u, v, strain maps, got shape {maps.shape}")
    resized = cv2.resize(maps.astype(np.float32), (size, size), interpolation=cv2.INTER_LINEAR)
    variants = AUGMENTATIONS if augment else AUGMENTATIONS[:1]
    out = np.zeros((len(variants), 3, size, size), np.float32)
    for i, (flip, angle) in enumerate(variants):
        out[i] = np.stack([transform_image(resized[..., c], flip, angle) for c in range(3)])
        if flip:
            out[i, 0] = 1.0 - out[i, 0]  # u of the mirrored face is -u: 1 - u after min-max normalisation
    return out


VOLUME_FRAMES = 10
"""Frames of the ``vol`` stream: a clip's face frames onset..offset resampled in time to this length."""


def volume_maps(frames: Sequence[np.ndarray], size: int, length: int = VOLUME_FRAMES) -> np.ndarray:
    """(length, n, n) float32 in [0, 1]: grey face frames (onset..offset, in order) area-resized to n x n and
    resampled in time by linear interpolation between neighbouring frames (the first and last kept), so
    clips of any length give volumes of one shape (LBP-TOP baselines use the temporal interpolation model
    for this; linear interpolation is the simpler stand-in used here). One frame gives a still volume."""
    if not frames:
        raise ValueError("a volume needs at least 1 frame, got none")
    if len(frames) == 1:
        frames = [frames[0], frames[0]]
    stack = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in frames]).astype(np.float32)
    position = np.linspace(0, len(frames) - 1, length)
    below = np.minimum(np.floor(position).astype(int), len(frames) - 2)
    weight = (position - below)[:, None, None].astype(np.float32)
    return ((1 - weight) * stack[below] + weight * stack[below + 1]) / np.float32(255)

"""Per-frame skin RGB inside a face: landmark-placed patches and the adaptive skin mask.

Per-frame RGB for the unsupervised methods is the mean over skin pixels of
either the whole crop (``'box'``) or three landmark-placed patches, forehead
and both cheeks (``'landmarks'``; :func:`landmark_polygons`), which keep away
from eyes, brows, nostrils, mouth, hair and background. A frame with too few
skin pixels (or no face box yet) gives NaN and ``valid=False`` rather than a
made-up value.
"""

from __future__ import annotations

import cv2
import numpy as np


# Landmark ROI patches as quadrilaterals in a face frame: x along the eye line
# in inter-ocular distances from the eyes' midpoint, y towards the mouth in
# eye-to-mouth distances. Forehead: between the brows (~0.3 down to the eyes)
# and the hairline (~1.0); cheeks: below the eye sockets, lateral to the nose
# (nostrils reach ~0.2) and above the lips (~0.85).
LANDMARK_PATCHES: dict[str, tuple[tuple[float, float], ...]] = {
    "forehead": ((-0.4, -0.72), (0.4, -0.72), (0.4, -0.45), (-0.4, -0.45)),
    "right_cheek": ((-0.68, 0.3), (-0.27, 0.3), (-0.27, 0.75), (-0.68, 0.75)),
    "left_cheek": ((0.27, 0.3), (0.68, 0.3), (0.68, 0.75), (0.27, 0.75)),
}


def landmark_polygons(landmarks) -> list[np.ndarray]:
  """Forehead and cheek patches ``[4, 2]`` (full-frame pixels) from BlazeFace keypoints.

  The face frame follows the eyes and mouth, so the patches turn, shrink and
  narrow with roll, scale and yaw of the head.
  """
  pts = np.asarray(landmarks, np.float64)
  right_eye, left_eye, mouth = pts[0], pts[1], pts[3]
  mid = (right_eye + left_eye) / 2
  ex = left_eye - right_eye
  # Downwards: the eye-to-mouth vector without its eye-line component, so a
  # turned head does not shear the patches.
  down = mouth - mid
  down = down - ex * (down @ ex) / max(ex @ ex, 1e-12)
  return [
      mid + np.asarray(q)[:, :1] * ex + np.asarray(q)[:, 1:] * down
      for q in LANDMARK_PATCHES.values()
  ]


def landmark_patch_mosaic(frame_rgb: np.ndarray, landmarks, size: int) -> np.ndarray:
  """The forehead and cheek patches warped into one ``[size, size, 3]`` image.

  The forehead fills the top half, the right cheek (image left) the bottom-left
  quarter and the left cheek the bottom-right quarter, each patch's corners
  mapped to its rectangle's, so the image holds skin only and a given pixel
  stays on the same spot of the face as the head moves, turns and scales. Each
  patch is warped at 4x the output resolution and then area-averaged, so every
  output pixel is a mean over the source pixels it covers.
  """
  if size < 2 or size % 2:
    raise ValueError(f"the landmark patch mosaic needs an even size >= 2, got {size}")
  half = size // 2
  targets = {
      "forehead": (0, 0, size, half),
      "right_cheek": (0, half, half, half),
      "left_cheek": (half, half, half, half),
  }
  polys = dict(zip(LANDMARK_PATCHES, landmark_polygons(landmarks)))
  out = np.empty((size, size, frame_rgb.shape[2]), frame_rgb.dtype)
  for name, (x, y, w, h) in targets.items():
    poly = polys[name]
    fine_w, fine_h = 4 * w, 4 * h
    dst = np.float32([[0, 0], [fine_w, 0], [fine_w, fine_h], [0, fine_h]])
    m = cv2.getPerspectiveTransform(poly.astype(np.float32), dst)
    fine = cv2.warpPerspective(
        frame_rgb, m, (fine_w, fine_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    out[y : y + h, x : x + w] = cv2.resize(fine, (w, h), interpolation=cv2.INTER_AREA)
  return out


def landmark_mean_rgb(
    frame_rgb: np.ndarray, landmarks, *, use_skin_mask: bool = False, min_fraction: float = 0.05
) -> tuple[np.ndarray, bool]:
  """Mean RGB over the forehead and cheek patches (optionally only their skin pixels).

  Returns NaN and False when the patches have fewer than ``min_fraction`` of
  their area inside the frame (and on skin, with ``use_skin_mask``).
  """
  polys = landmark_polygons(landmarks)
  h, w = frame_rgb.shape[:2]
  allpts = np.concatenate(polys)
  x0, y0 = np.floor(allpts.min(axis=0)).astype(int)
  x1, y1 = np.ceil(allpts.max(axis=0)).astype(int) + 1
  full_area = sum(cv2.contourArea(p.astype(np.float32)) for p in polys)
  cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
  nan = np.full(3, np.nan, np.float32)
  if cx1 <= cx0 or cy1 <= cy0 or full_area < 1:
    return nan, False
  region = frame_rgb[cy0:cy1, cx0:cx1]
  mask = np.zeros(region.shape[:2], np.uint8)
  # Fixed-point vertices (4 fractional bits) keep the patch edges sub-pixel.
  cv2.fillPoly(
      mask, [np.round((p - (cx0, cy0)) * 16).astype(np.int32) for p in polys], 255, shift=4
  )
  if use_skin_mask:
    mask[~skin_mask(region)] = 0
  if cv2.countNonZero(mask) < max(1.0, min_fraction * full_area):
    return nan, False
  return np.asarray(cv2.mean(region, mask=mask)[:3], np.float32), True


# Broad YCrCb skin bounds (Y, Cr, Cb); wide enough for dark and light skin and
# coloured lighting, narrowed per face by the adaptive step below.
_SKIN_LO = np.array([35, 133, 70], np.uint8)
_SKIN_HI = np.array([250, 185, 135], np.uint8)


def skin_mask(
    crop_rgb: np.ndarray,
    *,
    adaptive: bool = True,
    tolerance: float = 3.0,
    min_tolerance: float = 6.0,
) -> np.ndarray:
  """Boolean skin mask ``[h, w]`` of a face crop.

  Pixels pass fixed, broad YCrCb bounds; with ``adaptive`` the Cr/Cb median of
  the passing pixels in the crop's centre (which is mostly face) defines this
  face's own skin colour, and only pixels within ``tolerance`` robust standard
  deviations (at least ``min_tolerance`` levels) of it are kept. That removes
  hair, background and lips that the fixed bounds let through.
  """
  ycc = cv2.cvtColor(crop_rgb, cv2.COLOR_RGB2YCrCb)
  mask = cv2.inRange(ycc, _SKIN_LO, _SKIN_HI) > 0
  if not adaptive:
    return mask
  h, w = mask.shape
  cy0, cy1, cx0, cx1 = h // 4, h - h // 4, w // 4, w - w // 4
  # A strided sample of the centre is enough for robust statistics.
  step = max(1, min(h, w) // 48)
  centre = ycc[cy0:cy1:step, cx0:cx1:step][mask[cy0:cy1:step, cx0:cx1:step]]
  if len(centre) < 16:
    return mask
  crcb = centre[:, 1:].astype(np.float32)
  med = np.median(crcb, axis=0)
  mad = np.median(np.abs(crcb - med), axis=0) * 1.4826
  tol = np.maximum(tolerance * mad, min_tolerance)
  lo = np.clip(np.array([_SKIN_LO[0], *(med - tol)]), 0, 255).astype(np.uint8)
  hi = np.clip(np.array([_SKIN_HI[0], *(med + tol)]), 0, 255).astype(np.uint8)
  return mask & (cv2.inRange(ycc, lo, hi) > 0)


def skin_mean_rgb(
    crop_rgb: np.ndarray, mask: np.ndarray | None, *, min_fraction: float = 0.05
) -> tuple[np.ndarray, bool]:
  """Mean RGB over masked pixels; NaN and False when under ``min_fraction`` of the crop is skin."""
  if mask is None:
    mean = cv2.mean(crop_rgb)[:3]
    return np.asarray(mean, np.float32), True
  m = mask.view(np.uint8) if mask.dtype == np.bool_ else mask.astype(np.uint8)
  count = cv2.countNonZero(m)
  if count < max(1, min_fraction * m.size):
    return np.full(3, np.nan, np.float32), False
  return np.asarray(cv2.mean(crop_rgb, mask=m)[:3], np.float32), True

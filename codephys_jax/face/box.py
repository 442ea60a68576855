"""A square face box (:class:`Box`) and the edge-replicated square crop of it (:func:`crop_square`)."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np


@dataclasses.dataclass(frozen=True)
class Box:
  """Square box by centre and side, in full-frame pixel coordinates (floats).

  ``landmarks`` (detectors that give keypoints) are ``(x, y)`` pairs in
  full-frame pixels, in the detector's keypoint order; they do not take part
  in comparisons.
  """

  cx: float
  cy: float
  side: float
  landmarks: tuple[tuple[float, float], ...] | None = dataclasses.field(default=None, compare=False)

  def scaled(self, factor: float) -> "Box":
    return Box(self.cx, self.cy, self.side * factor, self.landmarks)

  def as_int(self) -> tuple[int, int, int]:
    """``(x0, y0, side)`` rounded to pixels."""
    side = max(1, int(round(self.side)))
    return int(round(self.cx - side / 2)), int(round(self.cy - side / 2)), side


def crop_square(frame: np.ndarray, box: Box) -> np.ndarray:
  """Square crop of ``box``; parts outside the frame are filled by edge replication."""
  h, w = frame.shape[:2]
  x0, y0, side = box.as_int()
  x1, y1 = x0 + side, y0 + side
  cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
  if cx1 <= cx0 or cy1 <= cy0:
    # Box entirely outside the frame: replicate the nearest edge pixel.
    px = frame[min(max(y0, 0), h - 1), min(max(x0, 0), w - 1)]
    return np.broadcast_to(px, (side, side, frame.shape[2])).copy()
  crop = frame[cy0:cy1, cx0:cx1]
  pads = (cy0 - y0, y1 - cy1, cx0 - x0, x1 - cx1)
  if any(pads):
    crop = cv2.copyMakeBorder(crop, *pads, borderType=cv2.BORDER_REPLICATE)
  return crop

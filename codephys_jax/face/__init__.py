"""Face region of interest, one job per module:

  face.box        `Box` (square, centre and side) and `crop_square`
  face.detectors  detectors by name (BlazeFace, Haar), their anchors and NMS
  face.tracker    `FaceTracker` (periodic re-detection, smoothing, jump rejection)
  face.roi        landmark-placed skin patches and the adaptive skin mask, their mean RGB

The names below are the package's public API.
"""

from codephys_jax.face.box import Box, crop_square
from codephys_jax.face.detectors import (
    BLAZEFACE_FILE,
    BLAZEFACE_KEYPOINTS,
    BLAZEFACE_SHA256,
    DEFAULT_DETECTOR,
    DETECTORS,
    BlazeFaceDetector,
    DetectorUnavailableError,
    FaceDetector,
    HaarDetector,
    NoFaceError,
    available_detectors,
    detect_faces,
    detect_near,
    get_detector,
    verified_asset,
)
from codephys_jax.face.roi import (
    LANDMARK_PATCHES,
    landmark_mean_rgb,
    landmark_patch_mosaic,
    landmark_polygons,
    skin_mask,
    skin_mean_rgb,
)
from codephys_jax.face.tracker import FaceTracker

__all__ = [
    "BLAZEFACE_FILE",
    "BLAZEFACE_KEYPOINTS",
    "BLAZEFACE_SHA256",
    "DEFAULT_DETECTOR",
    "DETECTORS",
    "LANDMARK_PATCHES",
    "BlazeFaceDetector",
    "Box",
    "DetectorUnavailableError",
    "FaceDetector",
    "FaceTracker",
    "HaarDetector",
    "NoFaceError",
    "available_detectors",
    "crop_square",
    "detect_faces",
    "detect_near",
    "get_detector",
    "landmark_mean_rgb",
    "landmark_patch_mosaic",
    "landmark_polygons",
    "skin_mask",
    "skin_mean_rgb",
    "verified_asset",
]

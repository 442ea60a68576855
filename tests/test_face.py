"""Tests for codephys_jax.face: detectors, cropping, skin mask, tracking, landmark ROI."""

import hashlib
import math

import cv2
import numpy as np
import pytest

from codephys_jax import face
from codephys_jax import signal
from codephys_jax.face import (
    Box,
    DetectorUnavailableError,
    FaceTracker,
    available_detectors,
    crop_square,
    detect_faces,
    get_detector,
    skin_mask,
    skin_mean_rgb,
)
from codephys_jax.synthetic_video import make_subject
from codephys_jax.video import VideoError


@pytest.fixture(scope="module")
def face_frames():
  subject = make_subject(3, duration_s=2.0, fps=30.0, width=320, height=240)
  return list(subject.frames())


def test_crop_square_inside_equals_slice():
  frame = np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8)
  crop = crop_square(frame, Box(40.0, 30.0, 20.0))
  np.testing.assert_array_equal(crop, frame[20:40, 30:50])


def test_crop_square_outside_pads_by_edge_replication():
  frame = np.random.default_rng(1).integers(0, 256, (60, 80, 3), dtype=np.uint8)
  # Box [-10, 20) x [50, 80) sticks out left and bottom.
  crop = crop_square(frame, Box(5.0, 65.0, 30.0))
  ref = np.pad(frame, ((0, 20), (10, 0), (0, 0)), mode="edge")[50:80, 0:30]
  assert crop.shape == (30, 30, 3)
  np.testing.assert_array_equal(crop, ref)


def test_skin_mask_separates_skin_from_background():
  rng = np.random.default_rng(0)
  img = np.empty((64, 64, 3), np.float32)
  img[:, :40] = (205, 150, 125)  # skin in the centre-left
  img[:, 40:] = (60, 90, 200)  # blue background
  img[28:34, 10:30] = (30, 25, 25)  # a dark "eyebrow"
  img = np.clip(img + rng.normal(0, 3, img.shape), 0, 255).astype(np.uint8)
  for adaptive in (False, True):
    m = skin_mask(img, adaptive=adaptive)
    assert m.dtype == np.bool_ and m.shape == (64, 64)
    assert m[:, :40][:28].mean() > 0.95
    assert m[:, 40:].mean() < 0.02
    assert m[28:34, 10:30].mean() < 0.1


def test_adaptive_mask_drops_off_tone_pixels():
  # A second skin-like but clearly different tone (e.g. lips, hair highlight)
  # passes the fixed bounds but not the face-adaptive ones.
  img = np.empty((64, 64, 3), np.uint8)
  img[:] = (200, 160, 135)
  img[:8] = (170, 60, 70)
  fixed, adaptive = skin_mask(img, adaptive=False), skin_mask(img, adaptive=True)
  assert fixed[:8].mean() > 0.9
  assert adaptive[:8].mean() == 0.0
  assert adaptive[8:].mean() == 1.0


def test_skin_mean_rgb_matches_numpy_and_rejects():
  rng = np.random.default_rng(2)
  crop = rng.integers(0, 256, (30, 30, 3), dtype=np.uint8)
  mask = rng.random((30, 30)) < 0.5
  rgb, ok = skin_mean_rgb(crop, mask)
  assert ok and rgb.dtype == np.float32
  np.testing.assert_allclose(rgb, crop[mask].mean(axis=0), rtol=1e-5)
  sparse = np.zeros((30, 30), bool)
  sparse[0, :5] = True
  rgb, ok = skin_mean_rgb(crop, sparse, min_fraction=0.05)
  assert not ok and np.isnan(rgb).all()
  rgb, ok = skin_mean_rgb(crop, None)
  np.testing.assert_allclose(rgb, crop.reshape(-1, 3).mean(axis=0), rtol=1e-5)


def test_detect_faces_on_synthetic_and_not_on_noise(face_frames):
  boxes = detect_faces(face_frames[0])
  assert len(boxes) >= 1
  b = max(boxes, key=lambda x: x.side)  # what the tracker picks
  assert 60 < b.cx < 260 and 50 < b.cy < 190 and 60 < b.side < 200
  noise = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
  assert detect_faces(noise) == []


def test_tracker_finds_face_enlarges_and_is_smooth(face_frames):
  tracker = FaceTracker(detect_every=10, box_scale=1.5)
  boxes = [tracker.update(f) for f in face_frames]
  assert all(b is not None for b in boxes)
  assert tracker.num_detector_calls == 6  # 60 frames / every 10
  assert tracker.num_detections >= 5
  # First frame: exactly the detector's square scaled 1.5x about its centre.
  det = max(detect_faces(face_frames[0]), key=lambda x: x.side)
  assert boxes[0].side == pytest.approx(1.5 * det.side)
  assert (boxes[0].cx, boxes[0].cy) == pytest.approx((det.cx, det.cy))
  c = np.array([[b.cx, b.cy, b.side] for b in boxes])
  steps = np.abs(np.diff(c, axis=0))
  assert steps.max() < 0.05 * c[:, 2].mean()  # no frame-to-frame jitter or jumps


def test_default_tracker_keeps_detector_jitter_out_of_a_still_face_crop():
  # A still head: every box movement is detector jitter, which at the 16-72 px
  # crop sizes moves hair/background edges by a fraction of a pixel, an
  # intensity change many times the pulse's. The defaults (a detection every
  # 5 frames, smoothing 0.05) must keep it well below the old 10 / 0.3.
  frames = list(make_subject(5, duration_s=6.0, width=320, height=240, motion=0.0).frames())

  def pulse_band_jitter(**kw):
    tracker = FaceTracker(**kw)
    c = np.array([[b.cx, b.cy, b.side] for b in map(tracker.update, frames)])[30:]
    band = signal.bandpass(c - c.mean(axis=0), 30.0)  # 0.75-2.5 Hz, where the pulse is
    return float(np.max(np.std(band, axis=0)) / c[:, 2].mean())  # fraction of the box side

  default, old = pulse_band_jitter(), pulse_band_jitter(detect_every=10, smoothing=0.3)
  assert default < old / 3, (default, old)  # measured: 4.6x lower
  assert default < 0.0015


def test_tracker_rejects_isolated_jump_then_follows(face_frames):
  f0 = face_frames[0]
  moved = np.roll(f0, 110, axis=1)  # face jumps ~1 face width right
  tracker = FaceTracker(detect_every=1, smoothing=1.0, patience=3)
  b0 = tracker.update(f0)
  seq = [tracker.update(moved) for _ in range(3)]
  # Two implausible detections are ignored; the third in a row is believed.
  assert seq[0] == b0 and seq[1] == b0
  assert seq[2].cx == pytest.approx(b0.cx + 110, abs=8)


def test_tracker_keeps_last_box_when_face_lost(face_frames):
  blank = np.full_like(face_frames[0], 128)
  tracker = FaceTracker(detect_every=2, smoothing=1.0)
  b0 = tracker.update(face_frames[0])
  later = [tracker.update(blank) for _ in range(6)]
  assert all(b == b0 for b in later)


def test_carried_over_boxes_are_not_counted_as_detections(face_frames):
  """A face on the first frame only: a box on every frame, a detection on few."""
  blank = np.full_like(face_frames[0], 128)
  tracker = FaceTracker(detect_every=2, smoothing=1.0)
  boxes = [tracker.update(f) for f in [face_frames[0]] + [blank] * 9]
  assert all(b is not None for b in boxes)
  # Detector calls on frames 0, 2, 4, 6, 8; only frame 0's found the face, and
  # frame 1 rides on it.
  assert tracker.num_detector_calls == 5 and tracker.num_detections == 1
  assert tracker.num_detected_frames == 2 and tracker.detected_fraction == pytest.approx(0.2)


def test_tracker_none_until_face_seen():
  noise = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
  tracker = FaceTracker(detect_every=5)
  assert [tracker.update(noise) for _ in range(3)] == [None] * 3
  assert not tracker.found_any
  assert tracker.num_detector_calls == 3  # retried every frame while nothing is tracked
  with pytest.raises(ValueError, match="detect_every"):
    FaceTracker(detect_every=0)


def test_skin_mask_on_synthetic_face_crop(face_frames):
  tracker = FaceTracker()
  box = tracker.update(face_frames[0])
  crop = crop_square(face_frames[0], box)
  m = skin_mask(crop)
  n = m.shape[0]
  centre = m[int(0.4 * n) : int(0.6 * n), int(0.3 * n) : int(0.7 * n)]
  # The cheek/nose band is mostly skin; the 1.5x crop's corners are background.
  assert centre.mean() > 0.6
  corners = np.concatenate([m[: n // 10, : n // 10].ravel(), m[: n // 10, -n // 10 :].ravel()])
  assert corners.mean() < 0.2
  assert 0.15 < m.mean() < 0.7


# ----------------------------------------------------------------- detectors and landmark ROI

HAS_HAAR = hasattr(cv2, "CascadeClassifier")


def test_detector_registry():
  assert "blazeface" in available_detectors()
  assert ("haar" in available_detectors()) == HAS_HAAR
  assert get_detector("blazeface") is get_detector("blazeface")  # loaded once
  with pytest.raises(ValueError, match="unknown face detector 'nope'"):
    get_detector("nope")


@pytest.mark.skipif(HAS_HAAR, reason="this OpenCV has the Haar cascade")
def test_haar_unavailable_is_a_clear_error():
  with pytest.raises(DetectorUnavailableError, match="blazeface"):
    get_detector("haar")
  with pytest.raises(DetectorUnavailableError):
    FaceTracker(detector="haar")


def test_vendored_model_hash_is_checked(tmp_path, monkeypatch):
  good = (face.detectors._ASSETS / face.BLAZEFACE_FILE).read_bytes()
  assert hashlib.sha256(good).hexdigest() == face.BLAZEFACE_SHA256
  monkeypatch.setattr(face.detectors, "_ASSETS", tmp_path)
  with pytest.raises(VideoError, match="missing") as err:
    face.BlazeFaceDetector()
  assert face.BLAZEFACE_FILE in str(err.value)
  # A Git LFS pointer (what a checkout without LFS holds) is refused by hash.
  (tmp_path / face.BLAZEFACE_FILE).write_text(
      "version https://git-lfs.github.com/spec/v1\noid sha256:"
      + face.BLAZEFACE_SHA256
      + "\nsize 229032\n"
  )
  with pytest.raises(VideoError, match="sha256 .* differs"):
    face.BlazeFaceDetector()


def test_blazeface_keypoints_on_synthetic_face(face_frames):
  for frame in face_frames[::20]:
    boxes = detect_faces(frame, detector="blazeface")
    assert len(boxes) == 1
    b = boxes[0]
    pts = np.asarray(b.landmarks)
    assert pts.shape == (6, 2)
    right_eye, left_eye, nose, mouth = pts[:4]
    # Image-left eye first; eyes above the nose tip, the nose above the mouth.
    assert right_eye[0] < nose[0] < left_eye[0]
    assert max(right_eye[1], left_eye[1]) < nose[1] < mouth[1]
    iod = np.linalg.norm(left_eye - right_eye)
    assert 0.25 * b.side < iod < 0.5 * b.side
    assert abs(right_eye[1] - left_eye[1]) < 0.1 * iod  # upright synthetic head
    # Every keypoint lies inside the (unenlarged) face square.
    assert np.all(np.abs(pts[:4] - (b.cx, b.cy)) < b.side / 2)


@pytest.mark.skipif(not HAS_HAAR, reason="no Haar cascade in this OpenCV")
def test_blazeface_box_is_calibrated_to_the_haar_square(face_frames):
  # box_scale means the same crop whichever detector runs.
  for frame in face_frames[::30]:
    h = max(detect_faces(frame, detector="haar"), key=lambda x: x.side)
    b = max(detect_faces(frame, detector="blazeface"), key=lambda x: x.side)
    assert b.side == pytest.approx(h.side, rel=0.12)
    assert math.hypot(b.cx - h.cx, b.cy - h.cy) < 0.08 * h.side


def _keypoints(mid=(100.0, 80.0), iod=40.0, down=50.0, angle=0.0):
  c, s = math.cos(angle), math.sin(angle)
  ex, ey = np.array([c, s]), np.array([-s, c])
  m = np.asarray(mid)
  return np.array(
      [
          m - ex * iod / 2,
          m + ex * iod / 2,
          m + ey * 0.6 * down,
          m + ey * down,
          m - ex * iod,
          m + ex * iod,
      ]
  )


def test_landmark_polygons_placement_and_equivariance():
  kp = _keypoints()
  forehead, right_cheek, left_cheek = face.landmark_polygons(kp)
  eye_y, mouth_y = 80.0, 130.0
  assert np.all(forehead[:, 1] < eye_y - 0.4 * 50)  # above the brows
  assert np.all(forehead[:, 1] > eye_y - 0.75 * 50)  # below the hairline
  for cheek in (right_cheek, left_cheek):
    assert np.all(cheek[:, 1] > eye_y + 0.25 * 50) and np.all(cheek[:, 1] < mouth_y - 0.2 * 50)
  assert np.all(right_cheek[:, 0] < 100 - 0.25 * 40) and np.all(left_cheek[:, 0] > 100 + 0.25 * 40)
  # Rotating and scaling the keypoints rotates and scales the patches with them.
  angle, scale = 0.4, 1.5
  rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
  moved = [(p - (100, 80)) @ rot.T * scale + (100, 80) for p in face.landmark_polygons(kp)]
  turned = face.landmark_polygons((kp - (100, 80)) @ rot.T * scale + (100, 80))
  for a, b in zip(moved, turned):
    np.testing.assert_allclose(a, b, atol=1e-9)


def test_landmark_mean_rgb_averages_only_the_patches():
  img = np.zeros((200, 200, 3), np.uint8)
  img[:] = (20, 200, 20)  # background and eyes/mouth: green
  kp = _keypoints()
  for poly in face.landmark_polygons(kp):
    cv2.fillConvexPoly(img, np.round(poly).astype(np.int32), (200, 150, 120))
  # Only rasterised edge pixels can mix in the green around the patches.
  rgb, ok = face.landmark_mean_rgb(img, kp)
  assert ok
  np.testing.assert_allclose(rgb, (200, 150, 120), atol=12)
  # With the skin mask, the green edge pixels are dropped entirely.
  rgb, ok = face.landmark_mean_rgb(img, kp, use_skin_mask=True)
  assert ok
  np.testing.assert_allclose(rgb, (200, 150, 120), atol=0.5)
  # Patches outside the frame give NaN and False, never a made-up value.
  rgb, ok = face.landmark_mean_rgb(img, kp + 1000.0)
  assert not ok and np.isnan(rgb).all()


def test_landmark_patches_fall_on_skin_of_synthetic_faces(face_frames):
  tracker = FaceTracker()
  for i, frame in enumerate(face_frames):
    box = tracker.update(frame)
    if i % 15:
      continue
    assert box.landmarks is not None and len(box.landmarks) == 6
    mask = np.zeros(frame.shape[:2], np.uint8)
    for poly in face.landmark_polygons(box.landmarks):
      cv2.fillConvexPoly(mask, np.round(poly).astype(np.int32), 1)
    skin = skin_mask(frame, adaptive=False)
    assert mask.sum() > 200
    assert skin[mask > 0].mean() > 0.97  # no eyes, brows, hair, lips or background


def test_landmark_patch_mosaic_places_each_patch_and_moves_with_the_face():
  img = np.zeros((200, 200, 3), np.uint8)
  img[:] = (20, 200, 20)  # around the patches: green
  kp = _keypoints()
  colours = {"forehead": (200, 150, 120), "right_cheek": (180, 120, 100), "left_cheek": (160, 110, 90)}
  for name, poly in zip(face.LANDMARK_PATCHES, face.landmark_polygons(kp)):
    cv2.fillConvexPoly(img, np.round(poly).astype(np.int32), colours[name])
  mosaic = face.landmark_patch_mosaic(img, kp, 16)
  assert mosaic.shape == (16, 16, 3) and mosaic.dtype == np.uint8
  # Inside each quarter (away from the patch edges, where rasterisation mixes in green).
  np.testing.assert_allclose(mosaic[1:7, 2:14].reshape(-1, 3).mean(0), colours["forehead"], atol=3)
  np.testing.assert_allclose(mosaic[9:15, 1:7].reshape(-1, 3).mean(0), colours["right_cheek"], atol=3)
  np.testing.assert_allclose(mosaic[9:15, 9:15].reshape(-1, 3).mean(0), colours["left_cheek"], atol=3)
  # The same face shifted, turned and scaled gives (nearly) the same mosaic.
  angle, scale, shift = 0.3, 1.3, np.array([15.0, -10.0])
  rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
  m = np.concatenate([rot * scale, (shift + (100, 80) - rot @ (100, 80) * scale)[:, None]], 1)
  moved_img = cv2.warpAffine(img, m, (200, 200), flags=cv2.INTER_LINEAR, borderValue=(20, 200, 20))
  moved_kp = (kp - (100, 80)) @ rot.T * scale + (100, 80) + shift
  moved = face.landmark_patch_mosaic(moved_img, moved_kp, 16)
  assert np.abs(moved.astype(int) - mosaic.astype(int))[1:15, 1:15].mean() < 3
  with pytest.raises(ValueError, match="even size"):
    face.landmark_patch_mosaic(img, kp, 15)

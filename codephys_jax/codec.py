"""An emulated H.264-style video codec: block transform, dead-zone quantisation
and inter-frame (P-frame) coding, applied to a whole video in display order.

Real rPPG videos are lossy files. At the rates of re-encoded webcam video
(0.01-0.02 bits per pixel: 80-210 kbit/s at 640x480 and 30 fps) the codec's
largest effect on the pulse is temporal: a P-frame codes only the change from
the previous decoded frame, and a change smaller than the quantiser's dead zone
is dropped, so a skin block keeps its old value until the accumulated change
(pulse, noise, motion) crosses the threshold, and it is refreshed on the next
intra frame. Per-frame codecs (`degradations.jpeg`, `degradations.video_codec`)
cannot produce this, and the opencv wheel has no H.264 encoder, hence this
emulation. What it models, per frame:

- colour: full-range YCbCr (BT.601) with 4:2:0 chroma (area-averaged to half
  size, bilinear back);
- transform: the orthonormal 4x4 DCT per block (H.264's scaled integer core
  transform is an orthonormal approximation of it: its odd basis rows are
  (2, 1, -1, -2) / sqrt(10) where the DCT's are (0.653, 0.271, -0.271, -0.653));
- quantisation: a step of 0.625 * 2 ** (qp / 6) for a quantisation parameter
  `qp`, which doubles every 6 like H.264's table and equals it at multiples of
  6 (within 3.1% between them; fractional QPs are allowed), with the reference
  encoder's dead-zone rounding offsets, 1/3 of a step for intra and 1/6 for
  inter blocks; the same step for luma and chroma (H.264 lowers chroma's QP
  above 30);
- frames: an intra frame every `gop` frames (x264's default keyframe interval
  is 250) coding the block itself, and P-frames coding the difference from the
  previous decoded frame without motion compensation (a static camera: head
  motion is coded as residual, blockily).

Not modelled: intra prediction, motion vectors, B-frames, rate control (the
step is fixed), the deblocking filter and entropy coding. Output depends on the
whole history of the video, so it is applied in order, once per video
(`encode_decode`), unlike the streaming degradations.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Iterator

import cv2
import numpy as np

BLOCK = 4
INTRA_OFFSET = 1.0 / 3.0
INTER_OFFSET = 1.0 / 6.0
MAX_QP = 51.0


def qp_step(qp: float) -> float:
  """The quantiser step for `qp`: H.264's at multiples of 6 (0.625 at 0), doubling every 6."""
  return 0.625 * 2.0 ** (float(qp) / 6.0)


def _dct_matrix(n: int) -> np.ndarray:
  k = np.arange(n)[:, None]
  i = np.arange(n)[None, :]
  m = np.sqrt(2.0 / n) * np.cos(np.pi * (2 * i + 1) * k / (2 * n))
  m[0] /= np.sqrt(2.0)
  return m.astype(np.float32)


_DCT = _dct_matrix(BLOCK)


def _blocks(plane: np.ndarray) -> np.ndarray:
  h, w = plane.shape
  return plane.reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK)


def _quantise_plane(residual: np.ndarray, step: float, offset: float) -> np.ndarray:
  """Transform, dead-zone quantise, dequantise and inverse-transform one plane."""
  coef = np.einsum("ij,ajbk,lk->aibl", _DCT, _blocks(residual), _DCT, optimize=True)
  level = np.sign(coef) * np.floor(np.abs(coef) / step + offset)
  rec = np.einsum("ij,aibl,lk->ajbk", _DCT, level * step, _DCT, optimize=True)
  return rec.reshape(residual.shape)


@dataclasses.dataclass
class InterFrameCodec:
  """Encodes and decodes one video, a frame at a time, in display order.

  Attributes:
    qp: quantisation parameter (0-51, H.264's scale: 18 is near-transparent,
      30-35 is typical of low-rate re-encodes).
    gop: frames from one intra frame to the next (>= 1; 1 = all intra).
  """

  qp: float
  gop: int = 250

  def __post_init__(self):
    if not 0.0 <= float(self.qp) <= MAX_QP:
      raise ValueError(f"qp must be in [0, {MAX_QP:g}], got {self.qp}")
    if int(self.gop) != self.gop or self.gop < 1:
      raise ValueError(f"gop must be an integer >= 1, got {self.gop}")
    self._step = qp_step(self.qp)
    self._prev: list[np.ndarray] | None = None
    self._shape: tuple[int, ...] | None = None
    self._index = 0

  def _planes(self, frame: np.ndarray) -> list[np.ndarray]:
    h, w = frame.shape[:2]
    ph, pw = -h % (2 * BLOCK), -w % (2 * BLOCK)
    padded = np.pad(frame, ((0, ph), (0, pw), (0, 0)), mode="edge")
    ycc = cv2.cvtColor(padded, cv2.COLOR_RGB2YCrCb).astype(np.float32)
    half = (padded.shape[1] // 2, padded.shape[0] // 2)
    chroma = [cv2.resize(ycc[..., c], half, interpolation=cv2.INTER_AREA) for c in (1, 2)]
    return [ycc[..., 0]] + chroma

  def __call__(self, frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
      raise ValueError(
          f"expected a uint8 RGB frame [H, W, 3], got dtype {frame.dtype} and shape {frame.shape}"
      )
    if self._shape is not None and frame.shape != self._shape:
      raise ValueError(f"frame {self._index} has shape {frame.shape}, earlier frames {self._shape}")
    self._shape = frame.shape
    planes = self._planes(frame)
    intra = self._prev is None or self._index % self.gop == 0
    if intra:
      rec = [_quantise_plane(p, self._step, INTRA_OFFSET) for p in planes]
    else:
      rec = [
          prev + _quantise_plane(p - prev, self._step, INTER_OFFSET)
          for p, prev in zip(planes, self._prev)
      ]
    # The decoder holds 8-bit samples: the next frame is predicted from these.
    rec = [np.clip(np.rint(r), 0, 255) for r in rec]
    self._prev = rec
    self._index += 1
    size = (rec[0].shape[1], rec[0].shape[0])
    chroma = [cv2.resize(c, size, interpolation=cv2.INTER_LINEAR) for c in rec[1:]]
    ycc = np.clip(np.rint(np.stack([rec[0]] + chroma, axis=-1)), 0, 255).astype(np.uint8)
    h, w = frame.shape[:2]
    return np.ascontiguousarray(cv2.cvtColor(ycc, cv2.COLOR_YCrCb2RGB)[:h, :w])


def encode_decode(frames: Iterable[np.ndarray], qp: float, *, gop: int = 250) -> Iterator[np.ndarray]:
  """The frames of one video after `InterFrameCodec(qp, gop)`, lazily, in order."""
  codec = InterFrameCodec(qp=qp, gop=gop)
  for frame in frames:
    yield codec(frame)

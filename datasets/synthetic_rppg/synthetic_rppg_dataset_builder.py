"""Embedded synthetic rPPG dataset: rendered faces with a known pulse, no download.

Each subject is drawn from its seed: a PPG with realistic morphology, heart-rate
variability and respiratory modulation (`codephys_jax.synthetic_ppg`), and a
rendered face whose skin carries the pulse with a blood-volume RGB signature,
with background, lighting drift, head motion and sensor noise
(`codephys_jax.synthetic_video`). The rendered frames go through the same face
pipeline as real videos (Haar detection, tracking, crop, skin mask), so the
default run exercises the real code path.

Option `codec_qp=(low, high)`: each training video goes through an emulated
H.264-style inter-frame codec (`codephys_jax.codec`) at a quantisation
parameter drawn per subject, as real recordings are lossy files; the test
splits stay lossless.

Splits: `train`, `test` (clean) and `test_degraded`: the same test subjects with
one camera degradation each (sensor noise, defocus, motion blur, JPEG, in turn)
applied to the frames before the face pipeline, as a camera would produce them.

Clocks: frames and PPG come from one generator, one PPG
sample per rendered frame at index / fps, so the labels are per-frame
(`RawLabels.per_frame`): sample i goes with frame i on the frames' clock. The
generator cannot produce an extra frame or a repeated timestamp; if a
renderer change ever did, the shared rule would trim up to
`alignment.trim_bound` frames and count them, and error beyond it.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Mapping, Sequence

import numpy as np
import tensorflow_datasets as tfds

from codephys_jax import alignment
from codephys_jax import codec
from codephys_jax import degradations
from codephys_jax import preprocess as preprocess_lib
from codephys_jax import rppg_builder
from codephys_jax import synthetic_video


@dataclasses.dataclass(frozen=True)
class SyntheticOptions:
  """Generator settings (part of the prepared dataset's identity)."""

  num_train: int = 16
  num_test: int = 8
  duration_s: float = 20.0
  fps: float = 30.0
  width: int = 256
  height: int = 192
  hr_min_bpm: float = 50.0
  hr_max_bpm: float = 130.0
  seed: int = 0
  degraded_types: tuple[str, ...] = ("sensor_noise", "defocus", "motion_blur", "jpeg")
  degraded_severity: int = 3
  # Head movement inside the heart-rate band (synthetic_video.render_video); 0 = none.
  active_motion: float = 0.0
  # Training videos go through the emulated inter-frame codec (codephys_jax.codec)
  # at a quantisation parameter drawn per subject, uniformly in (low, high), with
  # an intra frame every `codec_gop` frames; () = lossless. Test splits stay lossless.
  codec_qp: tuple[float, ...] = ()
  codec_gop: int = 250

  def __post_init__(self):
    if self.num_train < 1 or self.num_test < 1:
      raise ValueError(f"need >= 1 train and test subject, got {self}")
    if not self.active_motion >= 0:  # NaN too
      raise ValueError(f"active_motion must be >= 0 (0 = none), got {self.active_motion}")
    if self.codec_qp and (
        len(self.codec_qp) != 2 or not 0 <= self.codec_qp[0] <= self.codec_qp[1] <= codec.MAX_QP
    ):
      raise ValueError(
          f"codec_qp must be () or (low, high) with 0 <= low <= high <= {codec.MAX_QP:g}, "
          f"got {self.codec_qp}"
      )
    if int(self.codec_gop) != self.codec_gop or self.codec_gop < 1:
      raise ValueError(f"codec_gop must be an integer >= 1, got {self.codec_gop}")
    for name in self.degraded_types:
      if name not in degradations.DEGRADATIONS:  # fail before any rendering
        raise ValueError(
            f"unknown degradation {name!r}; known: {sorted(degradations.DEGRADATIONS)}"
        )

  def subject_seed(self, split: str, index: int) -> int:
    # Train and test subjects never share a seed (hence never share a face/PPG).
    offset = 0 if split == "train" else 100_000
    return self.seed * 1_000_003 + offset + index


class SyntheticRppg(rppg_builder.RppgBuilder):
  """Synthetic faces with a known pulse; `train`, `test`, `test_degraded` splits."""

  VERSION = tfds.core.Version("1.2.0")
  RELEASE_NOTES = {
      "1.0.0": "Rendered faces, PPG morphology, HRV, degraded test split.",
      "1.1.0": "Skin carries a low-passed (facial) pulse; frames 256x192.",
      "1.2.0": "Per-frame labels; alignment fields trimmed_frames/trimmed_labels/"
      "repaired_timestamps (all 0 here).",
  }
  NEEDS_MANUAL_DIR = False
  DEFAULT_SIZE = 36
  BUILDER_CONFIGS = []

  @classmethod
  def make_config(
      cls,
      *,
      preprocess: preprocess_lib.PreprocessConfig | None = None,
      manual_dir: str | None = None,
      options: Mapping[str, Any] | None = None,
  ) -> rppg_builder.RppgConfig:
    if manual_dir:
      raise ValueError("synthetic_rppg is generated: it takes no manual_dir")
    # skip_bad_items is accepted like every rPPG builder's (a rendered subject
    # only fails on a bug, but the option must mean the same everywhere).
    opts, skip = rppg_builder.pop_base_options(options)
    if "degraded_types" in opts:
      opts["degraded_types"] = tuple(opts["degraded_types"])
    if "codec_qp" in opts:  # (24, 36) and (24.0, 36.0) are one dataset
      opts["codec_qp"] = tuple(float(q) for q in opts["codec_qp"])
    if "codec_gop" in opts and float(opts["codec_gop"]).is_integer():
      opts["codec_gop"] = int(opts["codec_gop"])
    synth = SyntheticOptions(**opts)
    preprocess = preprocess or preprocess_lib.PreprocessConfig(size=cls.DEFAULT_SIZE)
    fields = dataclasses.asdict(synth)
    if not synth.active_motion:
      del fields["active_motion"]  # datasets prepared before the option keep their identity
    if not synth.codec_qp:
      del fields["codec_qp"], fields["codec_gop"]
    source_id = "synthetic:" + json.dumps(fields, sort_keys=True)
    return rppg_builder.RppgConfig(
        preprocess=preprocess,
        source_id=source_id,
        skip_bad_items=skip,
        version=cls.VERSION,
    )

  @property
  def options(self) -> SyntheticOptions:
    source_id = self.builder_config.source_id
    if not source_id.startswith("synthetic:"):
      return SyntheticOptions()
    opts = json.loads(source_id[len("synthetic:") :])
    opts["degraded_types"] = tuple(opts["degraded_types"])
    opts["codec_qp"] = tuple(opts.get("codec_qp", ()))
    return SyntheticOptions(**opts)

  def list_items(self, manual_dir: str | None) -> list[rppg_builder.Item]:
    del manual_dir
    o = self.options
    items = []
    common = {
        "duration_s": o.duration_s,
        "fps": o.fps,
        "width": o.width,
        "height": o.height,
        "hr_range": (o.hr_min_bpm, o.hr_max_bpm),
        "active_motion": o.active_motion,
    }
    for i in range(o.num_train):
      seed = o.subject_seed("train", i)
      payload = dict(common, seed=seed)
      if o.codec_qp:
        # Its own stream: the face, PPG and motion are those of the lossless subject.
        qp = np.random.default_rng([seed, 2]).uniform(*o.codec_qp)
        payload.update(codec_qp=round(float(qp), 2), codec_gop=o.codec_gop)
      items.append(
          rppg_builder.Item(key=f"train_{i:03d}", subject_id=f"train_{i:03d}", payload=payload)
      )
    for i in range(o.num_test):
      payload = dict(common, seed=o.subject_seed("test", i))
      items.append(
          rppg_builder.Item(key=f"test_{i:03d}", subject_id=f"test_{i:03d}", payload=payload)
      )
      kind = o.degraded_types[i % len(o.degraded_types)] if o.degraded_types else None
      if kind:
        items.append(
            rppg_builder.Item(
                key=f"test_{i:03d}_{kind}",
                subject_id=f"test_{i:03d}",
                payload=dict(payload, degradation=kind, severity=o.degraded_severity),
            )
        )
    return items

  def split_keys(
      self, items: Sequence[rppg_builder.Item], manual_dir: str | None = None
  ) -> dict[str, list[str]]:
    del manual_dir  # generated: no raw tree
    out = {"train": [], "test": [], "test_degraded": []}
    for it in items:
      if it.key.startswith("train_"):
        out["train"].append(it.key)
      elif "degradation" in it.payload:
        out["test_degraded"].append(it.key)
      else:
        out["test"].append(it.key)
    if not out["test_degraded"]:
      del out["test_degraded"]
    return out

  @staticmethod
  def read_item(item: rppg_builder.Item):
    p = item.payload
    subject = synthetic_video.make_subject(
        p["seed"],
        duration_s=p["duration_s"],
        fps=p["fps"],
        width=p["width"],
        height=p["height"],
        hr_range_bpm=tuple(p["hr_range"]),
        active_motion=p.get("active_motion", 0.0),
    )
    labels = alignment.RawLabels(times=subject.timestamps, ppg=subject.ppg, per_frame=True)
    if "codec_qp" in p:
      qp, gop = p["codec_qp"], p["codec_gop"]
      source = subject.source(
          lambda: codec.encode_decode(subject.frames(), qp, gop=gop),
          name=f"{item.key} (codec qp {qp:g}, gop {gop})",
      )
      return source, labels
    kind = p.get("degradation")
    if not kind:
      return subject.source(), labels
    degrade = degradations.make_degradation(kind, p["severity"], seed=p["seed"])

    def frames():
      for index, frame in enumerate(subject.frames()):
        yield degrade(frame, index)

    return subject.source(frames, name=f"{item.key} ({kind} severity {p['severity']})"), labels

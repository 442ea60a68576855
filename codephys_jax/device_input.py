"""Training input on the device: resident videos, clips cut and augmented by jitted JAX code.

The host input path (`data.train_pipeline`: grain + NumPy/OpenCV augmentation)
builds every clip in Python; on an accelerator the device then waits for the host.
Here the training split's frames are put on the devices once (uint8, one flat
array of all videos, replicated over the data mesh) with the PPG labels (float32)
and a table of clip windows (`data.ClipSource.index`). Each step, one jitted
function, dispatched asynchronously next to the train step, makes the batch:

* element e of the stream (global step * batch_size + position in the batch)
  is clip `permutation(seed, epoch)[e % num_clips]` with
  `epoch = e // num_clips`: a fresh shuffle every epoch, like the host path;
* its augmentation draws from `fold_in(key(seed + 1), e)`;
* frames are gathered from the resident videos (`jnp.take`), speed-resampled,
  cropped/flipped by separable bilinear matrices, offset and noised in float32
  and rounded once to uint8.

So a batch is a pure function of (seed, step): the same seed gives the same
batches, a run resumed at step k gets exactly the batches of an uninterrupted
run, and the batch does not depend on the number of devices or processes (the
global batch is computed, split along the data axis, on every process).

The augmentation is the recipe of `codephys_jax.augment` (speed, crop, flip,
illumination, noise) with JAX random numbers, so its draws differ from the host
path's; camera degradations (`augment.degradations`, OpenCV), illumination
changes and HR-balanced speed exist only on the host and are refused here
(`refuse_host_only`). `DEVICE_STEPS` and `HOST_ONLY_STEPS` say which field of
the recipe is which.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Iterator, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from codephys_jax import augment as augment_lib
from codephys_jax import data as data_lib

PIPELINES = ("host", "device", "auto")
DEFAULT_BUDGET_BYTES = 8 << 30


class DoesNotFit(ValueError):
  """The device path cannot take this split or recipe (memory budget, host-only augmentation)."""


# Which steps of the augmentation recipe (`augment.AugmentConfig`, configs/common.py
# `augment()`) this path implements and which it refuses. Every field of the
# recipe is named in exactly one of the two (tests/test_device_input.py checks
# it), so a step added on the host is refused here until `_augment_one` does it.
#
# `_augment_one` implements these fields (with JAX random numbers).
DEVICE_STEPS: tuple[str, ...] = (
    "speed_range",
    "frame_interp",
    "crop_scale",
    "flip_prob",
    "illumination_std",
    "noise_std",
)


@dataclasses.dataclass(frozen=True)
class HostOnlyStep:
  """A step only the host path runs: its fields, when a recipe turns it on, and the
  settings `refuse_host_only` names."""

  name: str
  fields: tuple[str, ...]
  on: Callable[[augment_lib.AugmentConfig], bool]
  settings: Callable[[augment_lib.AugmentConfig], str]


# Refused by `refuse_host_only` when on (camera degradations need OpenCV).
HOST_ONLY_STEPS: tuple[HostOnlyStep, ...] = (
    HostOnlyStep(
        "camera degradations",
        ("degradations", "degradation_prob", "severity_range"),
        on=lambda a: bool(a.degradations) and a.degradation_prob > 0,
        settings=lambda a: (
            f"augment.degradations={list(a.degradations)}, degradation_prob={a.degradation_prob}"
        ),
    ),
    HostOnlyStep(
        "illumination changes",
        ("illumination_change_prob", "illumination_change_severity"),
        on=lambda a: a.illumination_change_prob > 0,
        settings=lambda a: f"illumination_change_prob={a.illumination_change_prob}",
    ),
    HostOnlyStep(
        "HR-balanced speed",
        ("target_hr_bpm", "target_hr_scale"),
        on=lambda a: bool(a.target_hr_bpm),
        settings=lambda a: f"target_hr_bpm={a.target_hr_bpm}",
    ),
)


def _replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def _global_replicated(mesh: Mesh, value: np.ndarray) -> jax.Array:
  """A replicated global array from a host value every process holds (multi-process safe)."""
  value = np.asarray(value)
  return jax.make_array_from_callback(value.shape, _replicated(mesh), lambda idx: value[idx])


class ResidentClips:
  """The clips of a `data.ClipSource`, held on the devices of `mesh`.

  Attributes:
    frames: uint8 [F, H, W, 3], every video of the split one after the other.
    ppg: float32 [F], the raw PPG of those frames.
    starts: int32 [num_clips], flat index of each clip window's first frame.
    clip_length / source_length: as in the ClipSource.
  """

  def __init__(
      self,
      clips: data_lib.ClipSource,
      mesh: Mesh,
      *,
      keys: Sequence[str] = ("frames", "ppg"),
      budget_bytes: int = DEFAULT_BUDGET_BYTES,
  ):
    used = sorted({v for v, _ in clips.index})
    offsets: dict[int, int] = {}
    frames, ppg = [], []
    total = 0
    need_frames = "frames" in keys
    nbytes = 0
    for v in used:
      video = clips._video(v)  # noqa: SLF001 - its cache spares a second decode
      offsets[v] = total
      n = len(video["ppg"])
      total += n
      ppg.append(np.asarray(video["ppg"], np.float32))
      nbytes += 4 * n
      if need_frames:
        frames.append(np.asarray(video["frames"], np.uint8))
        nbytes += frames[-1].nbytes
      if nbytes > budget_bytes:  # checked while loading: a huge split fails fast
        raise DoesNotFit(
            f"{clips!r}: the training videos take over {budget_bytes / 2**30:.2f} GiB, the "
            "device input budget per device; use input_pipeline='host' or 'auto'"
        )
    self.mesh = mesh
    self.keys = tuple(keys)
    self.clip_length = clips.clip_length
    self.source_length = clips.source_length
    self.num_clips = len(clips)
    self.nbytes = nbytes
    starts = np.asarray([offsets[v] + s for v, s in clips.index], np.int32)
    self.starts = _global_replicated(mesh, starts)
    self.ppg = _global_replicated(mesh, np.concatenate(ppg))
    self.frames = _global_replicated(mesh, np.concatenate(frames)) if need_frames else None


# ------------------------------------------------------------------ augmentation


def _normalize_ppg(x: jax.Array) -> jax.Array:
  centred = x - jnp.mean(x, axis=-1, keepdims=True)
  scale = jnp.max(jnp.abs(centred), axis=-1, keepdims=True)
  return centred / jnp.maximum(scale, 1e-6)


def resize_matrix(size: int, start: jax.Array, side: jax.Array, flip: jax.Array) -> jax.Array:
  """[size, size] bilinear matrix: output pixel i <- window [start, start + side) of the input,
  stretched back to `size` (OpenCV INTER_LINEAR's half-pixel centres), rows reversed if flip."""
  i = jnp.arange(size, dtype=jnp.float32)
  side_f = side.astype(jnp.float32)
  y = jnp.clip((i + 0.5) * side_f / size - 0.5, 0.0, side_f - 1.0)
  y0 = jnp.floor(y)
  frac = y - y0
  y0 = y0.astype(jnp.int32)
  y1 = jnp.minimum(y0 + 1, side - 1)
  m = (
      jax.nn.one_hot(start + y0, size) * (1.0 - frac)[:, None]
      + jax.nn.one_hot(start + y1, size) * frac[:, None]
  )
  return jnp.where(flip, m[::-1], m)


def _augment_one(
    cfg: augment_lib.AugmentConfig, data: "_View", start: jax.Array, key: jax.Array
) -> dict[str, jax.Array]:
  """One clip window (flat start index) -> augmented {"frames", "ppg"} (see augment.py)."""
  T, L = data.clip_length, data.source_length
  # Few, vector-valued draws: every threefry call adds seconds of XLA compile on a CPU.
  k_uniform, k_illum, k_noise = jax.random.split(key, 3)
  u = jax.random.uniform(k_uniform, (6,))
  lo_s, hi_s = cfg.speed_range
  speed = lo_s + (hi_s - lo_s) * u[0]
  max_offset = (L - 1) - speed * (T - 1)
  num_offsets = jnp.maximum(jnp.floor(max_offset + 1e-6).astype(jnp.int32) + 1, 1)
  offset = jnp.minimum(jnp.floor(u[1] * num_offsets).astype(jnp.int32), num_offsets - 1)
  pos = offset + speed * jnp.arange(T, dtype=jnp.float32)
  # Labels follow the frames' positions linearly whatever frame_interp is (as on the host).
  pl = jnp.clip(jnp.floor(pos).astype(jnp.int32), 0, L - 1)
  ph = jnp.minimum(pl + 1, L - 1)
  pw = pos - pl
  p_lo, p_hi = jnp.take(data.ppg, start + pl), jnp.take(data.ppg, start + ph)
  out = {"ppg": _normalize_ppg(p_lo * (1 - pw) + p_hi * pw)}
  if data.frames is None:
    return out
  if cfg.frame_interp == "nearest":
    lo = jnp.clip(jnp.round(pos).astype(jnp.int32), 0, L - 1)
    x = jnp.take(data.frames, start + lo, axis=0).astype(jnp.float32)
  else:
    wf = pw[:, None, None, None]
    x = (
        jnp.take(data.frames, start + pl, axis=0).astype(jnp.float32) * (1 - wf)
        + jnp.take(data.frames, start + ph, axis=0).astype(jnp.float32) * wf
    )
  h, wd = x.shape[1:3]
  if cfg.crop_scale != (1.0, 1.0) or cfg.flip_prob > 0:
    scale = cfg.crop_scale[0] + (cfg.crop_scale[1] - cfg.crop_scale[0]) * u[2]
    side = jnp.clip(jnp.round(jnp.sqrt(scale) * min(h, wd)).astype(jnp.int32), 1, min(h, wd))
    top = jnp.minimum(jnp.floor(u[3] * (h - side + 1)).astype(jnp.int32), h - side)
    left = jnp.minimum(jnp.floor(u[4] * (wd - side + 1)).astype(jnp.int32), wd - side)
    flip = u[5] < cfg.flip_prob
    my = resize_matrix(h, top, side, jnp.asarray(False))
    mx = resize_matrix(wd, left, side, flip)
    x = jnp.einsum("ih,thwc,jw->tijc", my, x, mx, precision=jax.lax.Precision.HIGHEST)
  if cfg.illumination_std:
    x = x + cfg.illumination_std * jax.random.normal(k_illum, ())
  if cfg.noise_std:
    x = x + cfg.noise_std * jax.random.normal(k_noise, x.shape)
  out["frames"] = jnp.clip(jnp.round(x), 0, 255).astype(jnp.uint8)
  return out


def _plain_one(data: "_View", start: jax.Array) -> dict[str, jax.Array]:
  idx = start + jnp.arange(data.clip_length)
  out = {"ppg": _normalize_ppg(jnp.take(data.ppg, idx))}
  if data.frames is not None:
    out["frames"] = jnp.take(data.frames, idx, axis=0)
  return out


# ------------------------------------------------------------------ batches


def clip_indices(
    seed: int | jax.Array, step: jax.Array, batch_size: int, num_clips: int
) -> jax.Array:
  """Clip numbers of the global batch at `step`: a fresh permutation of the clips per epoch."""
  e = step.astype(jnp.int32) * batch_size + jnp.arange(batch_size, dtype=jnp.int32)
  epoch, pos = e // num_clips, e % num_clips
  key = jax.random.key(seed)

  def one(ep, p):
    return jax.random.permutation(jax.random.fold_in(key, ep), num_clips)[p]

  return jax.vmap(one)(epoch, pos)


class _View:
  """Resident arrays (traced inside the jitted batch function) + static clip sizes."""

  def __init__(self, frames, ppg, clip_length: int, source_length: int):
    self.frames, self.ppg = frames, ppg
    self.clip_length, self.source_length = clip_length, source_length


@functools.partial(
    jax.jit,
    static_argnames=(
        "batch_size",
        "num_clips",
        "clip_length",
        "source_length",
        "keys",
        "augment",
        "sharding",
    ),
)
def _global_batch(
    frames,
    ppg,
    starts,
    step,
    seed,
    *,
    batch_size: int,
    num_clips: int,
    clip_length: int,
    source_length: int,
    keys: tuple[str, ...],
    augment: augment_lib.AugmentConfig | None,
    sharding: NamedSharding,
):
  # One module-level jit keyed by the static settings: stages and runs with the
  # same shapes and recipe share one compilation.
  view = _View(frames, ppg, clip_length, source_length)
  which = clip_indices(seed, step, batch_size, num_clips)
  first = jnp.take(starts, which)
  if augment is None:
    out = jax.vmap(lambda s: _plain_one(view, s))(first)
  else:
    e = step.astype(jnp.int32) * batch_size + jnp.arange(batch_size, dtype=jnp.int32)
    aug_key = jax.random.key(seed + 1)  # seed: a traced int32, one compile for every seed
    element_keys = jax.vmap(lambda i: jax.random.fold_in(aug_key, i))(e)
    out = jax.vmap(lambda s, k: _augment_one(augment, view, s, k))(first, element_keys)
  return jax.lax.with_sharding_constraint({k: out[k] for k in keys}, sharding)


def refuse_host_only(augment: augment_lib.AugmentConfig) -> None:
  """DoesNotFit naming every step of `augment` in `HOST_ONLY_STEPS` that is on (they
  run on the host only: grain + NumPy/OpenCV, `codephys_jax.augment`)."""
  steps = [
      f"{step.name} ({step.settings(augment)})" for step in HOST_ONLY_STEPS if step.on(augment)
  ]
  if steps:
    raise DoesNotFit(
        f"the device input path has no {'; no '.join(steps)}: they run on the host only; "
        "use input_pipeline='host' or turn them off"
    )


def make_batch_fn(
    data: ResidentClips,
    *,
    batch_size: int,
    seed: int,
    augment: augment_lib.AugmentConfig | None = None,
) -> Callable[[int], dict[str, jax.Array]]:
  """`step -> global batch` (jitted, asynchronous), split along the data axis."""
  if augment is not None:
    refuse_host_only(augment)
    need = augment_lib.required_source_length(augment, data.clip_length)
    if data.source_length < need:
      raise ValueError(
          f"clips have {data.source_length} source frames; the augmentation " f"needs {need}"
      )
  mesh = data.mesh
  sharding = NamedSharding(mesh, P(mesh.axis_names[0]))
  seed_array = _global_replicated(mesh, np.int32(seed))
  static = dict(
      batch_size=batch_size,
      num_clips=data.num_clips,
      clip_length=data.clip_length,
      source_length=data.source_length,
      keys=data.keys,
      augment=augment,
      sharding=sharding,
  )

  def make(step: int) -> dict[str, jax.Array]:
    return _global_batch(
        data.frames,
        data.ppg,
        data.starts,
        _global_replicated(mesh, np.int32(step)),
        seed_array,
        **static,
    )

  return make


def iterator_factory(
    data: ResidentClips,
    *,
    batch_size: int,
    seed: int,
    augment: augment_lib.AugmentConfig | None = None,
) -> Callable[[int], Iterator[dict[str, jax.Array]]]:
  """make_iterator(start_step) for `trainer.train_loop`: device batches from `start_step` on."""
  if batch_size % data.mesh.devices.size:
    raise ValueError(
        f"global batch {batch_size} is not divisible by the "
        f"{data.mesh.devices.size} devices of the mesh"
    )
  make = make_batch_fn(data, batch_size=batch_size, seed=seed, augment=augment)

  def make_iterator(start_step: int) -> Iterator[dict[str, jax.Array]]:
    step = start_step
    while True:
      yield make(step)
      step += 1

  return make_iterator


def from_config(
    clips: data_lib.ClipSource,
    mesh: Mesh,
    *,
    keys: Sequence[str],
    batch_size: int,
    seed: int,
    augment_cfg: Any | None = None,
    budget_bytes: int = DEFAULT_BUDGET_BYTES,
) -> Callable[[int], Iterator[dict[str, jax.Array]]]:
  """make_iterator for a training config's augment settings (`enabled` False/absent = none).

  Raises:
    DoesNotFit: host-only augmentation requested (`refuse_host_only`), or the split
      is over `budget_bytes` (checked before any video is loaded for the recipe,
      while loading for memory).
  """
  aug = None
  if augment_cfg is not None and augment_cfg.get("enabled", False):
    aug = augment_lib.AugmentConfig.from_config(augment_cfg)
    refuse_host_only(aug)  # before any video is loaded
  resident = ResidentClips(clips, mesh, keys=keys, budget_bytes=budget_bytes)
  return iterator_factory(resident, batch_size=batch_size, seed=seed, augment=aug)

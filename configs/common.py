"""Pieces shared by the config files (each imports and overrides): the `preprocess`
and `eval` blocks have one shape everywhere, training (configs/default.py, paper.py)
and evaluation (configs/eval.py, robustness.py) alike."""

import ml_collections
from ml_collections import config_dict


def eval_settings() -> ml_collections.ConfigDict:
  """The evaluation convention (docs/EVALUATION.md), `config.eval` of every config."""
  return ml_collections.ConfigDict(
      dict(
          hr_method="fft",  # the standard estimator, reported at the top level
          extra_hr_methods=("peak", "hann_dft", "robust"),  # also reported, by name
          low_hz=0.75,
          high_hz=2.5,
          detrend_lambda=100.0,
          window_seconds=config_dict.placeholder(float),  # None = whole video
          window_stride_seconds=config_dict.placeholder(float),  # None = no overlap
      )
  )


def preprocess(size: int) -> ml_collections.ConfigDict:
  """The face pipeline (`config.preprocess`); part of the prepared data's identity."""
  return ml_collections.ConfigDict(
      dict(
          size=size,
          target_fps=30.0,
          detect_every=5,
          smoothing=0.05,
          box_scale=1.5,
          roi="face",
          skin_mask=False,
          detector="blazeface",
          rgb_roi="landmarks",
      )
  )


def augment(enabled: bool = False) -> ml_collections.ConfigDict:
  """Paper augmentations + camera degradations (codephys_jax.augment)."""
  return ml_collections.ConfigDict(
      dict(
          enabled=enabled,
          flip_prob=0.5,
          illumination_std=10.0,
          noise_std=2.0,
          speed_range=(0.6, 1.4),
          target_hr_bpm=(),  # (low, high): HR-balanced speed (codephys_jax.augment)
          target_hr_scale="linear",  # or "log": uniform per octave of heart rate
          crop_scale=(0.5, 1.0),
          degradations=("sensor_noise", "defocus", "motion_blur", "jpeg"),
          degradation_prob=0.5,
          severity_range=(1.0, 4.0),
          # Flicker and brightness steps on their own draw (codephys_jax.augment).
          illumination_change_prob=0.0,
          illumination_change_severity=(1.0, 5.0),
      )
  )


def optim(
    *,
    batch_size: int,
    num_steps: int,
    learning_rate: float,
    weight_decay: float,
    warmup_steps: int,
    log_every: int,
    eval_every: int,
    clip_stride: int
):
  return dict(
      batch_size=batch_size,
      num_steps=num_steps,
      learning_rate=learning_rate,
      weight_decay=weight_decay,
      warmup_steps=warmup_steps,
      log_every=log_every,
      eval_every=eval_every,
      checkpoint_every=eval_every,
      clip_stride=clip_stride,
      grad_clip=1.0,
      final_lr_fraction=0.1,
      max_to_keep=2,
  )


def base(
    *, dataset: str = "synthetic_rppg", size: int = 128, clip_length: int = 160
) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.dataset = dataset
  c.manual_dir = ""
  c.data_dir = ""
  c.preprocess = preprocess(size)
  c.dataset_options = ml_collections.ConfigDict()
  c.train_split = "train"
  # Checkpoint selection on subjects held out of train_split (never test, read once by `compare`).
  c.eval_split = "val"
  c.val = ml_collections.ConfigDict(
      dict(
          fraction=0.2,  # of the training subjects, picked by a seeded hash of the subject id
          subjects=(),  # or explicit subject ids (overrides fraction)
          seed=0,
          # True only in the refit pass (train_lib.refit): the subjects above are trained on too.
          train_on_val=False,
      )
  )
  # After the stages, train each video stage again on the whole training split up to
  # the step selected on the validation subjects (train_lib.refit; `<stage>_refit` rows).
  c.refit = False
  # A second dataset whose clips join the video stages' training batches (""
  # = none): its `split` at `weight` of the clips, prepared with `preprocess`.
  # Stage I and checkpoint selection use this config's own dataset only.
  c.cotrain = ml_collections.ConfigDict(
      dict(
          dataset="",
          manual_dir="",
          dataset_options=ml_collections.ConfigDict(),
          split="train",
          weight=0.5,
      )
  )
  c.clip_length = clip_length
  # Model input: standardized, temporal, relative, relative_band or diff_normalized.
  c.input_norm = "standardized"
  # "host" (grain + NumPy), "device" (jitted, next to the step) or "auto" (device if it fits).
  c.input_pipeline = "host"
  c.stages = ("codebook", "codephys", "physnet")  # codephys_jax.stages.STAGES
  c.export = True
  c.eval = eval_settings()
  c.augment = augment(False)
  c.compare = ml_collections.ConfigDict(
      dict(
          enabled=True,
          splits={"clean": "test"},
          unsupervised=("pos", "chrom", "green"),
      )
  )
  return c


def codebook_model(*, hidden: int, code_dim: int, num_codes: int) -> dict:
  return dict(
      hidden=hidden,
      code_dim=code_dim,
      num_codes=num_codes,
      num_res_blocks=2,
      update="ema",
      ema_decay=0.95,
      beta=0.25,
      dead_code_threshold=0.1,
  )


def codephys_model(
    backbone_kwargs: dict, *, query_mode: str = "nearest", backbone: str = "physnet"
) -> dict:
  return dict(
      backbone=backbone,
      backbone_kwargs=backbone_kwargs,
      query_mode=query_mode,
      temperature=1.0,
      freeze_stage1=True,
      freeze_teacher=True,
      attention_kernel=7,
      transformer_depth=2,
      transformer_heads=4,
      transformer_dim=64,
  )


def codephys_losses() -> dict:
  return dict(
      neg_pearson=1.0,
      feature=1.0,
      distill=0.5,
      freq_ce=0.1,
      freq_kl=0.1,
      code_ce=0.2,  # against collapse; low, so its ~8-10 initial nats do not drown neg_pearson
      usage_entropy=0.0,  # maximised batch code entropy; off
  )


def tiny(c: ml_collections.ConfigDict, *, steps: int = 2) -> ml_collections.ConfigDict:
  """Shrink a training config to test size (used by the smoke configs and tests).

  Batch 8 because the tests run on 8 virtual CPU devices (the batch is sharded).
  """
  c.preprocess.size = 16
  c.clip_length = 32
  for stage in ("codebook", "codephys", "physnet"):
    c[stage].update(
        num_steps=steps,
        batch_size=8,
        warmup_steps=1,
        eval_every=2,
        log_every=1,
        checkpoint_every=2,
        clip_stride=8,
        learning_rate=1e-3,
    )
  c.codebook.model.update(hidden=16, code_dim=8, num_codes=16)
  tiny_backbones = {
      "physnet": dict(base_width=4, output_channels=8, spatial_out=1),
      "cell_tcn": dict(width=4, output_channels=8, spatial_out=1, num_blocks=2),
  }
  for stage in ("codephys", "physnet"):
    c[stage].model.backbone_kwargs.update(tiny_backbones[c[stage].model.backbone])
  c.codephys.model.transformer_dim = 16
  c.compare.unsupervised = ("pos",)
  return c

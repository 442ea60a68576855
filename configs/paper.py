"""Pieces shared by the paper-size benchmark configs (ubfc_intra, pure_intra, vipl_hr,
cohface_intra, cross_dataset); not a config file itself (no `get_config`).

`paper_config` builds the reference setting of docs/METHOD.md (the end of "Config
fields that ablate a choice"): 160-frame clips of 128x128 face crops at 30 fps, non-overlapping
chunks, batch 4, AdamW lr 1e-4 with weight decay 5e-5, the paper's augmentations,
PhysNet (base width 16, 64 output channels, 8x8 output grid) and a Stage I
codebook of 64 codes of dimension 64 behind a 512-wide encoder. `smoke` shrinks a
config to a CPU run of a few seconds on the dataset's `dummy_data/` tree, the
only place a path is written into a config.
"""

from __future__ import annotations

import os
from typing import Mapping

import ml_collections

from configs import common

# Reference settings (docs/METHOD.md); tests/test_configs.py asserts them.
SIZE = 128
CLIP_LENGTH = 160
BATCH_SIZE = 4
LEARNING_RATE = 1e-4
WEIGHT_DECAY = 5e-5
BACKBONE = dict(base_width=16, output_channels=64, spatial_out=8)
CODEBOOK = dict(hidden=512, code_dim=64, num_codes=64)

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def dummy_dir(dataset: str) -> str:
  """The repo's miniature raw tree of `dataset` (for smoke runs only)."""
  return os.path.join(_REPO, "datasets", dataset, "dummy_data")


def paper_config(
    dataset: str,
    *,
    train_split: str,
    eval_split: str = "val",
    compare_splits: Mapping[str, str] | None,
    num_steps: int,
    eval_every: int,
) -> ml_collections.ConfigDict:
  """Stage I + Stage II + PhysNet baseline at the paper's size on `dataset`.

  `num_steps` is ours (the paper gives no step count): about 30 epochs of
  non-overlapping clips of the training split, see each config's docstring.
  `compare_splits=None` disables the comparison table (cross-dataset runs test
  on another dataset with eval.py).
  """
  c = common.base(dataset=dataset, size=SIZE, clip_length=CLIP_LENGTH)
  # Overridable from the command line (the config is locked):
  # --config.dataset_options.skip_bad_items=True (see docs/DATASETS.md).
  c.dataset_options = ml_collections.ConfigDict(dict(skip_bad_items=False))
  c.train_split = train_split
  c.eval_split = eval_split  # model selection (best checkpoint by whole-video MAE)
  # The paper's augmentations; camera degradations stay off (the robustness
  # claim is tested with eval.py --config=configs/robustness.py instead).
  c.augment = common.augment(True)
  c.augment.degradations = ()
  c.augment.degradation_prob = 0.0
  # The host input path keeps a GPU waiting (~160 ms per Stage II step at 72 px on an
  # H100, where PyTorch takes 23 ms); 'auto' = device path where the split fits, else host.
  c.input_pipeline = "auto"
  optim = dict(
      batch_size=BATCH_SIZE,
      num_steps=num_steps,
      learning_rate=LEARNING_RATE,
      weight_decay=WEIGHT_DECAY,
      warmup_steps=min(100, num_steps // 10),
      log_every=50,
      eval_every=eval_every,
      clip_stride=CLIP_LENGTH,
  )
  # Stage I sees only PPG clips; the paper states one optimiser setting, used here too.
  c.codebook = dict(
      model=common.codebook_model(**CODEBOOK),
      loss_weights=dict(mse=1.0, neg_pearson=1.0, vq=1.0),
      **common.optim(**optim),
  )
  c.codephys = dict(
      model=common.codephys_model(dict(BACKBONE)),
      stage1_workdir="",  # empty: the sibling codebook/ of this run
      loss_weights=common.codephys_losses(),
      soft_query_warmup_steps=max(1, num_steps // 10),  # against code collapse
      **common.optim(**optim),
  )
  c.physnet = dict(
      model=dict(backbone="physnet", backbone_kwargs=dict(BACKBONE)),
      init_backbone="",  # "" = from scratch; a run's physnet/ or codephys/ dir = fine-tune its backbone
      **common.optim(**optim),
  )
  if compare_splits:
    c.compare.splits = dict(compare_splits)
  else:
    c.compare.enabled = False
  return c


def smoke(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A tiny CPU variant of `c` on the dataset's dummy tree (used by the tests)."""
  c.manual_dir = dummy_dir(c.dataset)
  c.augment.enabled = False
  return common.tiny(c)


def parse_arg(
    arg: str | None, *, choices: tuple[str, ...], default: str | None
) -> tuple[str, bool]:
  """`file.py:ARG` with ARG = '<choice>', '<choice>,smoke' or 'smoke' -> (choice, smoke)."""
  tokens = [t.strip() for t in (arg or "").split(",") if t.strip()]
  is_smoke = "smoke" in tokens
  rest = [t for t in tokens if t != "smoke"]
  if len(rest) > 1:
    raise ValueError(
        f"config argument {arg!r}: expected one of {list(choices)} "
        "optionally followed by ',smoke'"
    )
  choice = rest[0] if rest else default
  if choice is None:
    raise ValueError(
        f"this config needs an argument, one of {list(choices)} "
        "(e.g. --config=configs/cross_dataset.py:ubfc_rppg-pure)"
    )
  if choice not in choices:
    raise ValueError(f"config argument {choice!r} is not one of {list(choices)}")
  return choice, is_smoke

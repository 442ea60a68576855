"""Every config file loads (as train.py / eval.py load it), the benchmark configs have
the paper's settings and name splits their datasets define, and one smoke config
trains end to end on a dummy raw tree."""

import importlib
import json
import os

import numpy as np
import pytest
from absl import flags
from ml_collections import config_flags

from codephys_jax import data as data_lib
from codephys_jax import train_lib
from configs import cross_dataset
from configs import paper
from configs import vipl_hr as vipl_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (config module, argument) for every paper-size benchmark config.
BENCHMARKS = (
    [("ubfc_intra", None), ("pure_intra", None), ("cohface_intra", None)]
    + [("vipl_hr", fold) for fold in vipl_config.FOLDS]
    + [("cross_dataset", pair) for pair in cross_dataset.PAIRS]
)
EXPECTED_IN_DOCSTRING = {
    "ubfc_intra": ("MAE 0.21",),
    "pure_intra": ("MAE 0.39",),
    "vipl_hr": ("SD 7.07", "MAE 4.27", "RMSE 7.11"),
    "cohface_intra": ("not reported",),
    "cross_dataset": ("not reported",),
}


def _load(module: str, arg: str | None):
  return importlib.import_module(f"configs.{module}").get_config(arg)


def _flag_load(spec: str, *overrides: str):
  """Parse `--config=spec` the way train.py does (config_flags, locked)."""
  argv = ["prog", f"--config={os.path.join(REPO, spec)}", *overrides]
  fv = flags.FlagValues()
  # Overrides are found by scanning argv (sys.argv in train.py).
  config_flags.DEFINE_config_file(
      "config", None, "", flag_values=fv, lock_config=True, sys_argv=argv
  )
  fv(argv)
  return fv.config


def test_every_config_file_loads_through_config_flags():
  names = sorted(
      f[:-3]
      for f in os.listdir(os.path.join(REPO, "configs"))
      if f.endswith(".py") and f not in ("__init__.py", "common.py", "paper.py")
  )
  assert {
      "default",
      "eval",
      "robustness",
      "ubfc_intra",
      "pure_intra",
      "vipl_hr",
      "cohface_intra",
      "cross_dataset",
  } <= set(names)
  args = {"cross_dataset": "pure-cohface", "vipl_hr": "fold4"}
  for name in names:
    spec = f"configs/{name}.py" + (f":{args[name]}" if name in args else "")
    cfg = _flag_load(spec)
    assert cfg.dataset and "preprocess" in cfg, name
  cfg = _flag_load("configs/vipl_hr.py:fold3,smoke", "--config.data_dir=/tmp/x")
  assert (cfg.train_split, cfg.eval_split, cfg.data_dir) == ("train_fold3", "val", "/tmp/x")
  assert cfg.manual_dir == paper.dummy_dir("vipl_hr")
  cfg = _flag_load(
      "configs/ubfc_intra.py",
      "--config.dataset_options.skip_bad_items=True",
      "--config.manual_dir=/data/DATASET_2",
  )
  assert cfg.dataset_options.skip_bad_items is True and cfg.manual_dir == "/data/DATASET_2"


@pytest.mark.parametrize("module, arg", BENCHMARKS)
def test_benchmark_configs_have_the_paper_settings(module, arg):
  c = _load(module, arg)
  assert c.preprocess.size == 128 and c.clip_length == 160
  assert c.preprocess.target_fps == 30.0 and c.preprocess.roi == "face"
  assert c.manual_dir == "" and c.data_dir == ""  # paths come from the command line
  assert dict(c.dataset_options) == {"skip_bad_items": False}
  assert c.stages == ("codebook", "codephys", "physnet")
  for stage in ("codebook", "codephys", "physnet"):
    s = c[stage]
    assert (s.batch_size, s.learning_rate, s.weight_decay) == (4, 1e-4, 5e-5), stage
    assert s.clip_stride == 160 and 0 < s.eval_every <= s.num_steps
  for stage in ("codephys", "physnet"):
    assert dict(c[stage].model.backbone_kwargs) == dict(
        base_width=16, output_channels=64, spatial_out=8
    )
  m = c.codebook.model
  assert (m.hidden, m.code_dim, m.num_codes) == (512, 64, 64)
  a = c.augment
  assert a.enabled and a.flip_prob == 0.5 and a.illumination_std == 10.0
  assert a.noise_std == 2.0 and tuple(a.speed_range) == (0.6, 1.4)
  assert tuple(a.crop_scale) == (0.5, 1.0) and a.degradation_prob == 0.0


@pytest.mark.parametrize("module, arg", BENCHMARKS)
def test_benchmark_splits_exist_in_the_dataset_protocol(module, arg):
  c = _load(module, arg)
  builder = data_lib.make_builder(
      c.dataset, manual_dir=paper.dummy_dir(c.dataset), preprocess=dict(c.preprocess)
  )
  dummy = paper.dummy_dir(c.dataset)
  splits = builder.split_keys(builder.list_items(dummy), dummy)
  used = {c.train_split} | ({c.eval_split} - {data_lib.VAL_SPLIT})
  if c.compare.enabled:
    used |= set(dict(c.compare.splits).values())
  assert used <= set(splits), (used, sorted(splits))
  if module == "cross_dataset":
    assert c.train_split == "full" and not c.compare.enabled
    assert (c.dataset, c.test_dataset) == tuple(arg.split("-"))
    # Model selection stays inside the training data: held-out subjects of `full`.
    assert c.eval_split == data_lib.VAL_SPLIT
  elif module == "vipl_hr":
    assert (c.train_split, c.eval_split, dict(c.compare.splits)) == (
        f"train_{arg}",
        data_lib.VAL_SPLIT,
        {"clean": arg},
    )


@pytest.mark.parametrize("module", sorted(EXPECTED_IN_DOCSTRING))
def test_docstrings_give_command_hardware_and_expected_numbers(module):
  doc = importlib.import_module(f"configs.{module}").__doc__
  assert f"./run.sh python train.py --config=configs/{module}.py" in doc
  assert "--config.manual_dir=" in doc and ">= 16 GB" in doc and "not measured" in doc
  for expected in EXPECTED_IN_DOCSTRING[module]:
    assert expected in doc, (module, expected)


def test_config_arguments_are_checked():
  with pytest.raises(ValueError, match="needs an argument"):
    cross_dataset.get_config()
  with pytest.raises(ValueError, match="not one of"):
    cross_dataset.get_config("pure-pure")
  with pytest.raises(ValueError, match="not one of"):
    vipl_config.get_config("fold6")


@pytest.mark.parametrize(
    "module, arg",
    [
        ("pure_intra", "smoke"),
        ("cohface_intra", "smoke"),
        ("vipl_hr", "fold2,smoke"),
        ("cross_dataset", "cohface-ubfc_rppg,smoke"),
    ],
)
def test_smoke_configs_make_builders_on_the_dummy_trees(module, arg, tmp_path):
  c = _load(module, arg)
  assert os.path.isdir(c.manual_dir) and c.manual_dir == paper.dummy_dir(c.dataset)
  assert c.preprocess.size == 16 and c.clip_length == 32
  assert all(c[s].batch_size == 8 and c[s].num_steps == 2 for s in c.stages)
  builder = data_lib.make_builder(
      c.dataset,
      data_dir=str(tmp_path),
      manual_dir=c.manual_dir,
      preprocess=dict(c.preprocess),
      options=dict(c.dataset_options),
  )
  assert not builder.is_prepared()
  assert builder.builder_config.source_id == os.path.realpath(c.manual_dir)
  assert builder.builder_config.preprocess.size == 16


def test_prepare_one_liner_reaches_the_training_configs_directory(tmp_path):
  # docs/DATASETS.md prepares with preprocess={"size": 128}: same identity as training.
  c = _load("ubfc_intra", None)
  dummy = paper.dummy_dir("ubfc_rppg")
  from_config = data_lib.make_builder(
      c.dataset,
      data_dir=str(tmp_path),
      manual_dir=dummy,
      preprocess=dict(c.preprocess),
      options=dict(c.dataset_options),
  )
  one_liner = data_lib.make_builder(
      "ubfc_rppg", data_dir=str(tmp_path), manual_dir=dummy, preprocess={"size": 128}
  )
  assert from_config.data_path == one_liner.data_path


def test_ubfc_smoke_trains_every_stage_and_compares(tmp_path):
  c = _load("ubfc_intra", "smoke")
  c.data_dir = str(tmp_path / "tfds")
  c.export = False  # covered by test_train_lib; keeps this run short
  workdir = str(tmp_path / "run")
  summary = train_lib.train_and_evaluate(c, workdir)
  assert set(summary) == {"codebook", "codephys", "physnet", "results"}
  with open(os.path.join(workdir, "results.json")) as f:
    results = json.load(f)
  assert results["dataset"] == "ubfc_rppg"
  rows = {r["method"]: r for r in results["table"]}
  assert set(rows) == {"codephys", "physnet", "pos"}
  for r in rows.values():
    # The dummy's test split: subjects 42 and 45.
    assert r["split"] == "test" and r["num_videos"] == 2
    assert np.isfinite(r["mae"]) and 0 <= r["mae"] <= r["rmse"] + 1e-9
  for stage in ("codebook", "codephys", "physnet"):
    assert os.path.isdir(os.path.join(workdir, stage, "checkpoints"))


def _training_configs():
  """Every training config in configs/ (one that has stages), with its argument."""
  out = []
  for f in sorted(os.listdir(os.path.join(REPO, "configs"))):
    if not f.endswith(".py") or f in ("__init__.py", "common.py", "paper.py"):
      continue
    module = importlib.import_module(f"configs.{f[:-3]}")
    args = {"cross_dataset": list(cross_dataset.PAIRS), "vipl_hr": list(vipl_config.FOLDS)}
    for arg in args.get(f[:-3], [None]):
      for variant in ([arg, f"{arg},smoke"] if arg else [None, "smoke"]):
        try:
          c = module.get_config(variant) if variant else module.get_config()
        except (TypeError, ValueError):
          continue  # a config without arguments or without a smoke variant
        if "stages" in c:
          out.append((f"{f[:-3]}:{variant}", c))
  return out


def test_no_config_selects_checkpoints_on_test():
  configs = _training_configs()
  assert {"default:None", "ubfc_intra:smoke", "cross_dataset:ubfc_rppg-pure"} <= {
      n for n, _ in configs
  }
  for name, c in configs:
    compare = set(dict(c.compare.splits).values()) if c.compare.enabled else set()
    assert "test" not in c.eval_split and c.eval_split not in compare, name
    assert c.eval_split == data_lib.VAL_SPLIT or name.startswith("cohface_intra"), name
    if c.eval_split == data_lib.VAL_SPLIT:
      assert 0 < c.val.fraction < 1 or c.val.subjects, name


def test_train_val_videos_refuses_a_test_split(tmp_path):
  c = _load("ubfc_intra", "smoke")
  c.eval_split = "test"
  builder = data_lib.make_builder(
      c.dataset, manual_dir=paper.dummy_dir(c.dataset), preprocess=dict(c.preprocess)
  )
  with pytest.raises(ValueError, match="must not read test data"):
    data_lib.train_val_videos(builder, c)

"""The GPU step benchmark's pieces that run anywhere: the PyTorch reference's size, the
skip path without torch, the in-memory dataset and the table."""

import importlib.util
import os
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "benchmarks"))

import gpu_step  # noqa: E402
import physnet_torch  # noqa: E402

from codephys_jax import data as data_lib  # noqa: E402


def test_torch_reference_has_the_rppg_toolbox_size():
  # rPPG-Toolbox's PhysNet: 0.77M parameters at base width 16.
  assert physnet_torch.parameter_count(16) == physnet_torch.PARAMETERS == 768_577
  assert physnet_torch.available() == (importlib.util.find_spec("torch") is not None)


def test_torch_module_when_installed_matches_the_count():
  if not physnet_torch.available():
    return  # the benchmark skips its torch column then; nothing else depends on torch
  import torch

  model = physnet_torch.build(16)
  assert sum(p.numel() for p in model.parameters()) == physnet_torch.PARAMETERS
  out = model(torch.zeros(1, 3, 32, 32, 32))
  assert tuple(out.shape) == (1, 32)


def test_memory_builder_feeds_the_training_clip_source():
  builder = gpu_step.MemoryBuilder(num_videos=2, num_frames=50, size=8)
  videos = data_lib.VideoSource(builder, "train")
  clips = data_lib.ClipSource(videos, clip_length=16, stride=8)
  item = clips[0]
  assert item["frames"].shape == (16, 8, 8, 3) and item["frames"].dtype == np.uint8
  assert len(clips) == 2 * 5
  config = gpu_step.config_for(72, 160, 4, 16, "device")
  assert config.preprocess.size == 72 and config.clip_length == 160
  assert config.codephys.batch_size == 4 and config.input_pipeline == "device"
  assert dict(config.physnet.model.backbone_kwargs) == dict(
      base_width=16, output_channels=64, spatial_out=8
  )


def test_table_with_and_without_the_torch_column():
  jax_row = {
      "size": 72,
      "model": "PhysNet baseline",
      "framework": "jax",
      "precision": "float32",
      "input": "device",
      "params": 5e5,
      "resident_ms": 30.0,
      "e2e_ms": 31.0,
      "busy": 0.97,
      "ratio": None,
      "first_step_s": 9.0,
      "peak_bytes": None,
  }
  table = gpu_step.format_table([jax_row])
  assert (
      "| 72 | PhysNet baseline | jax | float32 | device | 0.50M | 30.0 | 31.0 | 97% | - |" in table
  )
  torch_row = dict(
      jax_row,
      framework="torch",
      input="-",
      e2e_ms=None,
      busy=None,
      ratio=1.0,
      resident_ms=25.0,
      peak_bytes=2**30,
  )
  table = gpu_step.format_table([torch_row, dict(jax_row, ratio=1.2)])
  assert "| 1.20x |" in table and "| 1024 |" in table

"""PyTorch PhysNet reference (rPPG-Toolbox layout) for the side-by-side step benchmark.

Written from the architecture description of PhysNet (Yu et al., BMVC 2019;
the encoder-decoder "padding" variant that rPPG-Toolbox trains), not from its code:

  clip [B, 3, T, H, W]
  1x5x5 conv 3->16, BN, ReLU; max-pool 1x2x2
  3x3x3 conv 16->32, BN, ReLU; 3x3x3 conv 32->64, BN, ReLU; max-pool 2x2x2
  2 x (3x3x3 conv 64->64, BN, ReLU); max-pool 2x2x2
  2 x (3x3x3 conv 64->64, BN, ReLU); max-pool 1x2x2
  2 x (3x3x3 conv 64->64, BN, ReLU)
  2 x (transposed conv 4x1x1 stride 2x1x1 over time 64->64, BN, ELU)
  adaptive average pool to [T, 1, 1]; 1x1x1 conv 64->1 -> waveform [B, T]

Convolutions carry biases as in the reference (768,577 parameters, "0.77M").
The train step is the usual one: Adam, negative Pearson loss, batch already on
the device. torch is imported lazily; `available()` says whether it is installed.
"""

from __future__ import annotations

import importlib.util
import time
from typing import Any

PARAMETERS = 768_577  # what the layout above has; tests check the count formula


def available() -> bool:
  return importlib.util.find_spec("torch") is not None


def parameter_count(width: int = 16) -> int:
  """Parameters of the layout above (conv weights + biases, BN scale + shift)."""
  w1, w2, w3 = width, 2 * width, 4 * width
  conv = lambda cin, cout, k: cin * cout * k + cout  # noqa: E731
  n = conv(3, w1, 25) + 2 * w1
  n += conv(w1, w2, 27) + 2 * w2
  n += conv(w2, w3, 27) + 2 * w3
  n += 6 * (conv(w3, w3, 27) + 2 * w3)
  n += 2 * (conv(w3, w3, 4) + 2 * w3)
  n += conv(w3, 1, 1)
  return n


def build(width: int = 16):
  """The PhysNet module (needs torch)."""
  import torch
  from torch import nn

  def block(cin, cout, kernel, padding):
    return nn.Sequential(
        nn.Conv3d(cin, cout, kernel, padding=padding), nn.BatchNorm3d(cout), nn.ReLU(inplace=True)
    )

  def up(c):
    return nn.Sequential(
        nn.ConvTranspose3d(c, c, (4, 1, 1), stride=(2, 1, 1), padding=(1, 0, 0)),
        nn.BatchNorm3d(c),
        nn.ELU(inplace=True),
    )

  w1, w2, w3 = width, 2 * width, 4 * width

  class PhysNet(nn.Module):

    def __init__(self):
      super().__init__()
      k3 = dict(kernel=(3, 3, 3), padding=1)
      self.stem = block(3, w1, (1, 5, 5), (0, 2, 2))
      self.enc1 = nn.Sequential(block(w1, w2, **k3), block(w2, w3, **k3))
      self.enc2 = nn.Sequential(block(w3, w3, **k3), block(w3, w3, **k3))
      self.enc3 = nn.Sequential(block(w3, w3, **k3), block(w3, w3, **k3))
      self.enc4 = nn.Sequential(block(w3, w3, **k3), block(w3, w3, **k3))
      self.up = nn.Sequential(up(w3), up(w3))
      self.head = nn.Conv3d(w3, 1, 1)
      self.pool_s = nn.MaxPool3d((1, 2, 2), stride=(1, 2, 2))
      self.pool_st = nn.MaxPool3d((2, 2, 2), stride=2)

    def forward(self, x):
      t = x.shape[2]
      x = self.pool_s(self.stem(x))
      x = self.pool_st(self.enc1(x))
      x = self.pool_st(self.enc2(x))
      x = self.pool_s(self.enc3(x))
      x = self.up(self.enc4(x))
      x = nn.functional.adaptive_avg_pool3d(x, (t, 1, 1))
      return self.head(x).reshape(-1, t)

  del torch
  return PhysNet()


def neg_pearson(pred, target):
  """Mean over the batch of 1 - Pearson r between each predicted and reference waveform."""
  pred = pred - pred.mean(dim=1, keepdim=True)
  target = target - target.mean(dim=1, keepdim=True)
  r = (pred * target).sum(1) / ((pred.square().sum(1) * target.square().sum(1)).sqrt() + 1e-8)
  return (1 - r).mean()


def benchmark(
    *,
    size: int,
    frames: int,
    batch: int,
    steps: int,
    warmup: int,
    bf16: bool = False,
    device: str | None = None,
    width: int = 16,
    lr: float = 1e-4,
) -> dict[str, Any]:
  """Train-step time (median ms, each step synchronised) and peak memory of PhysNet."""
  import torch

  dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
  cuda = dev.type == "cuda"
  if cuda:
    torch.backends.cudnn.benchmark = True  # what a tuned PyTorch run uses
    torch.cuda.reset_peak_memory_stats(dev)
  torch.manual_seed(0)
  model = build(width).to(dev)
  opt = torch.optim.Adam(model.parameters(), lr=lr)
  x = torch.randn(batch, 3, frames, size, size, device=dev)
  y = torch.randn(batch, frames, device=dev)

  def sync():
    if cuda:
      torch.cuda.synchronize(dev)

  def step():
    opt.zero_grad(set_to_none=True)
    with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
      pred = model(x)
    loss = neg_pearson(pred.float(), y)
    loss.backward()
    opt.step()
    return loss

  t0 = time.perf_counter()
  step()
  sync()
  first = time.perf_counter() - t0
  for _ in range(warmup):
    step()
  sync()
  times = []
  for _ in range(steps):
    t0 = time.perf_counter()
    loss = step()
    sync()
    times.append(time.perf_counter() - t0)
  times.sort()
  out = {
      "ms": 1e3 * times[len(times) // 2],
      "first_step_s": first,
      "params": sum(p.numel() for p in model.parameters()),
      "loss": float(loss),
      "device": str(dev),
      "torch": torch.__version__,
      "peak_bytes": int(torch.cuda.max_memory_allocated(dev)) if cuda else None,
  }
  return out

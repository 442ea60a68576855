"""In-memory stand-in for `data.VideoSource`, shared by the clip and input-pipeline tests."""

from typing import Callable, Sequence

import numpy as np

FPS = 30.0


def sine_ppg(index: int, n: int) -> np.ndarray:
  """The same 4-sample-period sine for every video."""
  del index
  return np.sin(np.arange(n) / 4.0)


class FakeVideos:
  """Videos of the given lengths: random uint8 frames, `ppg(index, n)` labels, 30 fps."""

  name, split = "fake", "train"

  def __init__(
      self,
      lengths: Sequence[int],
      size: int = 8,
      *,
      ppg: Callable[[int, int], np.ndarray] = sine_ppg,
  ):
    rng = np.random.default_rng(1)
    self.videos = [
        {
            "frames": rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8),
            "ppg": np.asarray(ppg(i, n), dtype=np.float32),
            "fps": np.float32(FPS),
        }
        for i, n in enumerate(lengths)
    ]

  def __len__(self):
    return len(self.videos)

  def __getitem__(self, i):
    return self.videos[i]

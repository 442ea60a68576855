"""TFDS preparation of splits of any size without TensorFlow.

TFDS's writer (tensorflow_datasets 4.9) gathers a split's serialised examples in
its `Shuffler`. Up to `shuffle.MAX_MEM_BUFFER_SIZE` (1 GB) they stay in memory;
past it they are spilled into `shuffle.BUCKETS_NUMBER` temporary bucket files
that TFDS opens, reads and deletes with `tf.io.gfile`, so without TensorFlow a
split larger than ~1 GB (16 one-minute videos at 128 px) fails with
"No module named 'tensorflow'". `disable_shuffling=True` does not avoid it: it
only changes the sort key, the spill is the same.

`spill_without_tensorflow()` replaces TFDS's bucket class, for the duration of a
preparation, by `SpillBucket`: the same role through `etils.epath` (plain files
for local paths, epath's own backends for others). The Shuffler's logic, and so
the order of the examples, the shards and the dataset info, stay exactly TFDS's.
"""

from __future__ import annotations

import contextlib
import os
import struct
import threading
from typing import Iterator

from etils import epath
from tensorflow_datasets.core import shuffle

_HKEY_BYTES = 16  # TFDS hashes keys to 128-bit integers.
_SIZE = struct.Struct("<Q")


class SpillBucket:
  """One temporary bucket file of TFDS's Shuffler, written without TensorFlow.

  Records are `hkey (16 bytes, big-endian) | size (8 bytes) | data`. The file is
  opened for each record and closed again, unlike TFDS's bucket that keeps all
  1000 open: our examples are whole videos (megabytes each), so the reopening
  costs nothing, and it can never hit the open-files limit.
  """

  def __init__(self, path: epath.PathLike):
    self._path = epath.Path(path)
    self._length = 0
    self._size = 0

  @property
  def size(self) -> int:
    return self._size

  def __len__(self) -> int:
    return self._length

  def add(self, key: int, data: bytes) -> None:
    if not self._length:
      self._path.parent.mkdir(parents=True, exist_ok=True)
    with self._path.open("ab" if self._length else "wb") as f:
      f.write(int(key).to_bytes(_HKEY_BYTES, "big"))
      f.write(_SIZE.pack(len(data)))
      f.write(data)
    self._length += 1
    self._size += len(data)

  def flush(self) -> None:
    """Nothing is buffered between records (kept for the Shuffler's interface)."""

  def read_values(self) -> Iterator[tuple[int, bytes]]:
    """Yields the (hkey, data) records in the order they were added."""
    if not self._length:
      return
    with self._path.open("rb") as f:
      for _ in range(self._length):
        hkey = int.from_bytes(f.read(_HKEY_BYTES), "big")
        (size,) = _SIZE.unpack(f.read(_SIZE.size))
        data = f.read(size)
        if len(data) != size:
          raise OSError(
              f"shuffle bucket {os.fspath(self._path)} is truncated "
              f"({len(data)} of {size} bytes in a record)"
          )
        yield hkey, data

  def del_file(self) -> None:
    if self._path.exists():
      self._path.unlink()


_TFDS_BUCKET = shuffle._Bucket  # pylint: disable=protected-access
_lock = threading.Lock()
_active = 0


@contextlib.contextmanager
def spill_without_tensorflow() -> Iterator[None]:
  """Within the block, TFDS's Shuffler spills through `SpillBucket` (re-entrant)."""
  global _active
  with _lock:
    if _active == 0:
      shuffle._Bucket = SpillBucket  # pylint: disable=protected-access
    _active += 1
  try:
    yield
  finally:
    with _lock:
      _active -= 1
      if _active == 0:
        shuffle._Bucket = _TFDS_BUCKET  # pylint: disable=protected-access

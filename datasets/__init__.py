"""TFDS builders, one folder per rPPG benchmark (see codephys_jax.data.DATASETS)."""

"""UBFC-rPPG (DATASET_2) TFDS builder."""

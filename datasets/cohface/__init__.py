"""COHFACE (Heusch et al. 2017) TFDS builder."""

"""PURE (Stricker et al. 2014) TFDS builder."""

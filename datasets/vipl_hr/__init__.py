"""VIPL-HR (Niu et al. 2018) TFDS builder."""

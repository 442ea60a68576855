"""codephys-jax: robust remote photoplethysmography with a PPG codebook (CodePhys) in JAX/Flax."""

__version__ = "0.1.0"

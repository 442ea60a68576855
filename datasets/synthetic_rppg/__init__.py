"""Embedded synthetic rPPG dataset (no download)."""

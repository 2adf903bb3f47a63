"""Precomputed top-N for every user of a model, and the cold-start list."""

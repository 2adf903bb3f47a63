"""The recommendations API (make serve)."""

"""Publishing precomputed recommendations where apps read them, atomically."""

"""How models are measured: rating error and top-k ranking quality."""

"""ALS training, splitting, and top-N scoring from factor matrices."""

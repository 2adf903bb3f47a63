"""Fresh recommendations between retrains: new ratings folded into the served model."""

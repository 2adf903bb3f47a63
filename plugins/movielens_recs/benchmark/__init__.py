"""The benchmark (`make bench`): what each part of the pipeline costs, measured side by side."""

"""Getting MovieLens from its publisher into one schema: catalog, download, extract, readers."""

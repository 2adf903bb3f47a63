"""Great Expectations validation of snapshots, with suites kept as files in `expectations/`."""

"""The data lake: a local folder or an object-store prefix, addressed by URI."""

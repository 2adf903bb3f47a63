"""MD5 of archives and the two forms in which publishers write it beside them."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from movielens_recs.errors import ChecksumConflictError, MissingChecksumError

# BSD form, as GroupLens publishes it: "MD5 (ml-latest-small.zip) = 1234..."
_BSD = re.compile(r"^MD5 \((?P<name>.+)\) = (?P<hash>[0-9a-fA-F]{32})$")
# GNU coreutils form: "1234...  ml-latest-small.zip" (a '*' marks binary mode)
_GNU = re.compile(r"^(?P<hash>[0-9a-fA-F]{32}) [ *](?P<name>.+)$")


def parse_md5_file(text: str, filename: str) -> str:
    """Return the lowercase MD5 that `text` gives for `filename`.

    Accepts a file listing several archives, and a bare hash on its own line.
    """
    bare, named = None, set()
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        match = _BSD.match(line) or _GNU.match(line)
        if match:
            if Path(match["name"].strip()).name == filename:
                named.add(match["hash"].lower())
            continue
        if re.fullmatch(r"[0-9a-fA-F]{32}", line):
            bare = line.lower()
    if len(named) > 1:
        raise ChecksumConflictError(f"the checksum file published for {filename} gives it different MD5s: "
                                    f"{', '.join(sorted(named))}")
    if named:
        return named.pop()
    if bare is not None:
        return bare
    raise MissingChecksumError(
        f"the checksum file published for {filename} has no MD5 for it "
        f"(expected 'MD5 ({filename}) = <hash>' or '<hash>  {filename}')"
    )


def md5_of_file(path: Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()

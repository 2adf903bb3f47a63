"""Unpack a zip archive without trusting it.

Checks every entry before writing anything: no absolute paths, no `..`, no links or devices,
no two entries of the same name, and neither the announced total size nor the compression ratio
of any entry, or of the archive as a whole, may be absurd. The
announced sizes can lie, so bytes are counted again while they are written. Everything is
unpacked into a temporary folder and renamed into place, so a refused or broken archive leaves
nothing behind.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from movielens_recs.errors import CorruptArchiveError, UnsafeArchiveError

_CHUNK = 1 << 20
# Tiny entries compress at silly ratios (a run of zeros); only judge the ratio of real data.
_RATIO_MIN_BYTES = 1 << 20


def _check_entry(info: zipfile.ZipInfo, label: str, max_ratio: float) -> None:
    name = info.filename
    mode = info.external_attr >> 16
    if name.startswith(("/", "\\")) or PurePosixPath(name).is_absolute() or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchiveError(f"{label}: refused entry {name!r}: absolute path")
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if ".." in parts:
        raise UnsafeArchiveError(f"{label}: refused entry {name!r}: '..' path component")
    if stat.S_ISLNK(mode):
        raise UnsafeArchiveError(f"{label}: refused entry {name!r}: symbolic link")
    # zip writers that record no file type (Python's writestr) leave the type bits zero
    if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise UnsafeArchiveError(f"{label}: refused entry {name!r}: not a regular file")
    if info.file_size >= _RATIO_MIN_BYTES:
        ratio = info.file_size / max(info.compress_size, 1)
        if ratio > max_ratio:
            raise UnsafeArchiveError(
                f"{label}: refused entry {name!r}: compression ratio {ratio:.0f}:1 "
                f"exceeds {max_ratio:.0f}:1 (zip bomb?)"
            )


def safe_extract(
    archive: Path,
    destination: Path,
    max_total_bytes: int,
    max_ratio: float,
    label: str | None = None,
) -> Path:
    """Unpack `archive` into `destination` (which must not exist yet) and return it.

    `label` names the archive in error messages (the cached file is named by its MD5).
    """
    archive = Path(archive)
    label = label or archive.name
    destination = Path(destination)
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, EOFError) as exc:
        raise CorruptArchiveError(f"{label} is not a readable zip archive: {exc}") from exc

    with zf:
        infos = zf.infolist()
        if not infos:
            raise CorruptArchiveError(f"{label} is empty")
        announced = compressed = 0
        seen: dict[str, int] = {}
        for info in infos:
            _check_entry(info, label, max_ratio)
            announced += info.file_size
            compressed += info.compress_size
            key = PurePosixPath(info.filename.replace("\\", "/")).as_posix().rstrip("/")
            seen[key] = seen.get(key, 0) + 1
        duplicates = sorted(name for name, count in seen.items() if count > 1)
        if duplicates:
            raise UnsafeArchiveError(f"{label}: refused: entries with the same name, the last of which would "
                                     f"silently win: {', '.join(duplicates)}")
        # many small entries each under the per-entry threshold can still be a bomb together
        if announced >= _RATIO_MIN_BYTES and announced / max(compressed, 1) > max_ratio:
            raise UnsafeArchiveError(
                f"{label}: refused: the archive's entries unpack to {announced} bytes from {compressed}, "
                f"a ratio of {announced / max(compressed, 1):.0f}:1 over the limit of {max_ratio:.0f}:1 "
                "(MLRECS_MAX_COMPRESSION_RATIO; zip bomb?)")
        if announced > max_total_bytes:
            raise UnsafeArchiveError(
                f"{label}: refused: entries would unpack to {announced} bytes, over the "
                f"limit of {max_total_bytes} (MLRECS_MAX_UNCOMPRESSED_BYTES)"
            )

        destination.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}-", dir=destination.parent))
        try:
            written = 0
            for info in infos:
                target = staging.joinpath(*PurePosixPath(info.filename.replace("\\", "/")).parts)
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                entry_bytes = 0
                try:
                    with zf.open(info) as src, open(target, "wb") as dst:
                        for chunk in iter(lambda: src.read(_CHUNK), b""):
                            entry_bytes += len(chunk)
                            written += len(chunk)
                            if entry_bytes > info.file_size or written > max_total_bytes:
                                raise UnsafeArchiveError(
                                    f"{label}: refused entry {info.filename!r}: it unpacks "
                                    f"to more than its header announces (zip bomb?)"
                                )
                            dst.write(chunk)
                except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
                    raise CorruptArchiveError(
                        f"{label}: entry {info.filename!r} is corrupt or truncated: {exc}"
                    ) from exc
            os.replace(staging, destination)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return destination


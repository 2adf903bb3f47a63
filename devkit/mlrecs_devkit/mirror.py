"""A local stand-in for files.grouplens.org that serves several folders as one.

The real releases sit in the shared data folder and generated archives in `.local/generated`;
the download code fetches `<base>/<name>.zip` from either without knowing which. A name is
looked up in each folder in the order given, and only plain file names are served, so nothing
outside the folders can be reached.

    python -m mlrecs_devkit.mirror --bind 127.0.0.1 --port 8000 DIR [DIR ...]
"""

from __future__ import annotations

import argparse
import http.server
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit


def find(directories: list[Path], url_path: str) -> Path | None:
    """The first folder's file of that name; None for anything but a plain file name."""
    name = unquote(urlsplit(url_path).path).lstrip("/")
    if not name or "/" in name or "\\" in name or name.startswith("."):
        return None
    for directory in directories:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    return None


def make_handler(directories: list[Path]) -> type[http.server.SimpleHTTPRequestHandler]:
    folders = [Path(d).resolve() for d in directories]

    class Handler(http.server.SimpleHTTPRequestHandler):
        def translate_path(self, path: str) -> str:
            found = find(folders, path)
            # a path that exists nowhere makes the base class answer 404
            return str(found) if found else str(folders[0] / ".missing")

        def list_directory(self, path):  # no listings: the mirror serves named files only
            self.send_error(404)
            return None

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("directories", nargs="+", type=Path)
    args = parser.parse_args(argv)
    server = http.server.ThreadingHTTPServer((args.bind, args.port), make_handler(args.directories))
    print(f"serving {', '.join(map(str, args.directories))} on http://{args.bind}:{args.port}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())

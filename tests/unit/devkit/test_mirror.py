"""The local mirror serves the shared releases and generated archives as one site."""

import http.server
import threading
import urllib.error
import urllib.request

import pytest

from mlrecs_devkit.mirror import find, make_handler


@pytest.fixture
def folders(tmp_path):
    shared, generated = tmp_path / "shared", tmp_path / "generated"
    shared.mkdir(), generated.mkdir()
    (shared / "ml-latest-small.zip").write_bytes(b"real")
    (generated / "synthetic-100k.zip").write_bytes(b"generated")
    (generated / "ml-latest-small.zip").write_bytes(b"shadowed")
    (tmp_path / "secret.txt").write_text("outside")
    return [shared, generated]


def test_a_name_is_found_in_the_first_folder_that_has_it(folders):
    assert find(folders, "/ml-latest-small.zip") == folders[0] / "ml-latest-small.zip"
    assert find(folders, "/synthetic-100k.zip?x=1") == folders[1] / "synthetic-100k.zip"
    assert find(folders, "/nothing.zip") is None


@pytest.mark.parametrize("path", ["/../secret.txt", "/%2e%2e/secret.txt", "/sub/ml-latest-small.zip", "/", "/.hidden"])
def test_only_plain_file_names_are_served(folders, path):
    assert find(folders, path) is None


def test_the_server_answers_from_both_folders_and_404s_the_rest(folders):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), make_handler(folders))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        assert urllib.request.urlopen(f"{base}/ml-latest-small.zip").read() == b"real"
        assert urllib.request.urlopen(f"{base}/synthetic-100k.zip").read() == b"generated"
        for missing in ("/secret.txt", "/../secret.txt", "/"):
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(base + missing)
            assert err.value.code == 404
    finally:
        server.shutdown()
        server.server_close()

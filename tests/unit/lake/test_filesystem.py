from datetime import datetime, timezone

import pytest

from movielens_recs.lake.filesystem import exists, join, read_json, read_json_if_present, read_text, write_json


def test_json_round_trips_through_folders_that_do_not_exist_yet(tmp_path):
    uri = join(str(tmp_path), "a", "b", "metrics.json")
    assert not exists(uri)
    at = datetime(2026, 12, 6, tzinfo=timezone.utc)
    write_json(uri, {"b": 1, "a": {"at": at}})
    assert exists(uri)
    # one encoding for every JSON file in the lake: sorted keys, datetimes as text
    assert read_json(uri) == {"a": {"at": str(at)}, "b": 1}
    assert read_text(uri).index('"a"') < read_text(uri).index('"b"')


def test_a_marker_not_written_yet_reads_as_none_and_other_errors_still_raise(tmp_path):
    assert read_json_if_present(join(str(tmp_path), "_SNAPSHOT.json")) is None
    with pytest.raises(FileNotFoundError):
        read_json(join(str(tmp_path), "_SNAPSHOT.json"))
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ValueError):
        read_json_if_present(join(str(tmp_path), "broken.json"))

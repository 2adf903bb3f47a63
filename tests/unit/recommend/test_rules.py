"""Exclusion rules: the file's schema, and its names checked against the catalog."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from airflow.sdk.exceptions import AirflowFailException

from movielens_recs.config import Settings
from movielens_recs.orchestration.modeling import apply_rules
from movielens_recs.recommend.rules import Promotion, Rules, RulesError

CATALOG = pa.table({"movie_id": pa.array([1, 2, 3, 4], pa.int32()),
                    "genres": ["Comedy|Horror", "Drama", None, "Horror"]})


def write(tmp_path, text, dataset="ml-x"):
    (tmp_path / f"{dataset}.yaml").write_text(text)
    return tmp_path


def test_no_file_no_rules(tmp_path):
    assert Rules.load(tmp_path, "ml-x").excluded_ids(CATALOG) == []


def test_movies_and_genres_are_excluded(tmp_path):
    rules = Rules.load(write(tmp_path, "exclude:\n  movies: [2]\n  genres: [Horror]\n"), "ml-x")
    assert rules.excluded_ids(CATALOG) == [1, 2, 4]


@pytest.mark.parametrize("text, names", [
    ("exclude: [1, 2]\n", "'exclude' takes 'movies'"),
    ("promote:\n  movies: [1]\n", "the keys 'exclude' and 'include'"),
    ("include:\n  movies: [1]\n  at: 2\n", "'include' takes 'movies'"),
    ("include:\n  movies: [1, 1]\n", "include.movies names a movie twice"),
    ("include:\n  movies: [1]\n  position: 0\n", "include.position must be a positive integer"),
    ("include:\n  movies: [1]\n  max_per_list: true\n", "include.max_per_list must be a positive integer"),
    ("include:\n  movies: [2]\nexclude:\n  movies: [2]\n", r"movies both included and excluded: \[2\]"),
    ("exclude:\n  films: [1]\n", "'exclude' takes 'movies'"),
    ("exclude:\n  movies: [one]\n", "exclude.movies must be a list of positive movie ids"),
    ("exclude:\n  movies: [-3]\n", "exclude.movies must be a list of positive movie ids"),
    ("exclude:\n  genres: [3]\n", "exclude.genres must be a list of genre names"),
    ("exclude: {movies: [1\n", "not valid YAML"),
])
def test_a_malformed_file_names_the_problem(tmp_path, text, names):
    with pytest.raises(RulesError, match=names) as error:
        Rules.load(write(tmp_path, text), "ml-x")
    assert "ml-x.yaml" in str(error.value)


def test_promotions_are_read_in_order(tmp_path):
    rules = Rules.load(write(tmp_path, "include:\n  movies: [3, 2]\n  position: 4\n  max_per_list: 2\n"), "ml-x")
    assert rules.promotion == Promotion((3, 2), 4, 2) and rules.excluded_ids(CATALOG) == []
    with pytest.raises(RulesError, match=r"include.movies names movies of an excluded genre: \[4\]"):
        Rules.load(write(tmp_path, "include:\n  movies: [4]\nexclude:\n  genres: [Horror]\n"), "ml-x").excluded_ids(CATALOG)


def test_names_the_catalog_lacks_are_errors_not_silently_nothing(tmp_path):
    with pytest.raises(RulesError, match=r"movies the catalog does not have: \[7, 9\]"):
        Rules.load(write(tmp_path, "exclude:\n  movies: [1, 9, 7]\n"), "ml-x").excluded_ids(CATALOG)
    with pytest.raises(RulesError, match=r"include.movies names movies the catalog does not have: \[8\]"):
        Rules.load(write(tmp_path, "include:\n  movies: [8]\n"), "ml-x").excluded_ids(CATALOG)
    with pytest.raises(RulesError, match=r"genres the catalog does not have: \['Horor'\].*'Comedy', 'Drama', 'Horror'"):
        Rules.load(write(tmp_path, "exclude:\n  genres: [Horor]\n"), "ml-x").excluded_ids(CATALOG)


def test_prepare_model_fails_at_once_on_a_bad_rules_file(tmp_path):
    rules_dir = write(tmp_path, "exclude:\n  movies: [99]\n")
    pq.write_table(CATALOG, tmp_path / "movies.parquet")
    settings = Settings.from_env({"MLRECS_RULES_DIR": str(rules_dir), "MLRECS_STATE_DIR": str(tmp_path / "state")})
    ready = {"dataset": "ml-x", "movies_uri": str(tmp_path / "movies.parquet")}
    with pytest.raises(AirflowFailException, match=r"RulesError: .*ml-x.yaml: exclude.movies names movies the catalog "
                                                   r"does not have: \[99\]"):
        apply_rules(settings, ready)
    write(tmp_path, "exclude:\n  genres: [Drama]\ninclude:\n  movies: [3]\n")
    assert apply_rules(settings, ready) == ([2], {"movies": [3], "position": 1, "max_per_list": 1})

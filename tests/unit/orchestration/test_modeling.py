"""Which params a run trains with: its own, else the dataset's newest tuned ones, else the defaults."""

from movielens_recs.models.params import AlsParams
from movielens_recs.orchestration.modeling import resolve_params

TUNED = {"id": 3, "best_params": {**AlsParams().as_dict(), "rank": 20, "ranking_alpha": 5.0}}


def test_without_a_search_the_built_in_defaults():
    assert resolve_params({}, None) == AlsParams()
    # the DAG's form sends every model param, empty unless the user set it
    assert resolve_params(dict.fromkeys(AlsParams.field_names()), None) == AlsParams()


def test_the_newest_search_sets_the_datasets_defaults():
    params = resolve_params(dict.fromkeys(AlsParams.field_names()), TUNED)
    assert (params.rank, params.ranking_alpha, params.reg_param) == (20, 5.0, AlsParams().reg_param)


def test_a_runs_own_params_win_over_the_search():
    params = resolve_params({"rank": 7, "ranking_alpha": None, "k": 10, "dataset": "ml-x"}, TUNED)
    assert (params.rank, params.ranking_alpha) == (7, 5.0)

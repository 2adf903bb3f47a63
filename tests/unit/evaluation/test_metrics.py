"""Each metric against cases worked out by hand."""

import math

import pytest

from movielens_recs.evaluation.metrics import catalog_coverage, mae, ranking_metrics, rmse, user_ranking


def test_rmse_and_mae_of_identical_vectors_are_zero():
    assert rmse([1.0, 2.5, 4.0], [1.0, 2.5, 4.0]) == 0.0
    assert mae([1.0, 2.5, 4.0], [1.0, 2.5, 4.0]) == 0.0


def test_rmse_and_mae_by_hand():
    # errors 1, -1, 2: squares 1+1+4 = 6, mean 2, sqrt 1.41421...; absolute mean 4/3
    assert rmse([3, 4, 5], [2, 5, 3]) == pytest.approx(math.sqrt(2))
    assert mae([3, 4, 5], [2, 5, 3]) == pytest.approx(4 / 3)


def test_rmse_refuses_mismatched_or_empty_input():
    with pytest.raises(ValueError):
        rmse([1.0], [1.0, 2.0])
    with pytest.raises(ValueError):
        mae([], [])


def test_ideal_ranking_has_ndcg_one():
    m = user_ranking(["a", "b", "c"], {"a", "b", "c"}, k=3)
    assert (m.precision, m.recall, m.ndcg, m.average_precision) == (1.0, 1.0, 1.0, 1.0)


def test_no_hits_is_zero_everywhere():
    m = user_ranking(["x", "y"], {"a"}, k=2)
    assert (m.precision, m.recall, m.ndcg, m.average_precision) == (0.0, 0.0, 0.0, 0.0)


def test_one_user_by_hand():
    # recommended a x b y, relevant {a, b, c}, k = 4: hits at ranks 1 and 3
    m = user_ranking(["a", "x", "b", "y"], {"a", "b", "c"}, k=4)
    assert m.precision == pytest.approx(2 / 4)
    assert m.recall == pytest.approx(2 / 3)
    dcg = 1 / math.log2(2) + 1 / math.log2(4)  # 1 + 0.5
    idcg = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)  # 3 relevant fit in k = 4
    assert m.ndcg == pytest.approx(dcg / idcg)  # 1.5 / 2.1309 = 0.7039
    # AP@4: precision at the hits, 1/1 and 2/3, over min(3, 4) = 3
    assert m.average_precision == pytest.approx((1 + 2 / 3) / 3)


def test_k_cuts_the_list():
    m = user_ranking(["x", "a"], {"a"}, k=1)
    assert (m.precision, m.recall, m.ndcg) == (0.0, 0.0, 0.0)


def test_averaged_over_relevant_users_missing_ones_score_zero():
    recommended = {1: ["a", "b"], 2: ["c", "d"]}
    relevant = {1: {"a"}, 2: {"x"}, 3: {"a"}}  # user 3 got no list
    m = ranking_metrics(recommended, relevant, k=2)
    assert m.users == 3
    assert m.precision_at_k == pytest.approx((1 / 2 + 0 + 0) / 3)
    assert m.recall_at_k == pytest.approx((1 + 0 + 0) / 3)
    assert m.ndcg_at_k == pytest.approx(1 / 3)
    assert m.map_at_k == pytest.approx(1 / 3)


def test_catalog_coverage_by_hand():
    assert catalog_coverage({1: ["a", "b"], 2: ["b", "c"]}, catalog_size=6, k=2) == pytest.approx(3 / 6)
    assert catalog_coverage({1: ["a", "b", "z"]}, catalog_size=4, k=2) == pytest.approx(2 / 4)

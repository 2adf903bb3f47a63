"""The bias baseline on a case computed by hand."""

import pytest

from movielens_recs.models.bias import fit_arrays

# user, movie, rating
RATINGS = [(1, 10, 5.0), (1, 20, 3.0), (2, 10, 4.0), (2, 30, 2.0)]


def _fit(damping):
    users, items, ratings = zip(*RATINGS)
    return fit_arrays(users, items, ratings, damping)


def test_damped_biases_by_hand():
    terms, users, items = _fit(damping=1.0)
    # mu = 14 / 4
    assert terms.global_mean == pytest.approx(3.5)
    # b_10 = ((5 - 3.5) + (4 - 3.5)) / (1 + 2); b_20 = (3 - 3.5) / (1 + 1); b_30 = (2 - 3.5) / (1 + 1)
    assert items == pytest.approx({10: 2.0 / 3, 20: -0.25, 30: -0.75})
    # b_1 = ((5 - 3.5 - 2/3) + (3 - 3.5 + 0.25)) / (1 + 2); b_2 = ((4 - 3.5 - 2/3) + (2 - 3.5 + 0.75)) / 3
    assert users == pytest.approx({1: (5 / 6 - 0.25) / 3, 2: (-1 / 6 - 0.75) / 3})
    # user 1 never rated movie 30: 3.5 + 0.19444 - 0.75
    assert terms.global_mean + users[1] + items[30] == pytest.approx(2.944444, abs=1e-6)


def test_without_damping_a_bias_is_the_plain_mean_deviation():
    terms, users, items = _fit(damping=0.0)
    assert items == pytest.approx({10: 1.0, 20: -0.5, 30: -1.5})
    assert users == pytest.approx({1: (0.5 + 0.0) / 2, 2: (-0.5 + 0.0) / 2})


def test_damping_shrinks_rarely_rated_movies_towards_zero():
    _, _, loose = _fit(damping=0.0)
    _, _, damped = _fit(damping=10.0)
    assert abs(damped[30]) < abs(loose[30]) / 5


def test_no_ratings_is_an_error():
    with pytest.raises(ValueError, match="no ratings"):
        fit_arrays([], [], [], 1.0)

import numpy as np
import pytest

from movielens_recs.models import topn


def test_best_unseen_items_in_order():
    users = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    items = np.array([[3.0, 0.0], [2.0, 1.0], [1.0, 3.0], [0.0, 2.0]], dtype=np.float32)
    # user 0 scores 3,2,1,0; user 1 scores 0,1,3,2
    idx, scores = topn.top_n_block(users, items, [np.array([0]), np.array([], dtype=np.int64)], n=2)
    assert idx.tolist() == [[1, 2], [2, 3]]
    assert scores.tolist() == [[2.0, 1.0], [3.0, 2.0]]


def test_fewer_unseen_items_than_n_are_padded():
    users = np.ones((1, 1), dtype=np.float32)
    items = np.array([[1.0], [2.0], [3.0]], dtype=np.float32)
    idx, scores = topn.top_n_block(users, items, [np.array([1, 2])], n=3)
    assert idx.tolist() == [[0, -1, -1]]
    assert scores[0, 0] == 1.0 and np.isneginf(scores[0, 1:]).all()


def test_blocks_give_the_same_answer_as_one_product(monkeypatch):
    rng = np.random.default_rng(0)
    users = rng.normal(size=(50, 4)).astype(np.float32)
    items = rng.normal(size=(300, 4)).astype(np.float32)
    seen = [rng.choice(300, size=rng.integers(0, 20), replace=False) for _ in range(50)]
    whole_idx, whole_scores = topn.top_n_block(users, items, seen, n=10)
    monkeypatch.setattr(topn, "MAX_BLOCK_BYTES", 4 * 300 * 7)  # 7 users a block
    block_idx, block_scores = topn.top_n_block(users, items, seen, n=10)
    assert (whole_idx == block_idx).all() and np.allclose(whole_scores, block_scores)
    brute = users @ items.T
    for u in range(50):
        brute[u, seen[u]] = -np.inf
        assert set(np.argsort(-brute[u])[:10]) == set(whole_idx[u])
        assert not set(seen[u]) & set(whole_idx[u])


@pytest.mark.parametrize("seed", range(8))
def test_pruned_scorer_gives_the_brute_force_answer(seed, monkeypatch):
    """Heavy-tailed item norms, as ALS gives, with seen items, odd sizes and n above the catalog."""
    monkeypatch.setattr(topn, "ITEM_CHUNK", 64)  # many chunks, so pruning decisions are exercised
    rng = np.random.default_rng(seed)
    n_users, n_items, rank = rng.integers(1, 300), rng.integers(1, 2000), rng.integers(1, 12)
    users = rng.normal(size=(n_users, rank)).astype(np.float32)
    items = (rng.normal(size=(n_items, rank)) * rng.pareto(1.5, size=(n_items, 1))).astype(np.float32)
    seen = [rng.choice(n_items, size=rng.integers(0, min(n_items, 40) + 1), replace=False) for _ in range(n_users)]
    n = int(rng.integers(1, 15))
    idx, scores = topn.top_n_block(users, items, seen, n)
    ref_idx, ref_scores = topn.top_n_dense(users, items, seen, n)
    assert np.allclose(scores, ref_scores)
    assert ((idx == -1) == (ref_idx == -1)).all()
    exact = users.astype(np.float64) @ items.T.astype(np.float64)
    rows = np.nonzero(idx >= 0)
    assert np.allclose(scores[rows], exact[rows[0], idx[rows]], rtol=1e-4, atol=1e-4)  # each index is its score
    for u in range(n_users):
        assert not set(seen[u]) & set(idx[u][idx[u] >= 0].tolist())


def test_pruning_skips_items_that_cannot_make_the_top(monkeypatch):
    """One dominant item, then a long tail of tiny ones: only the first chunk is ever scored."""
    monkeypatch.setattr(topn, "ITEM_CHUNK", 10)
    items = np.vstack([np.full((10, 2), 5.0), np.full((990, 2), 0.01)]).astype(np.float32)
    users = np.ones((3, 2), dtype=np.float32)
    stats = {}
    idx, scores = topn.top_n_block(users, items, [np.empty(0, np.int64)] * 3, n=5, stats=stats)
    assert set(idx.ravel().tolist()) <= set(range(10)) and (scores == 10.0).all()
    assert stats["products"] == 3 * 10  # 10 of the 1,000 items scored, for each of the 3 users


def test_seen_lists_from_arrow_become_catalog_positions():
    """A null list, an empty one, and movies the catalog does not know (left out, as the model
    cannot score them anyway), in one Arrow batch as the Spark scorer gets it."""
    import pyarrow as pa

    ids = np.array([10, 20, 30, 40], dtype=np.int64)
    seen = pa.array([[20, 99, 10], None, [], [40], [5, 50, 30]], type=pa.list_(pa.int32()))
    positions = topn._seen_positions(ids, seen)
    assert [p.tolist() for p in positions] == [[1, 0], [], [], [3], [2]]
    assert [p.tolist() for p in topn._seen_positions(ids, seen.slice(3))] == [[3], [2]]
    assert [p.tolist() for p in topn._seen_positions(np.empty(0, np.int64), seen)] == [[]] * 5

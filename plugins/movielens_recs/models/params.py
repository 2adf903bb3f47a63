"""Training parameters: one definition shared by the DAG's form, the registry, the tuner and the jobs.

One training run fits two models on the same split (see models/training.py):
- the rating model, judged by RMSE: per-user and per-movie biases (damped) plus explicit ALS on
  what the biases leave over; its predictions are the `predicted_rating` apps show;
- the ranking model, whose scores order the published top N: implicit-feedback ALS, each rating
  a preference with a confidence.

Defaults were measured on ml-latest-small over three split salts (README, "Goals, measured"),
and on generated sets of 1M-5M ratings: a rating regParam of 0.2 does as well as 0.15 on
ml-latest-small (RMSE 0.853) but leaves the factors at zero on 5M generated ratings (RMSE no
better than the biases'), where 0.15 is 3.6% better than them. A ranking rank of 64 gains about 1% NDCG@10 over 32 for
twice the fit time, which at 25M ratings would double the train stage. Spark scales regParam by
each user's and movie's number of ratings, so its values look small next to other libraries'.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

SPLITS = ("hash", "time")
# How ratings become implicit preferences: every rating a positive of confidence 1 + alpha, or
# rating - 2.5 (Spark's MovieLens example), which makes low ratings negative preferences.
PREFERENCES = ("rated", "centered")


@dataclass(frozen=True)
class AlsParams:
    # the rating model
    rank: int = 10
    max_iter: int = 10
    reg_param: float = 0.15
    nonnegative: bool = False
    bias_damping: float = 5.0
    # the ranking model
    ranking_rank: int = 32
    ranking_max_iter: int = 10
    ranking_reg_param: float = 0.1
    ranking_alpha: float = 1.0
    ranking_preference: str = "centered"
    # both
    blocks: int = 4
    seed: int = 42
    # the split: "hash" puts a rating in the test fold by a hash of (user, movie, salt), so the
    # same rating lands in the same fold in every run; "time" holds out the most recent ratings
    split: str = "hash"
    split_salt: str = "movielens"
    test_fraction: float = 0.2

    def __post_init__(self):
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}, not {self.split!r}")
        if self.ranking_preference not in PREFERENCES:
            raise ValueError(f"ranking_preference must be one of {', '.join(PREFERENCES)}, "
                             f"not {self.ranking_preference!r}")
        if not 0 < self.test_fraction < 1:
            raise ValueError(f"test_fraction must be between 0 and 1, not {self.test_fraction}")
        if min(self.rank, self.max_iter, self.blocks, self.ranking_rank, self.ranking_max_iter) < 1:
            raise ValueError("ranks, iterations and blocks must be positive")
        if min(self.reg_param, self.ranking_reg_param, self.ranking_alpha, self.bias_damping) < 0:
            raise ValueError("regularization, alpha and damping must not be negative")

    def as_dict(self) -> dict:
        return asdict(self)

    def replace(self, **changes) -> "AlsParams":
        return AlsParams.from_dict({**self.as_dict(), **changes})

    @classmethod
    def from_dict(cls, values: dict) -> "AlsParams":
        """Known keys only, cast from strings (argv, Jinja) or JSON; None means the default."""
        known = {}
        for f in fields(cls):
            if values.get(f.name) is None:
                continue
            value = values[f.name]
            if f.type == "bool":
                known[f.name] = value.lower() in ("1", "true", "yes") if isinstance(value, str) else bool(value)
            else:
                known[f.name] = {"int": int, "float": float, "str": str}[f.type](value)
        if known.get("split") == "random":  # the name of the hash split before it became stable
            known["split"] = "hash"
        return cls(**known)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

"""Training parameters: one definition shared by the DAG's form, the registry and the jobs."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class AlsParams:
    rank: int = 10
    max_iter: int = 10
    reg_param: float = 0.1
    nonnegative: bool = False
    blocks: int = 4
    seed: int = 42
    split: str = "random"  # "random" (seeded) or "time" (the most recent ratings are the test set)
    test_fraction: float = 0.2

    def __post_init__(self):
        if self.split not in ("random", "time"):
            raise ValueError(f"split must be 'random' or 'time', not {self.split!r}")
        if not 0 < self.test_fraction < 1:
            raise ValueError(f"test_fraction must be between 0 and 1, not {self.test_fraction}")
        if self.rank < 1 or self.max_iter < 1 or self.blocks < 1:
            raise ValueError("rank, max_iter and blocks must be positive")
        if self.reg_param < 0:
            raise ValueError("reg_param must not be negative")

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "AlsParams":
        known = {k: values[k] for k in cls.__dataclass_fields__ if k in values and values[k] is not None}
        types = {"rank": int, "max_iter": int, "blocks": int, "seed": int, "reg_param": float, "test_fraction": float}
        for key, cast in types.items():
            if key in known:
                known[key] = cast(known[key])
        if "nonnegative" in known and isinstance(known["nonnegative"], str):
            known["nonnegative"] = known["nonnegative"].lower() in ("1", "true", "yes")
        return cls(**known)

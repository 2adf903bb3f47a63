"""Each Spark job's arguments, written once: one dataclass per job in spark_jobs/.

The DAG's operator builds a contract from its upstream task's XCom (`from_upstream`) and submits
`to_argv()`; the job reads the same class back with `from_argv`. A field added, renamed or
given a default here changes both sides at once, and nothing else spells the arguments out.

On the command line every field is `--field-name=value`. Text goes as it is; any other type
(numbers, lists, dicts, None) goes as JSON, so that a list of ids or a dict of params arrives
with its type. A field left at None is left out, and the job gets the default.
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import MISSING, dataclass, fields
from typing import ClassVar

_TEXT = {"str", "str | None"}
REJECTED = "the Spark job rejected its input"


def cutoff_for(context: dict):
    """A run trains on the ratings made before the end of its data interval (an Airflow task
    context; a manual run without a logical date has only its run_after)."""
    for key in ("data_interval_end", "logical_date", "run_after"):
        if context.get(key) is not None:
            return context[key]
    raise ValueError("the run has no data interval, logical date or run_after to cut the data at")


@dataclass(frozen=True)
class JobContract:
    JOB: ClassVar[str]  # the entry point's name in spark_jobs/

    @classmethod
    def _option(cls, name: str) -> str:
        return "--" + name.replace("_", "-")

    def to_argv(self) -> list[str]:
        argv = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            argv.append(f"{self._option(f.name)}={value if f.type in _TEXT else json.dumps(value)}")
        return argv

    def bad_input(self) -> str:
        """What the job's EXIT_BAD_INPUT means, for the task's error (the log has the details)."""
        return REJECTED

    @classmethod
    def from_argv(cls, argv: list[str]):
        parser = argparse.ArgumentParser(prog=f"spark_jobs/{cls.JOB}.py", description=cls.__doc__)
        for f in fields(cls):
            required = f.default is MISSING and f.default_factory is MISSING
            parser.add_argument(cls._option(f.name), dest=f.name, required=required,
                                type=str if f.type in _TEXT else json.loads)
        values = {k: v for k, v in vars(parser.parse_args(argv)).items() if v is not None}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


@dataclass(frozen=True)
class ValidateJob(JobContract):
    """Validate a MovieLens snapshot with Great Expectations."""

    JOB: ClassVar[str] = "validate_snapshot"
    dataset: str
    snapshot_id: str
    data_dir: str  # the snapshot attempt being validated
    ratings: str  # Spark URI of the ratings Parquet folder
    movies: str
    expectations_dir: str
    report_uri: str
    suites_fingerprint: str | None = None
    data_docs_dir: str | None = None

    @classmethod
    def from_upstream(cls, snap: dict, context: dict, settings) -> "ValidateJob":
        """`snap`: what the snapshot task returned."""
        return cls(dataset=snap["dataset"], snapshot_id=snap["snapshot_id"], data_dir=snap["data_dir"],
                   ratings=snap["ratings_spark_uri"], movies=snap["movies_spark_uri"],
                   expectations_dir=str(settings.expectations_dir), report_uri=snap["report_uri"],
                   suites_fingerprint=snap.get("suites_fingerprint"), data_docs_dir=str(settings.data_docs_dir))


@dataclass(frozen=True)
class TrainEvaluateJob(JobContract):
    """Train a model version's rating and ranking models, then measure them against their
    baselines and the champion, in one Spark application: evaluation then runs on the JVMs that
    training has warmed, and the run starts one application fewer (README "Performance")."""

    JOB: ClassVar[str] = "train_evaluate"
    ratings: str
    dataset: str
    snapshot_id: str
    model_id: str
    model_uri: str  # Spark URI of this model's folder
    params: dict  # AlsParams.as_dict(); a missing key takes AlsParams' default
    # prepare_model's mark for this registration of the version: a retry of the task that finds
    # the version trained under it evaluates it without fitting it again (models/run.py)
    registration: str = ""
    cutoff: str = ""  # train only on ratings before this ISO time (UTC)
    checkpoint_dir: str = ""
    k: int = 10
    champion_model_id: str = ""
    champion_model_uri: str = ""

    def bad_input(self) -> str:
        return (f"snapshot {self.dataset}/{self.snapshot_id} has no ratings to train on or none to hold out "
                f"before the cutoff {self.cutoff or '(none)'}; a retry would find the same")

    @classmethod
    def from_upstream(cls, prepared: dict, context: dict, settings) -> "TrainEvaluateJob":
        """`prepared`: what prepare_model returned."""
        return cls(ratings=prepared["ratings_spark_uri"], dataset=prepared["dataset"],
                   snapshot_id=prepared["snapshot_id"], model_id=prepared["model_id"],
                   model_uri=prepared["model_uri"], params=prepared["params"],
                   registration=prepared.get("registration", ""), cutoff=prepared["cutoff"],
                   checkpoint_dir=prepared["checkpoint_dir"], k=int(prepared["k"]),
                   champion_model_id=prepared["champion_id"], champion_model_uri=prepared["champion_uri"])


@dataclass(frozen=True)
class RecommendJob(JobContract):
    """Top-N recommendations for every user of a model, validated."""

    JOB: ClassVar[str] = "recommend"
    model_id: str
    model_uri: str
    ratings: str  # what users already rated
    movies: str  # titles
    expectations_dir: str
    top_n: int = 10
    cold_start_min_average: float = 3.5
    data_docs_dir: str | None = None
    cutoff: str = ""  # only ratings before it count as seen
    output_uri: str = ""  # default: <model-uri>/recommendations
    exclude_movies: tuple[int, ...] = ()  # the dataset's rules, checked by prepare_model
    promote: dict | None = None  # {"movies": [...], "position": p, "max_per_list": c}

    @classmethod
    def from_upstream(cls, prepared: dict, context: dict, settings) -> "RecommendJob":
        return cls(model_id=prepared["model_id"], model_uri=prepared["model_uri"],
                   ratings=prepared["ratings_spark_uri"], movies=prepared["movies_spark_uri"],
                   expectations_dir=str(settings.expectations_dir), top_n=int(context["params"]["top_n"]),
                   data_docs_dir=str(settings.data_docs_dir), cutoff=prepared["cutoff"],
                   exclude_movies=tuple(prepared.get("excluded_movies") or ()),
                   promote=prepared.get("promotion") or None)


@dataclass(frozen=True)
class TuneJob(JobContract):
    """Tune the rating and ranking models on a validation fold."""

    JOB: ClassVar[str] = "tune_als"
    ratings: str
    dataset: str
    mode: str  # quick or full (models.tuning.MODES)
    output_uri: str
    params: dict  # the base params, what the search changes from
    cutoff: str = ""
    k: int = 10
    budget_seconds: float | None = None  # default: the mode's budget
    parallelism: int = 2
    checkpoint_dir: str = ""

    @classmethod
    def from_upstream(cls, ready: dict, context: dict, settings) -> "TuneJob":
        """`ready`: what snapshot_ready returned; the base params are the run's (None: default)."""
        from movielens_recs.lake.filesystem import join
        from movielens_recs.models.params import AlsParams

        params = context["params"]
        base = AlsParams.from_dict({k: params.get(k) for k in AlsParams.field_names()})
        run_key = re.sub(r"[^A-Za-z0-9._-]+", "_", context["run_id"])
        return cls(ratings=ready["ratings_spark_uri"], dataset=ready["dataset"], mode=params.get("tune") or "off",
                   output_uri=join(settings.model_store_uri, ready["dataset"], "_tuning", run_key, "tuning.json"),
                   params=base.as_dict(), cutoff=cutoff_for(context).isoformat(), k=int(params.get("k") or 10),
                   checkpoint_dir=settings.checkpoint_dir)

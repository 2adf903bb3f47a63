"""Run the suites with Great Expectations 1.x and turn the outcome into a report a person reads.

Every run writes Data Docs (HTML) into `data_docs_dir`, passing or not, so that a failure can be
inspected in a browser; the report also carries each failed expectation and how many rows broke
it, which is what the task log and the error message show.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from movielens_recs.errors import DataValidationError

log = logging.getLogger(__name__)


@dataclass
class Failure:
    suite: str
    expectation: str
    column: str | None
    unexpected_count: int | None
    element_count: int | None
    observed: Any = None
    sample: list = field(default_factory=list)

    def describe(self) -> str:
        target = f"{self.expectation}({self.column})" if self.column else self.expectation
        if self.unexpected_count is not None:
            what = f"{self.unexpected_count} of {self.element_count} rows broke it"
            if self.sample:
                what += f", e.g. {', '.join(repr(v) for v in self.sample[:5])}"
        else:
            what = f"observed {self.observed!r}"
        return f"{self.suite}: {target} failed: {what}"


@dataclass
class ValidationReport:
    success: bool
    failures: list[Failure]
    statistics: dict[str, dict]
    data_docs_index: str | None

    def to_dict(self) -> dict:
        return {
            "success": self.success,
            "failures": [f.__dict__ | {"message": f.describe()} for f in self.failures],
            "statistics": self.statistics,
            "data_docs_index": self.data_docs_index,
        }

    def message(self, subject: str) -> str:
        if self.success:
            return f"{subject}: all expectations passed"
        lines = [f"{subject}: {len(self.failures)} expectation(s) failed"]
        lines += [f"  - {f.describe()}" for f in self.failures]
        if self.data_docs_index:
            lines.append(f"  Data Docs: {self.data_docs_index}")
        return "\n".join(lines)

    def raise_for_failures(self, subject: str) -> None:
        if not self.success:
            raise DataValidationError(self.message(subject))


def _json_safe(value):
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    return str(value)


def _failure(suite: str, result) -> Failure:
    config = result.expectation_config
    kwargs = config.kwargs or {}
    res = result.result or {}
    if kwargs.get("column_A"):
        column = f"{kwargs['column_A']} = {kwargs['column_B']}"
    else:
        column = kwargs.get("column") or (", ".join(kwargs["column_list"]) if kwargs.get("column_list") else None)
    sample = res.get("partial_unexpected_list") or []
    if result.exception_info and result.exception_info.get("raised_exception"):
        observed = f"error: {result.exception_info.get('exception_message')}"
    else:
        observed = res.get("observed_value")
    return Failure(
        suite=suite,
        expectation=config.type,
        column=column,
        unexpected_count=res.get("unexpected_count"),
        element_count=res.get("element_count"),
        observed=_json_safe(observed),
        sample=_json_safe(sample[:10]),
    )


# Frames up to this many rows in all are validated by GX's pandas engine on the driver: on Spark
# every expectation is a job of its own (the snapshot suites took 8 s of ml-latest-small's
# validate, the output suites 19 s of its recommend). Larger data stays on the cluster.
PANDAS_MAX_ROWS = 2_000_000


def choose_engine(frames: dict, pandas_max_rows: int = PANDAS_MAX_ROWS) -> tuple[str, dict]:
    """("pandas", the frames on the driver) when they are small enough, else ("spark", as given).

    Both engines then see timestamps the same way: Spark hands them to pandas as naive
    `datetime64[ns]` wall-clock times in the session's time zone, the zone in which Spark itself
    reads the suites' string bounds, so a bound means one instant on either engine. (Arrow's own
    Parquet reader would give `datetime64[ms, UTC]`, whose type GX's pandas engine cannot name.)"""
    rows = sum(frame.count() for frame in frames.values())
    if rows > pandas_max_rows:
        return "spark", frames
    return "pandas", {name: frame.toPandas() for name, frame in frames.items()}


def validate_frames(
    frames: dict[str, Any],
    suites: dict[str, dict],
    parameters: dict,
    data_docs_dir: Path | None = None,
    engine: str = "spark",
) -> ValidationReport:
    """Validate each frame against the suite of the same name."""
    import great_expectations as gx
    from great_expectations.core.expectation_suite import ExpectationSuite

    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    # Progress bars are for notebooks; in a task log they are thousands of lines of noise.
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    docs_index = None
    if data_docs_dir is not None:
        Path(data_docs_dir).mkdir(parents=True, exist_ok=True)
        context.add_data_docs_site(
            "movielens_recs",
            {
                "class_name": "SiteBuilder",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(Path(data_docs_dir).resolve()),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
    if engine == "spark":
        source = context.data_sources.add_spark("snapshot")
    elif engine == "pandas":
        source = context.data_sources.add_pandas("snapshot")
    else:
        raise ValueError(f"unknown validation engine {engine!r}")

    failures: list[Failure] = []
    statistics: dict[str, dict] = {}
    for frame_name, frame in frames.items():
        spec = dict(suites[frame_name])
        suite = context.suites.add(
            ExpectationSuite(name=spec["name"], expectations=spec["expectations"], meta=spec.get("meta"))
        )
        batch = source.add_dataframe_asset(frame_name).add_batch_definition_whole_dataframe(frame_name)
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=f"{frame_name}_validation", data=batch, suite=suite)
        )
        # Data that passes needs only the counts behind each verdict. The samples of bad values
        # cost GX extra Spark jobs per expectation, so they are computed only for a failing suite.
        result = definition.run(
            batch_parameters={"dataframe": frame},
            expectation_parameters=parameters,
            result_format={"result_format": "BOOLEAN_ONLY"},
        )
        if not result.success:
            result = definition.run(
                batch_parameters={"dataframe": frame},
                expectation_parameters=parameters,
                result_format={"result_format": "SUMMARY", "partial_unexpected_count": 10},
            )
        statistics[frame_name] = _json_safe(dict(result.statistics))
        for expectation_result in result.results:
            if not expectation_result.success:
                failures.append(_failure(spec["name"], expectation_result))
        log.info(
            "suite %s on %s: %s (%s)",
            spec["name"], frame_name, "passed" if result.success else "FAILED", result.statistics,
        )
    if data_docs_dir is not None:
        context.build_data_docs()
        index = Path(data_docs_dir).resolve() / "index.html"
        docs_index = str(index) if index.exists() else None
    return ValidationReport(not failures, failures, statistics, docs_index)

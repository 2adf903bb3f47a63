"""The versioned model store: `<store>/<dataset>/<model_id>/` holds one model version.

    als/            the rating model's explicit ALS (Spark ML format), fitted to what the biases leave
    bias/           the rating model's biases: bias.json (global mean, damping), users/, items/ (Parquet)
    ranking/        the ranking model: implicit-feedback ALS
    split/train     the exact training and held-out ratings, so evaluation and later
    split/test      comparisons use the very same ratings
    metadata.json   params, snapshot, split, code and Spark versions, row counts, fit times
    metrics.json    the evaluation's figures (evaluation/run.py), beside the models they describe
    report.json     the evaluation report's breakdowns (evaluation/breakdown.py), and the
                    published lists' skew once the recommend job has run
    report.html     the evaluation report itself: one self-contained page (operator_view/evaluation_report.py)
    recommendations/  see recommend/output.py

Models written before the ranking model existed have `als/` only: their ranking is by predicted
rating and their biases are zero (`ModelLayout.has_ranking_model`, `has_bias`).

This module names the paths; lake/filesystem.py reads and writes the JSON and text in them.
"""

from __future__ import annotations

from dataclasses import dataclass

from movielens_recs.lake.filesystem import S3Options, exists, join, spark_uri


def model_dir(store_uri: str, dataset: str, model_id: str) -> str:
    return spark_uri(join(store_uri, dataset, model_id))


@dataclass(frozen=True)
class ModelLayout:
    """Every path inside one model version's folder; nothing else spells them out."""

    uri: str

    @property
    def rating_als(self) -> str:
        return join(self.uri, "als")

    @property
    def bias(self) -> str:
        return join(self.uri, "bias")

    @property
    def bias_terms(self) -> str:
        return join(self.bias, "bias.json")

    @property
    def user_bias(self) -> str:
        return join(self.bias, "users")

    @property
    def item_bias(self) -> str:
        return join(self.bias, "items")

    @property
    def ranking_als(self) -> str:
        return join(self.uri, "ranking")

    @property
    def train(self) -> str:
        return join(self.uri, "split", "train")

    @property
    def test(self) -> str:
        return join(self.uri, "split", "test")

    @property
    def metadata(self) -> str:
        return join(self.uri, "metadata.json")

    @property
    def metrics(self) -> str:
        return join(self.uri, "metrics.json")

    @property
    def report_data(self) -> str:
        return join(self.uri, "report.json")

    @property
    def report(self) -> str:
        return join(self.uri, "report.html")

    @property
    def recommendations(self) -> str:
        return join(self.uri, "recommendations")

    def has_ranking_model(self, s3: S3Options | None = None) -> bool:
        return exists(join(self.ranking_als, "metadata"), s3)

    def has_bias(self, s3: S3Options | None = None) -> bool:
        return exists(self.bias_terms, s3)


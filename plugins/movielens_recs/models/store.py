"""The versioned model store: `<store>/<dataset>/<model_id>/` holds one model version.

    als/            the rating model's explicit ALS (Spark ML format), fitted to what the biases leave
    bias/           the rating model's biases: bias.json (global mean, damping), users/, items/ (Parquet)
    ranking/        the ranking model: implicit-feedback ALS
    split/train     the exact training and held-out ratings, so evaluation and later
    split/test      comparisons use the very same ratings
    metadata.json   params, snapshot, split, code and Spark versions, row counts, fit times
    metrics.json    the evaluate job's figures, beside the models they describe
    report.json     the evaluation report's breakdowns (evaluation/breakdown.py), and the
                    published lists' skew once the recommend job has run
    report.html     the evaluation report itself: one self-contained page (operator_view/evaluation_report.py)
    recommendations/  see recommend/output.py

Models written before the ranking model existed have `als/` only: their ranking is by predicted
rating and their biases are zero (`ModelLayout.has_ranking_model`, `has_bias`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from movielens_recs.lake.filesystem import S3Options, join, resolve, spark_uri


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


def exists(uri: str, s3: S3Options | None = None) -> bool:
    fs, path = resolve(uri, s3)
    return fs.get_file_info(path).type.name != "NotFound"


def write_json(uri: str, payload: dict, s3: S3Options | None = None) -> None:
    write_text(uri, json.dumps(payload, indent=2, sort_keys=True, default=str), s3)


def write_text(uri: str, text: str, s3: S3Options | None = None) -> None:
    fs, path = resolve(uri, s3)
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    with fs.open_output_stream(path) as fh:
        fh.write(text.encode())


def read_text(uri: str, s3: S3Options | None = None) -> str:
    fs, path = resolve(uri, s3)
    with fs.open_input_stream(path) as fh:
        return fh.read().decode()


def read_json(uri: str, s3: S3Options | None = None) -> dict:
    return json.loads(read_text(uri, s3))

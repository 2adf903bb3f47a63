"""The versioned model store: `<store>/<dataset>/<model_id>/` holds one trained model.

    als/            the ALSModel (Spark ML format)
    split/train     the exact training and held-out ratings, so evaluation and later
    split/test      comparisons use the very same test set
    metadata.json   params, snapshot, split, code and Spark versions, row counts, fit time
    metrics.json    the evaluate job's figures, beside the model they describe
"""

from __future__ import annotations

import json

from movielens_recs.lake.filesystem import S3Options, join, resolve, spark_uri


def model_dir(store_uri: str, dataset: str, model_id: str) -> str:
    return spark_uri(join(store_uri, dataset, model_id))


def write_json(uri: str, payload: dict) -> None:
    fs, path = resolve(uri)
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    with fs.open_output_stream(path) as fh:
        fh.write(json.dumps(payload, indent=2, sort_keys=True, default=str).encode())


def read_json(uri: str, s3: S3Options | None = None) -> dict:
    fs, path = resolve(uri, s3)
    with fs.open_input_stream(path) as fh:
        return json.loads(fh.read())

"""Analyst exports, the pure part: datasets and their columns, pseudonyms, the change window, and
the encoders (NDJSON, CSV, Parquet). Reading the database and streaming is
`services.exports.runner`'s."""

from services.exports.datasets import COLUMNS, DATASETS, Column, Dataset, Shapers, columns
from services.exports.encoders import FORMATS, MEDIA_TYPES, Format, encoder, parquet_available
from services.exports.pseudonyms import Pseudonyms
from services.exports.window import InvertedWindow, export_window

__all__ = [
    "COLUMNS",
    "DATASETS",
    "FORMATS",
    "MEDIA_TYPES",
    "Column",
    "Dataset",
    "Format",
    "InvertedWindow",
    "Pseudonyms",
    "Shapers",
    "columns",
    "encoder",
    "export_window",
    "parquet_available",
]

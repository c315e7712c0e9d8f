"""Ingest: format readers and writers, provenance, de-duplication and ontology mapping.

This package streams :class:`SourceRecord` chunks and never touches the database; the import and
export services (``veracity.services.ingest``) store what it reads.

>>> from veracity.ingest import read_source, write_export
>>> for chunk in read_source("items.jsonl"):            # doctest: +SKIP
...     ...
"""

from veracity.ingest._safety import IMAGE_SUFFIXES
from veracity.ingest.dedupe import (
    Duplicate,
    dhash,
    exact_duplicates,
    hash_images,
    minhash_signatures,
    near_duplicate_images,
    near_duplicate_texts,
    phash,
)
from veracity.ingest.ontology import MappingReport, Ontology, UnmappedLabel
from veracity.ingest.records import (
    BadRow,
    SourceRecord,
    canonical_json,
    content_hash,
    infer_kind,
    label_names,
    make_annotation,
)
from veracity.ingest.sources import (
    EXPORT_FORMATS,
    IMPORT_FORMATS,
    ExportSummary,
    normalise_format,
    read_source,
    sniff_format,
    write_export,
)

__all__ = [
    "EXPORT_FORMATS",
    "IMAGE_SUFFIXES",
    "IMPORT_FORMATS",
    "BadRow",
    "Duplicate",
    "ExportSummary",
    "MappingReport",
    "Ontology",
    "SourceRecord",
    "UnmappedLabel",
    "canonical_json",
    "content_hash",
    "dhash",
    "exact_duplicates",
    "hash_images",
    "infer_kind",
    "label_names",
    "make_annotation",
    "minhash_signatures",
    "near_duplicate_images",
    "near_duplicate_texts",
    "normalise_format",
    "phash",
    "read_source",
    "sniff_format",
    "write_export",
]

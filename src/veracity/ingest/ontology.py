"""Ontology mapping: source label names onto a project's labels, from a TOML file.

A mapping file names the project's labels and how source labels reach them::

    [options]
    case_sensitive = false          # default: names are compared case-folded

    [labels.cat]
    synonyms = ["kitty", "feline"]  # other names of the same class
    children = ["tabby", "siamese"] # source sub-classes folded into this label
    parent = "animal"               # hierarchy among project labels

    [labels.animal]

    [map]                           # plain one-to-one renames, if that is all you need
    "Canis familiaris" = "dog"

Labels that map to nothing are collected with where they were first seen. They stop the import
(:class:`~veracity.errors.InvalidInputError` listing all of them) unless ``allow_unmapped``, in
which case the annotations that carry them are parked in ``record.meta["parked_annotations"]``
for review. Nothing is dropped silently.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from veracity.errors import InvalidInputError
from veracity.ingest.records import LABELLED_KINDS, SourceRecord, label_names, map_value_labels

__all__ = ["MappingReport", "Ontology", "UnmappedLabel"]


@dataclass(slots=True)
class UnmappedLabel:
    """A source label with no project label: how often it was seen and where first."""

    name: str
    count: int
    first_source: str
    first_row: int


@dataclass(slots=True)
class MappingReport:
    """Totals of applying an ontology to records (accumulates over chunks)."""

    n_mapped: int = 0
    n_parked: int = 0
    unmapped: dict[str, UnmappedLabel] = field(default_factory=dict)

    def note_unmapped(self, name: str, rec: SourceRecord) -> None:
        entry = self.unmapped.get(name)
        if entry is None:
            self.unmapped[name] = UnmappedLabel(name, 1, rec.source, rec.row)
        else:
            entry.count += 1

    def unmapped_message(self) -> str:
        parts = [
            f"{u.name!r} ({u.count}x, first at {u.first_source} row {u.first_row})"
            for u in sorted(self.unmapped.values(), key=lambda u: (-u.count, u.name))
        ]
        return f"{len(parts)} unmapped label(s): " + "; ".join(parts)


class Ontology:
    """Project labels with synonyms, folded child classes and parents.

    Parameters
    ----------
    labels : mapping of str to mapping
        Project label -> ``{"synonyms": [...], "children": [...], "parent": str}`` (all optional).
    renames : mapping of str to str, optional
        Extra one-to-one source name -> project label entries.
    case_sensitive : bool
        Compare names exactly (default: case-folded, surrounding spaces ignored).
    source : str
        Where the ontology came from, for error messages.
    """

    def __init__(
        self,
        labels: Mapping[str, Mapping[str, Any]] | Sequence[str],
        *,
        renames: Mapping[str, str] | None = None,
        case_sensitive: bool = False,
        source: str = "ontology",
    ) -> None:
        self.source = source
        self.case_sensitive = case_sensitive
        if not isinstance(labels, Mapping) and not (
            isinstance(labels, Sequence) and not isinstance(labels, str) and all(isinstance(n, str) for n in labels)
        ):
            raise InvalidInputError(f"{source}: labels must be a table of labels or a list of names")
        specs: Mapping[str, Mapping[str, Any]] = (
            {name: {} for name in labels} if not isinstance(labels, Mapping) else labels
        )
        self.labels: tuple[str, ...] = tuple(specs)
        self.parents: dict[str, str] = {}
        self._lookup: dict[str, str] = {}
        for label in self.labels:
            self._add(label, label)
        for label, spec in specs.items():
            if not isinstance(spec, Mapping):
                raise InvalidInputError(
                    f"{source}: label {label!r} must be a table (labels.{label} with synonyms, children, parent), "
                    f"got {type(spec).__name__}"
                )
            unknown = set(spec) - {"synonyms", "children", "parent", "description"}
            if unknown:
                raise InvalidInputError(f"{source}: label {label!r} has unknown key(s) {', '.join(sorted(unknown))}")
            for key in ("synonyms", "children"):
                names = spec.get(key, [])
                if not isinstance(names, list) or not all(isinstance(s, str) for s in names):
                    raise InvalidInputError(f"{source}: labels.{label}.{key} must be a list of strings")
                for name in names:
                    self._add(name, label)
            parent = spec.get("parent")
            if parent is not None:
                if not isinstance(parent, str) or parent not in specs:
                    raise InvalidInputError(f"{source}: labels.{label}.parent {parent!r} is not a defined label")
                self.parents[label] = parent
        if not isinstance(renames or {}, Mapping):
            raise InvalidInputError(f"{source}: map must be a table of source name = project label")
        for name, target in (renames or {}).items():
            if not isinstance(target, str) or target not in specs:
                raise InvalidInputError(f"{source}: map entry {name!r} points to undefined label {target!r}")
            self._add(name, target)
        for label in self.labels:
            self.ancestors(label)  # refuses cycles

    def _key(self, name: str) -> str:
        return name.strip() if self.case_sensitive else name.strip().casefold()

    def _add(self, name: str, label: str) -> None:
        key = self._key(name)
        other = self._lookup.get(key)
        if other is not None and other != label:
            raise InvalidInputError(f"{self.source}: name {name!r} maps to both {other!r} and {label!r}")
        self._lookup[key] = label

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], *, source: str = "ontology") -> Ontology:
        """Build from the parsed TOML document (see the module docstring)."""
        unknown = set(doc) - {"labels", "map", "options"}
        if unknown:
            raise InvalidInputError(f"{source}: unknown table(s) {', '.join(sorted(unknown))}")
        labels = doc.get("labels", {})
        renames = doc.get("map", {})
        options = doc.get("options", {})
        if not labels:
            raise InvalidInputError(f"{source}: no labels defined (a labels table)")
        if not isinstance(options, Mapping):
            raise InvalidInputError(f"{source}: options must be a table")
        return cls(labels, renames=renames, case_sensitive=bool(options.get("case_sensitive", False)), source=source)

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str]) -> Ontology:
        """Read a mapping file; syntax errors name the file and line."""
        p = Path(path)
        try:
            raw = p.read_bytes()
        except FileNotFoundError:
            raise InvalidInputError(f"{p}: file not found") from None
        except IsADirectoryError:
            raise InvalidInputError(f"{p}: is a folder, expected a TOML mapping file") from None
        except OSError as exc:
            raise InvalidInputError(f"{p}: cannot read ({exc.strerror or exc})") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw.count(b"\n", 0, exc.start) + 1
            raise InvalidInputError(f"{p}: line {line}: not valid UTF-8") from None
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise InvalidInputError(f"{p}: malformed TOML ({exc})") from None
        return cls.from_dict(doc, source=str(p))

    def map_label(self, name: str) -> str | None:
        """The project label for a source label name, or None."""
        return self._lookup.get(self._key(name))

    def ancestors(self, label: str) -> list[str]:
        """Parents of ``label``, nearest first."""
        out: list[str] = []
        current = self.parents.get(label)
        while current is not None:
            if current in out or current == label:
                raise InvalidInputError(f"{self.source}: parent cycle through {label!r}")
            out.append(current)
            current = self.parents.get(current)
        return out

    def unmapped(self, records: Iterable[SourceRecord], report: MappingReport | None = None) -> MappingReport:
        """Collect unmapped label names without changing the records (a dry run)."""
        report = report if report is not None else MappingReport()
        for rec in records:
            for ann in rec.annotations:
                for name in label_names(ann):
                    if self.map_label(name) is None:
                        report.note_unmapped(name, rec)
        return report

    def apply(
        self,
        records: Iterable[SourceRecord],
        *,
        allow_unmapped: bool = False,
        report: MappingReport | None = None,
    ) -> MappingReport:
        """Rewrite the label names of the records' annotations in place.

        Without ``allow_unmapped``, unmapped names raise :class:`~veracity.errors.InvalidInputError`
        listing every one of them in this input, before any record is changed. With it, each
        annotation that carries an unmapped name is moved whole to ``meta["parked_annotations"]``
        (with a ``reason``).
        """
        records = list(records)
        report = report if report is not None else MappingReport()
        if not allow_unmapped:
            dry = self.unmapped(records)
            if dry.unmapped:
                raise InvalidInputError(dry.unmapped_message(), details=[u.name for u in dry.unmapped.values()])
        for rec in records:
            kept = []
            for ann in rec.annotations:
                if ann.get("kind") not in LABELLED_KINDS:
                    kept.append(ann)
                    continue
                names = label_names(ann)
                mapping = {n: self.map_label(n) for n in names}
                missing = sorted({n for n, target in mapping.items() if target is None})
                if missing:
                    for name in missing:
                        report.note_unmapped(name, rec)
                    parked = {**ann, "reason": f"unmapped label(s): {', '.join(missing)}"}
                    rec.meta.setdefault("parked_annotations", []).append(parked)
                    report.n_parked += 1
                    continue
                kept.append({**ann, "value": map_value_labels(ann, {k: v for k, v in mapping.items() if v})})
                report.n_mapped += 1
            rec.annotations = kept
        return report

"""File imports read in a worker process (large sources) store exactly what the in-thread reader stores."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from veracity.errors import InvalidInputError, StorageError
from veracity.services import _pipeline
from veracity.services import ingest as ingest_service
from veracity.storage import Database
from veracity.storage.models import ImportBatch, Item, ItemLabel


@pytest.fixture(params=["thread", "process"])
def reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[subprocess.Popen[Any]]]:
    """Run the test with the in-thread reader and with the worker process (threshold 0); the workers started."""
    started: list[subprocess.Popen[Any]] = []
    if request.param == "process":
        monkeypatch.setattr(_pipeline, "PROCESS_MIN_ROWS", 0)
        real = subprocess.Popen

        def popen(*args: Any, **kwargs: Any) -> subprocess.Popen[Any]:
            proc = real(*args, **kwargs)
            started.append(proc)
            return proc

        monkeypatch.setattr(_pipeline.subprocess, "Popen", popen)
    else:
        monkeypatch.setattr(_pipeline, "PROCESS_MIN_ROWS", 10**12)
    yield started
    assert all(p.returncode is not None for p in started)  # every worker was waited for
    if request.param == "process":
        assert started, "the import did not use the worker process"


def _jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _items(db: Database) -> list[tuple[Any, ...]]:
    with db.transaction(write=False) as s:
        return [
            tuple(r)
            for r in s.execute(
                select(
                    Item.id, Item.dataset_id, Item.external_id, Item.data, Item.content_hash, Item.hash_key,
                    Item.source, Item.source_row, Item.batch_id, Item.sensitivity,
                ).order_by(Item.id)
            )
        ]


def _labels(db: Database) -> list[tuple[Any, ...]]:
    with db.transaction(write=False) as s:
        return [
            tuple(r)
            for r in s.execute(
                select(
                    ItemLabel.item_id, ItemLabel.batch_id, ItemLabel.kind, ItemLabel.value, ItemLabel.annotator,
                    ItemLabel.origin, ItemLabel.status,
                ).order_by(ItemLabel.id)
            )
        ]


def test_items_labels_and_duplicates(db: Database, tmp_path: Path, reader: list[Any]) -> None:
    rows: list[Any] = [
        {"id": f"t{i}", "text": f"text {i % 5}", "label": ["pos", "neg"][i % 2], "sensitivity": i % 3}
        for i in range(12)
    ]
    rows[2]["label"] = [1, 2]  # a non-string label: JSON text, kind inferred
    rows[3] = {  # Veracity's export layout
        "id": "t3",
        "data": {"text": "text 3"},
        "annotations": [{"value": "pos", "annotator": "ann", "kind": "classification"}],
    }
    src = _jsonl(tmp_path / "items.jsonl", rows)
    first = ingest_service.import_source(db, src, dataset="texts", chunk_size=4)
    # rows 6-12 repeat rows 1-5 (text i % 5): row 6 repeats row 1 (an earlier chunk), row 8 row 3, ...
    assert (first.imported, first.duplicates, first.rejected) == (5, 7, 0)
    items = _items(db)
    ids = [i[0] for i in items]
    assert [i[2] for i in items] == ["t0", "t1", "t2", "t3", "t4"]
    assert items[3][3] == {"text": "text 3"} and items[1][3] == {"text": "text 1"}
    assert all(i[1] == first.dataset_id and i[8] == first.batch_id for i in items)
    assert [(i[6], i[7], i[9]) for i in items] == [(str(src), 1, 0), (str(src), 2, 1), (str(src), 3, 2),
                                                   (str(src), 4, 0), (str(src), 5, 1)]
    assert first.duplicate_of[0] == {"source": str(src), "row": 6, "duplicate_of": {"item_id": ids[0]}}
    assert first.duplicate_of[2] == {"source": str(src), "row": 8, "duplicate_of": {"item_id": ids[2]}}
    assert (first.labels_imported, first.labels_parked) == (5, 0)
    assert _labels(db) == [
        (ids[0], first.batch_id, "classification", "pos", None, "jsonl:row 1 field label", "active"),
        (ids[1], first.batch_id, "classification", "neg", None, "jsonl:row 2 field label", "active"),
        (ids[2], first.batch_id, "text", [1, 2], None, "jsonl:row 3 field label", "active"),
        (ids[3], first.batch_id, "classification", "pos", "ann", "jsonl:row 4", "active"),
        (ids[4], first.batch_id, "classification", "pos", None, "jsonl:row 5 field label", "active"),
    ]
    again = ingest_service.import_source(db, src, dataset="texts", chunk_size=5)  # all known: nothing stored
    assert (again.imported, again.duplicates, again.labels_imported) == (0, 12, 0)
    assert again.duplicate_of[1] == {"source": str(src), "row": 2, "duplicate_of": {"item_id": ids[1]}}
    same = _jsonl(tmp_path / "same.jsonl", [{"text": "a"}, {"text": "b"}, {"text": "a"}])
    third = ingest_service.import_source(db, same, dataset="other")
    assert third.duplicate_of == [{"source": str(same), "row": 3, "duplicate_of": {"source": str(same), "row": 1}}]
    assert len(_items(db)) == 7


def test_a_bad_row_stops_at_its_chunk(db: Database, tmp_path: Path, reader: list[Any]) -> None:
    lines = [json.dumps({"text": f"row {i}"}) for i in range(7)]
    lines[4] = '{"text": broken'
    src = tmp_path / "bad.jsonl"
    src.write_text("\n".join(lines) + "\n")
    with pytest.raises(InvalidInputError) as err:
        ingest_service.import_source(db, src, dataset="d", chunk_size=2)
    assert str(err.value).startswith(f"{src}: row 5: malformed JSON (Expecting value at column 10)")
    assert "4 item(s) in earlier chunks were imported" in str(err.value)
    reason = "malformed JSON (Expecting value at column 10)"
    assert err.value.details == {"source": str(src), "row": 5, "reason": reason}
    assert [i[7] for i in _items(db)] == [1, 2, 3, 4]
    with db.transaction(write=False) as s:
        (batch,) = s.execute(select(ImportBatch)).scalars()
    assert batch.report["status"].startswith("stopped") and batch.n_items == 4
    bad_field = _jsonl(tmp_path / "f.jsonl", [{"text": "x"}, {"text": "y", "sensitivity": "high"}])
    with pytest.raises(InvalidInputError, match=r"f.jsonl: row 2: field 'sensitivity' must be an integer marking"):
        ingest_service.import_source(db, bad_field, dataset="d")


def test_skip_bad_writes_rejected_rows_to_a_side_file(db: Database, tmp_path: Path, reader: list[Any]) -> None:
    src = tmp_path / "bad.jsonl"
    src.write_text('{"text": "a"}\nnot json\n{"text": "b"}\n[1]\n{"text": "c"}\n{"text": "d", "id": [1]}\n')
    seen: list[tuple[int, int | None]] = []
    report = ingest_service.import_source(
        db, src, dataset="d", skip_bad=True, chunk_size=2, progress=lambda d, t: seen.append((d, t))
    )
    assert (report.imported, report.rejected) == (3, 3)
    assert seen[-1] == (6, 6)
    side = Path(report.rejected_path or "")
    assert side == tmp_path / "bad.jsonl.rejected.jsonl"
    rejected = [json.loads(line) for line in side.read_text().splitlines()]
    assert [(r["row"], r["raw"]) for r in rejected] == [(2, "not json"), (4, None), (6, None)]
    assert [e["row"] for e in report.errors] == [2, 4, 6]
    assert "expected an object" in rejected[1]["reason"] and "field 'id'" in rejected[2]["reason"]
    assert [i[3]["text"] for i in _items(db)] == ["a", "b", "c"]


def test_the_worker_stops_when_the_import_fails(
    db: Database, tmp_path: Path, reader: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _jsonl(tmp_path / "many.jsonl", [{"text": f"t{i}"} for i in range(50)])
    calls = []
    store = ingest_service._store_rows

    def failing(*args: Any) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise StorageError("disk full")
        store(*args)

    monkeypatch.setattr(ingest_service, "_store_rows", failing)
    with pytest.raises(StorageError, match="disk full"):
        ingest_service.import_source(db, src, dataset="d", chunk_size=5)
    assert len(_items(db)) == 5
    # the reader fixture checks that the worker process (if any) was waited for


def test_a_bulk_transaction_checks_its_batch_and_later_ones_enforce_foreign_keys(db: Database, tmp_path: Path) -> None:
    src = _jsonl(tmp_path / "a.jsonl", [{"text": "a"}])
    report = ingest_service.import_source(db, src, dataset="d")
    items = [(None, '{"text":"z"}', "0" * 64, 0, str(src), 1, 0)]
    gone = ingest_service.ImportReport(dataset="d", dataset_id=report.dataset_id, batch_id=999, source="", format="")
    if db.is_sqlite:
        with pytest.raises(StorageError, match="was deleted during the import"), db.transaction(bulk=True) as s:
            ingest_service._store_rows(s, items, [], gone, None)
    with pytest.raises((IntegrityError, StorageError)), db.transaction() as s:  # the pooled connection checks again
        s.execute(
            text(
                "INSERT INTO items (dataset_id, external_id, data, content_hash, source, sensitivity, created_at) "
                "VALUES (987654, NULL, '{}', 'x', 's', 0, CURRENT_TIMESTAMP)"
            )
        )
    with db.transaction(write=False) as s:
        assert s.execute(select(func.count()).select_from(Item)).scalar_one() == 1


def test_a_chunk_that_fails_after_it_was_counted_is_not_reported(
    db: Database, tmp_path: Path, reader: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _jsonl(tmp_path / "many.jsonl", [{"text": f"t{i}", "label": "a"} for i in range(20)])
    calls = []
    store = ingest_service._store_rows

    def failing(*args: Any) -> None:
        store(*args)  # counted in the report, then the chunk's transaction fails
        calls.append(1)
        if len(calls) == 2:
            raise StorageError("disk full")

    monkeypatch.setattr(ingest_service, "_store_rows", failing)
    with pytest.raises(StorageError, match="disk full"):
        ingest_service.import_source(db, src, dataset="d", chunk_size=5)
    with db.transaction(write=False) as s:
        (batch,) = s.execute(select(ImportBatch)).scalars()
    assert len(_items(db)) == 5 == batch.n_items == batch.report["imported"]
    assert batch.report["labels_imported"] == 5 == len(_labels(db))
    assert batch.report["status"] == "stopped: disk full"


def test_sources_bad_from_the_start_create_nothing(db: Database, tmp_path: Path, reader: list[Any]) -> None:
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(b'{"text":"one"}\n{"text":"two","label":"caf\xe9"}\n' + b'{"text":"more"}\n' * 5)
    blank = tmp_path / "blank.jsonl"
    blank.write_text("\n\n  \n")
    with pytest.raises(InvalidInputError, match=r"latin\.jsonl: row 2: not valid UTF-8; nothing was imported"):
        ingest_service.import_source(db, latin, dataset="d")
    with pytest.raises(InvalidInputError, match=r"blank\.jsonl: no records"):
        ingest_service.import_source(db, blank, dataset="d")
    with db.transaction(write=False) as s:
        assert s.execute(select(func.count()).select_from(ImportBatch)).scalar_one() == 0
    assert _items(db) == []


def test_a_bad_byte_deep_in_a_csv_loses_no_rows(db: Database, tmp_path: Path, reader: list[Any]) -> None:
    src = tmp_path / "late.csv"
    rows = [f"row{i},cat" for i in range(2000)] + ["caf\xe9,dog"] + [f"more{i},cat" for i in range(10)]
    src.write_bytes(("text,label\n" + "".join(r + "\n" for r in rows)).encode("latin-1"))
    report = ingest_service.import_source(db, src, dataset="d", skip_bad=True, chunk_size=700)
    assert (report.imported, report.rejected) == (2010, 1)
    assert [e["row"] for e in report.errors] == [2001]
    assert [i[7] for i in _items(db)] == [*range(1, 2001), *range(2002, 2012)]

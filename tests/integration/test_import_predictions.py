"""Importing model predictions: the service checks every record, ``veracity predictions import`` reads files.

Bad input stores nothing, and the CLI exits 2 with one line naming the file and the line (or the
Parquet row) at fault, never a traceback. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import math
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select

from _accounts import new_user
from veracity.errors import InvalidInputError
from veracity.services import Actor
from veracity.services import items as item_service
from veracity.services import projects as project_service
from veracity.storage import Database
from veracity.storage.models import Item, Prediction

SCHEMA = {"kind": "classification", "labels": ["positive", "negative", "neutral"]}
HEADER = "external_id,p:positive,p:negative,p:neutral\n"


def _project(db: Database, ids: list[str]) -> tuple[Actor, int]:
    admin = new_user(db, "admin", "admin")
    project = project_service.create_project(db, admin, name="P", schema=SCHEMA)
    project_service.import_items(db, admin, project.id, [{"id": i, "text": f"text {i}"} for i in ids])
    return admin, project.id


def _stored(db: Database) -> dict[str, list[float] | None]:
    with db.transaction(write=False) as s:
        rows = s.execute(select(Item.external_id, Prediction.probabilities).join(Item, Item.id == Prediction.item_id))
        return {ext: probs for ext, probs in rows}


def _count(db: Database) -> int:
    with db.transaction(write=False) as s:
        return int(s.execute(select(func.count()).select_from(Prediction)).scalar_one())


@pytest.mark.parametrize(
    ("probabilities", "field"),
    [
        ([math.nan, 0.5, 0.5], r"probabilities\[0\]"),
        ([0.5, math.inf, 0.5], r"probabilities\[1\]"),
        ({"positive": math.nan, "negative": 1.0}, r"probabilities\['positive'\]"),
        ({"positive": 0.5, "neutral": -math.inf}, r"probabilities\['neutral'\]"),
    ],
)
def test_non_finite_probabilities_are_rejected(db: Database, probabilities: object, field: str) -> None:
    admin, pid = _project(db, ["r0", "r1"])
    records = [
        {"external_id": "r0", "probabilities": [0.7, 0.2, 0.1]},
        {"external_id": "r1", "probabilities": probabilities},
    ]
    with pytest.raises(InvalidInputError, match=rf"index 1\.{field}: expected a finite number"):
        item_service.import_predictions(db, admin, pid, records, model="m")
    assert _count(db) == 0


def test_record_names_name_the_record_and_field(db: Database) -> None:
    admin, pid = _project(db, ["r0"])
    records = [{"external_id": "r0", "value": "positive"}, {"external_id": "zzz", "value": "positive"}]
    with pytest.raises(InvalidInputError, match=r"^p\.jsonl: line 3, external_id: no item 'zzz' in project"):
        item_service.import_predictions(
            db, admin, pid, records, model="m", record_names=["p.jsonl: line 1", "p.jsonl: line 3"]
        )
    with pytest.raises(InvalidInputError, match=r"index 0\.item_id: expected an integer item id, got '1'"):
        item_service.import_predictions(db, admin, pid, [{"item_id": "1", "value": "positive"}], model="m")
    assert _count(db) == 0


def _cli(cli_runner, db_url: str, path: Path) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    result = cli_runner.run("predictions", "import", str(path), "--project", "P", "--model", "m", "--db", db_url)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"{path.name}: uncaught {result.exception!r}")
    return result.exit_code, " ".join(result.output.split())


def test_cli_external_ids_are_text(db: Database, db_url: str, tmp_path: Path, cli_runner) -> None:  # type: ignore[no-untyped-def]
    _project(db, ["007", "7", "café"])
    csv_file = tmp_path / "p.csv"
    csv_file.write_text(HEADER + "007,0.7,0.2,0.1\n", encoding="utf-8")  # not the number 7
    code, out = _cli(cli_runner, db_url, csv_file)
    assert code == 0, out
    assert _stored(db) == {"007": [0.7, 0.2, 0.1]}
    csv_file.write_text("\ufeff" + HEADER + "café,0.1,0.8,0.1\n", encoding="utf-8")  # with a BOM
    code, out = _cli(cli_runner, db_url, csv_file)
    assert code == 0, out
    assert _stored(db)["café"] == [0.1, 0.8, 0.1]
    parquet = tmp_path / "p.parquet"
    pq.write_table(
        pa.table({"external_id": [7], "p:positive": [0.2], "p:negative": [0.3], "p:neutral": [0.5]}), parquet
    )
    code, out = _cli(cli_runner, db_url, parquet)
    assert code == 0, out
    assert _stored(db)["7"] == [0.2, 0.3, 0.5]


def _bad_files(tmp_path: Path) -> list[tuple[Path, str]]:
    def write(name: str, data: bytes) -> Path:
        path = tmp_path / name
        path.write_bytes(data)
        return path

    good = b'{"external_id": "r0", "probabilities": [0.7, 0.2, 0.1]}\n'
    folder = tmp_path / "folder.jsonl"
    folder.mkdir()
    return [
        (
            write("nan.jsonl", good + b'{"external_id": "r1", "probabilities": [NaN, 0.5, 0.5]}\n'),
            "nan.jsonl: line 2, probabilities[0]: expected a finite number, got nan",
        ),
        (
            write(
                "nanmap.jsonl", good + b'\n{"external_id": "r1", "probabilities": {"positive": NaN, "negative": 1}}\n'
            ),
            "nanmap.jsonl: line 3, probabilities['positive']: expected a finite number",
        ),
        (
            write("latin.jsonl", good + '{"external_id": "café", "value": "positive"}\n'.encode("latin-1")),
            "latin.jsonl: line 2: not valid UTF-8 (byte 0xe9 at column 21)",
        ),
        (
            write("unknown.jsonl", good + b'{"external_id": "zzz", "value": "positive"}\n'),
            "unknown.jsonl: line 2, external_id: no item 'zzz' in project",
        ),
        (
            write(
                "list.json",
                b'[\n  {"external_id": "r0", "value": "positive"},\n  {"external_id": "zzz",\n'
                b'   "value": "positive"}\n]\n',
            ),
            "list.json: line 3, external_id: no item 'zzz'",
        ),
        (
            write("ragged.csv", (HEADER + "r0,0.7,0.2,0.1\nr1,0.1,0.8\n").encode()),
            "ragged.csv: line 3: expected 4 fields as in the header, got 3",
        ),
        (write("empty.csv", b""), "empty.csv: the file is empty"),
        (write("header.csv", HEADER.encode()), "header.csv: no rows"),
        (
            write("latin.csv", (HEADER + "r0,0.7,0.2,0.1\n").encode() + "café,0.1,0.8,0.1\n".encode("latin-1")),
            "latin.csv: line 3: not valid UTF-8 (byte 0xe9 at column 4)",
        ),
        (
            write("semi.csv", b"external_id;p:positive;p:negative;p:neutral\nr0;0.7;0.2;0.1\n"),
            "semi.csv: no external_id, id or item_id column (columns found: 'external_id;p:positive;p:negative;"
            "p:neutral'); the file seems not to be comma-separated",
        ),
        (
            write("dup.csv", b"external_id,p:positive,p:positive,p:neutral\nr0,0.7,0.2,0.1\n"),
            "dup.csv: column 'p:positive' appears more than once",
        ),
        (
            write("blank.csv", (HEADER + "r0,0.7,0.2,0.1\n\nzzz,0.1,0.8,0.1\n").encode()),
            "blank.csv: line 4, external_id: no item 'zzz'",
        ),
        (write("na.csv", (HEADER + "r0,NA,0.8,0.2\n").encode()), "na.csv: line 2, probabilities['positive']: missing"),
        (write("corrupt.parquet", b"PAR1 not really parquet"), "corrupt.parquet: cannot read as Parquet"),
        (folder, "folder.jsonl: is a directory"),
    ]


def test_cli_bad_files_exit_2_naming_file_and_line(  # type: ignore[no-untyped-def]
    db: Database, db_url: str, tmp_path: Path, cli_runner
) -> None:
    _project(db, ["r0", "r1"])
    for path, expected in _bad_files(tmp_path):
        code, out = _cli(cli_runner, db_url, path)
        assert code == 2 and expected in out, (path.name, code, out)
        assert "Traceback" not in out
    assert _count(db) == 0


def test_an_external_id_shared_by_two_items_is_refused(db: Database) -> None:
    """Two items of a project with one external id: a prediction naming it would silently reach
    one of them; it is refused, naming both, and the item ids still work."""
    admin, pid = _project(db, ["a"])
    project_service.import_items(db, admin, pid, [{"id": "a", "text": "another text"}])
    with db.transaction(write=False) as s:
        ids = sorted(s.execute(select(Item.id).where(Item.external_id == "a")).scalars())
    assert len(ids) == 2
    with pytest.raises(
        InvalidInputError, match=rf"index 0\.external_id: 2 items of project {pid} have the external id 'a' \(item ids "
        rf"{ids[0]}, {ids[1]}\); name the item by item_id",
    ):
        item_service.import_predictions(db, admin, pid, [{"external_id": "a", "value": "positive"}], model="m")
    assert _count(db) == 0
    item_service.import_predictions(db, admin, pid, [{"item_id": ids[1], "value": "positive"}], model="m")
    assert _count(db) == 1


def _values(db: Database) -> dict[str, object]:
    with db.transaction(write=False) as s:
        rows = s.execute(select(Item.external_id, Prediction.value).join(Item, Item.id == Prediction.item_id))
        return {ext: value for ext, value in rows}


def test_cli_csv_values_are_labels_or_ratings(db: Database, db_url: str, tmp_path: Path, cli_runner) -> None:  # type: ignore[no-untyped-def]
    """A CSV ``value`` column of digits holds labels "1", "2" (it was read as the numbers 1, 2, which
    no label matches); for a rating project the texts become numbers, and a non-number is refused."""
    admin = new_user(db, "admin", "admin")
    schema = {"kind": "classification", "labels": ["1", "2"]}
    digits = project_service.create_project(db, admin, name="P", schema=schema)
    project_service.import_items(db, admin, digits.id, [{"id": "a", "text": "x"}, {"id": "b", "text": "y"}])
    path = tmp_path / "p.csv"
    path.write_text("external_id,value\na,2\nb,1\n", encoding="utf-8")
    code, out = _cli(cli_runner, db_url, path)
    assert code == 0, out
    assert _values(db) == {"a": "2", "b": "1"}
    rating = project_service.create_project(db, admin, name="R", schema={"kind": "rating", "min": 1, "max": 5})
    project_service.import_items(db, admin, rating.id, [{"id": "c", "text": "z"}])
    run = ("predictions", "import", str(path), "--project", "R", "--model", "m", "--db", db_url)
    path.write_text("external_id,value\nc,4\n", encoding="utf-8")
    result = cli_runner.run(*run)
    assert result.exit_code == 0, result.output
    assert _values(db)["c"] == 4
    path.write_text("external_id,value\nc,4\nc,four\n", encoding="utf-8")
    result = cli_runner.run(*run)
    assert result.exit_code == 2
    assert "p.csv: line 3, value: expected a number for a rating, got 'four'" in " ".join(result.output.split())

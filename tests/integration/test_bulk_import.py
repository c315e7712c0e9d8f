"""The bulk REST import path: chunked storage in one transaction, ids, duplicates across chunks.

``services.projects.import_items`` writes a request chunk by chunk (``IMPORT_CHUNK`` records at a
time) in one transaction; these tests put the interesting cases on the chunk boundaries.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from _accounts import new_user
from veracity.errors import InvalidInputError, PermissionDeniedError
from veracity.ingest.records import content_hash, hash_key
from veracity.services import Actor
from veracity.services import projects as project_service
from veracity.storage import Database
from veracity.storage.models import Annotation, Item, Task

SCHEMA = {"kind": "classification", "labels": ["a", "b"], "input": "text"}


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(project_service, "IMPORT_CHUNK", 4)
    return 4


def _setup(db: Database) -> tuple[Actor, int]:
    admin = new_user(db, "boss", "admin")
    return admin, project_service.create_project(db, admin, name="P", schema=SCHEMA).id


def test_chunked_import_stores_every_item_task_and_label_with_matching_ids(db: Database, small_chunks: int) -> None:
    admin, pid = _setup(db)
    records = [{"id": f"r{i}", "text": f"t{i}", **({"label": "a"} if i % 3 == 0 else {})} for i in range(11)]
    records[5]["gold"] = "b"
    res = project_service.import_items(db, admin, pid, records)
    assert res.imported == 11 and res.duplicates == 0
    with db.transaction(write=False) as s:
        items = {i.id: i for i in s.execute(select(Item)).scalars()}
        tasks = {t.item_id: t for t in s.execute(select(Task)).scalars()}
        labelled = s.execute(select(Task.item_id, Annotation.value).join(Task, Task.id == Annotation.task_id)).all()
    assert [items[i].external_id for i in res.item_ids] == [f"r{i}" for i in range(11)]
    for i, iid in enumerate(res.item_ids):
        item = items[iid]
        assert item.data == {"text": f"t{i}"} and item.source_row == i
        assert item.content_hash == content_hash({"text": f"t{i}"})
        assert item.hash_key == hash_key(item.content_hash)
        assert tasks[iid].status == "open" and tasks[iid].is_gold == (i == 5)
    assert tasks[res.item_ids[5]].gold_value == "b"
    assert sorted(labelled) == sorted((res.item_ids[i], "a") for i in range(0, 11, 3))


def test_duplicates_across_chunks_name_their_first_copy(db: Database, small_chunks: int) -> None:
    admin, pid = _setup(db)
    first = project_service.import_items(db, admin, pid, [{"text": "old"}])
    records = [{"text": f"t{i % 6}"} for i in range(12)] + [{"text": "old"}]
    res = project_service.import_items(db, admin, pid, records)
    assert res.imported == 6 and res.duplicates == 7
    by_pos = {d["index"]: d for d in res.duplicate_of}
    for i in range(6, 12):  # copies in later chunks point at the position of the first copy
        assert by_pos[i] == {"index": i, "item_id": None, "duplicate_of_index": i - 6}
    assert by_pos[12] == {"index": 12, "item_id": first.item_ids[0], "duplicate_of_index": None}
    # a duplicate inside one chunk
    res2 = project_service.import_items(db, admin, pid, [{"text": "n"}, {"text": "n"}])
    assert res2.duplicate_of == [{"index": 1, "item_id": None, "duplicate_of_index": 0}]


def test_a_bad_record_in_a_later_chunk_stores_nothing_and_all_bad_records_are_named(
    db: Database, small_chunks: int
) -> None:
    admin, pid = _setup(db)
    records: list[object] = [{"text": f"t{i}"} for i in range(10)]
    records[6] = {"text": "x", "label": "zzz"}
    records[9] = "not an object"
    with pytest.raises(InvalidInputError) as err:
        project_service.import_items(db, admin, pid, records)
    assert [e["index"] for e in err.value.details] == [6, 9]
    assert "2 bad record(s), nothing imported" in err.value.message
    with db.transaction(write=False) as s:
        assert s.execute(select(func.count()).select_from(Item)).scalar_one() == 0
        assert s.execute(select(func.count()).select_from(Task)).scalar_one() == 0


def test_a_parse_error_after_stored_chunks_rolls_them_back(db: Database, small_chunks: int) -> None:
    admin, pid = _setup(db)

    def pairs() -> Iterator[tuple[int, object]]:
        for i in range(9):
            yield i, {"text": f"t{i}"}
        raise InvalidInputError("body: malformed JSON at line 1 column 99: Expecting value")

    with pytest.raises(InvalidInputError, match="column 99"):
        project_service.import_numbered_items(db, admin, pid, pairs())
    with db.transaction(write=False) as s:
        assert s.execute(select(func.count()).select_from(Item)).scalar_one() == 0


def test_ndjson_lines_are_numbered_and_blank_lines_skipped() -> None:
    body = '{"text": "a"}\n\n  \n{"text": "b"}\r\n{"text": "c"}'
    assert list(project_service.iter_ndjson(body)) == [(1, {"text": "a"}), (4, {"text": "b"}), (5, {"text": "c"})]
    with pytest.raises(InvalidInputError, match="line 2: malformed JSON"):
        list(project_service.iter_ndjson('{"text": "a"}\n{"text": \n'))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(st.lists(json_values, max_size=6), st.sampled_from(["", " ", "\n", " \r\n\t"]))
def test_iter_json_array_reads_what_json_loads_reads(values: list[object], ws: str) -> None:
    text = ws + "[" + ws + ("," + ws).join(json.dumps(v) for v in values) + ws + "]" + ws
    assert [v for _, v in project_service.iter_json_array(text)] == json.loads(text)


@pytest.mark.parametrize("text", ["[1, 2", "[1 2]", "[1,]", "[1] x", "[,1]", "[", '[1, "a]'])
def test_iter_json_array_refuses_what_json_loads_refuses(text: str) -> None:
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    with pytest.raises(json.JSONDecodeError):
        list(project_service.iter_json_array(text))


def test_iter_json_array_takes_only_an_array() -> None:
    with pytest.raises(json.JSONDecodeError, match=r"Expecting '\['"):
        list(project_service.iter_json_array('{"text": "a"}'))


def test_export_lines_are_the_export_records_as_json(db: Database) -> None:
    from veracity.services import tasks as task_service

    admin, pid = _setup(db)
    ann = new_user(db, "ann", "annotator")
    project_service.add_member(db, admin, pid, "ann", "annotator")
    records: list[dict[str, object]] = [
        {"id": f"r{i}", "text": f"t{i} é \u2028 \"q\"", "n": i / 3, "nested": {"b": [1, None], "a": True}}
        for i in range(7)
    ]
    records[1]["label"] = "a"
    records[2]["gold"] = "b"
    records[3].pop("id")
    records[4]["sensitivity"] = 5
    project_service.import_items(db, admin, pid, records)
    for _ in range(2):
        task = task_service.next_task(db, ann, pid)
        assert task is not None
        task_service.submit_annotation(db, ann, task["task_id"], "b")
    expected = list(project_service.iter_export_records(db, admin, pid))
    lines = list(project_service.iter_export_lines(db, admin, pid, batch=3))
    assert len(expected) == 6 and "r4" not in {r["external_id"] for r in expected}  # marked above clearance
    assert [json.loads(line) for line in lines] == expected
    assert any(r["label"] == "b" and r["confidence"] is not None for r in expected)
    assert any(r["gold"] for r in expected) and any(r["annotations"] for r in expected)
    with pytest.raises(PermissionDeniedError):
        next(project_service.iter_export_lines(db, ann, pid))

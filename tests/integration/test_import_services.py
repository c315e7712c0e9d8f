"""Importing sources into datasets: provenance, duplicates, bad rows, ontology, versions, export, lineage."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from _accounts import new_user
from veracity.errors import InvalidInputError, PermissionDeniedError
from veracity.ingest import Ontology, read_source
from veracity.services import ingest as ingest_service
from veracity.services import projects as project_service
from veracity.services.audit import verify_chain
from veracity.storage import Database
from veracity.storage.models import Annotation, Consensus, ImportBatch, Item, Task


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _count(db: Database, model: type, **where: object) -> int:
    with db.transaction(write=False) as s:
        q = select(func.count()).select_from(model)
        for k, v in where.items():
            q = q.where(getattr(model, k) == v)
        return int(s.execute(q).scalar_one())


def test_import_stores_provenance_and_reports_duplicates(db: Database, tmp_path: Path) -> None:
    src = _jsonl(tmp_path / "items.jsonl", [{"id": f"t{i}", "text": f"text {i % 4}"} for i in range(6)])
    src2 = _jsonl(tmp_path / "same.jsonl", [{"text": "a"}, {"text": "b"}, {"text": "a"}])
    seen: list[tuple[int, int | None]] = []
    report = ingest_service.import_source(
        db, src, dataset="texts", chunk_size=4, progress=lambda d, t: seen.append((d, t))
    )
    assert (report.imported, report.duplicates, report.rejected) == (4, 2, 0)
    # row 5 repeats row 1, stored by the first chunk; row 6 repeats row 2 of the same chunk
    assert seen[-1] == (6, 6)
    with db.transaction(write=False) as s:
        items = list(s.execute(select(Item).order_by(Item.id)).scalars())
        batch = s.get(ImportBatch, report.batch_id)
    assert [i.external_id for i in items] == ["t0", "t1", "t2", "t3"]
    assert report.duplicate_of[0] == {"source": str(src), "row": 5, "duplicate_of": {"item_id": items[0].id}}
    assert items[2].data == {"text": "text 2"}
    assert items[2].source == str(src) and items[2].source_row == 3
    assert all(i.batch_id == report.batch_id for i in items)
    assert batch is not None and batch.format == "jsonl" and batch.importer_version.startswith("veracity-ingest")
    assert (batch.n_items, batch.n_duplicates, batch.report["status"]) == (4, 2, "complete")
    again = ingest_service.import_source(db, src, dataset="texts")
    assert (again.imported, again.duplicates) == (0, 6)
    assert again.duplicate_of[0]["duplicate_of"] == {"item_id": items[0].id}
    same = ingest_service.import_source(db, src2, dataset="other")
    assert same.duplicate_of == [{"source": str(src2), "row": 3, "duplicate_of": {"source": str(src2), "row": 1}}]
    assert verify_chain(db).ok


def test_bad_row_stops_at_its_chunk(db: Database, tmp_path: Path) -> None:
    rows = [json.dumps({"text": f"row {i}"}) for i in range(5)]
    rows[3] = '{"text": broken'
    src = tmp_path / "bad.jsonl"
    src.write_text("\n".join(rows) + "\n")
    with pytest.raises(InvalidInputError) as err:
        ingest_service.import_source(db, src, dataset="d", chunk_size=2)
    assert f"{src}: row 4: malformed JSON" in str(err.value)
    assert "2 item(s) in earlier chunks were imported" in str(err.value)
    assert _count(db, Item) == 2  # chunk 1 (rows 1-2) stays; chunk 2 (rows 3-4) is not half-written
    with db.transaction(write=False) as s:
        (batch,) = s.execute(select(ImportBatch)).scalars()
    assert batch.report["status"].startswith("stopped")


def test_a_batch_that_never_finishes_says_what_it_stored(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A killed import never writes its final report; the counts of its committed chunks are there
    already (they were 0 until the end), and a second run skips those items as duplicates."""
    monkeypatch.setattr(ingest_service, "_finish_batch", lambda *_args, **_kw: None)  # killed before it
    rows = [json.dumps({"text": f"row {i}"}) for i in range(7)]
    rows[5] = '{"text": broken'
    src = tmp_path / "bad.jsonl"
    src.write_text("\n".join(rows) + "\n")
    with pytest.raises(InvalidInputError):
        ingest_service.import_source(db, src, dataset="d", chunk_size=2)
    with db.transaction(write=False) as s:
        (batch,) = s.execute(select(ImportBatch)).scalars()
    assert (batch.n_items, batch.n_duplicates, batch.report["status"]) == (4, 0, "running")
    monkeypatch.undo()
    rows[5] = json.dumps({"text": "row 5"})
    src.write_text("\n".join(rows) + "\n")
    again = ingest_service.import_source(db, src, dataset="d", chunk_size=2)
    assert (again.imported, again.duplicates) == (3, 4)
    assert _count(db, Item) == 7


def test_skip_bad_writes_rejected_rows_to_a_side_file(db: Database, tmp_path: Path) -> None:
    src = tmp_path / "bad.jsonl"
    src.write_text('{"text": "a"}\nnot json\n{"text": "b"}\n[1]\n')
    report = ingest_service.import_source(db, src, dataset="d", skip_bad=True)
    assert (report.imported, report.rejected) == (2, 2)
    side = Path(report.rejected_path or "")
    assert side == tmp_path / "bad.jsonl.rejected.jsonl"
    lines = [json.loads(line) for line in side.read_text().splitlines()]
    assert [(r["row"], r["raw"]) for r in lines] == [(2, "not json"), (4, None)]
    assert "expected an object" in lines[1]["reason"]


def test_project_import_with_ontology_stores_labels_and_parks_unmapped(db: Database, tmp_path: Path) -> None:
    admin = new_user(db, "root", "admin")
    project = project_service.create_project(
        db, admin, name="sentiment", schema={"kind": "classification", "labels": ["pos", "neg"]}
    )
    onto_path = tmp_path / "onto.toml"
    onto_path.write_text('[labels.pos]\nsynonyms = ["Positive", "good"]\n[labels.neg]\nsynonyms = ["bad"]\n')
    src = _jsonl(
        tmp_path / "labelled.jsonl",
        [
            {"text": "great", "label": "GOOD"},
            {"text": "awful", "label": "bad"},
            {"text": "meh", "label": "neutral"},
        ],
    )
    onto = Ontology.from_toml(onto_path)
    with pytest.raises(InvalidInputError, match=r"1 unmapped label\(s\): 'neutral'.*--allow-unmapped"):
        ingest_service.import_source(db, src, dataset="", project="sentiment", ontology=onto, actor=admin)
    assert _count(db, Item) == 0  # refused before anything was written
    report = ingest_service.import_source(
        db, src, dataset="", project=project.id, ontology=onto, allow_unmapped=True, actor=admin
    )
    assert (report.imported, report.labels_imported, report.labels_parked) == (3, 2, 1)
    assert report.unmapped == ["neutral"]
    with db.transaction(write=False) as s:
        anns = list(s.execute(select(Annotation).order_by(Annotation.id)).scalars())
    assert [(a.value, a.status, a.origin) for a in anns] == [
        ("pos", "active", "import"),
        ("neg", "active", "import"),
        ("neutral", "parked", "import"),
    ]
    assert anns[0].source.startswith(f"import batch {report.batch_id}: jsonl:row 1")
    assert "unmapped label(s): neutral" in anns[2].source
    assert _count(db, Task, project_id=project.id) == 3


def test_crowd_answers_keep_their_annotators(db: Database, tmp_path: Path) -> None:
    admin = new_user(db, "root", "admin")
    project_service.create_project(db, admin, name="p", schema={"kind": "classification", "labels": ["a", "b"]})
    src = tmp_path / "answers.csv"
    src.write_text("worker,task,label\nw1,t1,a\nw2,t1,b\nw1,t2,a\n")
    report = ingest_service.import_source(db, src, dataset="", project="p", actor=admin)
    assert (report.imported, report.labels_imported) == (2, 3)
    lineage = ingest_service.item_lineage(db, 1)
    assert [(a["annotator"], a["value"]) for a in lineage["annotations"]] == [("ext:w1", "a"), ("ext:w2", "b")]


def test_annotators_cannot_import(db: Database, tmp_path: Path) -> None:
    ann = new_user(db, "ann", "annotator")
    src = _jsonl(tmp_path / "x.jsonl", [{"text": "a"}])
    with pytest.raises(PermissionDeniedError):
        ingest_service.import_source(db, src, dataset="d", actor=ann)


def test_versions_are_frozen_and_diffed(db: Database, tmp_path: Path) -> None:
    admin = new_user(db, "root", "admin")
    project_service.create_project(db, admin, name="p", schema={"kind": "classification", "labels": ["a", "b"]})
    first = _jsonl(tmp_path / "one.jsonl", [{"id": "x", "text": "x", "label": "a"}, {"id": "y", "text": "y"}])
    ingest_service.import_source(db, first, dataset="", project="p", actor=admin)
    v1 = ingest_service.create_version(db, "project:p", actor=admin, note="first cut")
    assert (v1.number, v1.n_items) == (1, 2)
    second = _jsonl(tmp_path / "two.jsonl", [{"id": "z", "text": "z"}])
    ingest_service.import_source(db, second, dataset="", project="p", actor=admin)
    with db.transaction() as s:  # relabel x, as a reviewer correction would
        ann = s.execute(select(Annotation)).scalars().one()
        s.add(Annotation(task_id=ann.task_id, project_id=ann.project_id, value="b", origin="review"))
    v2 = ingest_service.create_version(db, "project:p", actor=admin)
    assert (v2.number, v2.n_items) == (2, 3)
    d = ingest_service.diff_versions(db, "project:p", 1, 2)
    assert [e["external_id"] for e in d.added] == ["z"]
    assert d.removed == []
    assert [(e["external_id"], e["old"], e["new"]) for e in d.relabelled] == [("x", "a", "b")]
    back = ingest_service.diff_versions(db, "project:p", 2, 1)
    assert [e["external_id"] for e in back.removed] == ["z"]
    assert [v.number for v in ingest_service.list_versions(db, "project:p")] == [1, 2]
    lineage = ingest_service.item_lineage(db, 1)
    assert [(v["version"], v["label"]) for v in lineage["versions"]] == [(1, "a"), (2, "b")]
    assert lineage["import_batch"]["created_by"] == "root"
    with db.transaction() as s:  # a consensus label wins over the latest annotation
        ann = s.execute(select(Annotation).order_by(Annotation.id)).scalars().first()
        s.add(
            Consensus(
                task_id=ann.task_id,
                project_id=ann.project_id,
                item_id=1,
                label="a",
                label_key="a",
                confidence=0.9,
                method="mv",
                n_labels=2,
            )
        )
    ingest_service.create_version(db, "project:p", actor=admin)
    d23 = ingest_service.diff_versions(db, "project:p", 2, 3)
    assert [(e["external_id"], e["old"], e["new"]) for e in d23.relabelled] == [("x", "b", "a")]
    out = tmp_path / "current.jsonl"
    ingest_service.export_dataset(db, "project:p", "jsonl", out)
    first = json.loads(out.read_text().splitlines()[0])
    assert (first["id"], first["label"], first["confidence"]) == ("x", "a", 0.9)
    assert [a["value"] for a in first["annotations"]] == ["a", "b"]


def test_export_names_its_version_and_round_trips(db: Database, tmp_path: Path) -> None:
    src = _jsonl(tmp_path / "in.jsonl", [{"id": f"i{i}", "text": f"t{i}"} for i in range(5)])
    ingest_service.import_source(db, src, dataset="d")
    ingest_service.create_version(db, "d")
    out = tmp_path / "out.parquet"
    report = ingest_service.export_dataset(db, "d", "parquet", out, version=1)
    assert (report.n_records, report.version) == (5, 1)
    import pyarrow.parquet as pq

    meta = json.loads(pq.read_schema(out).metadata[b"veracity"])
    assert (meta["dataset"], meta["version"]) == ("d", 1)
    back = [r for chunk in read_source(out) for r in chunk]
    assert [(r.external_id, r.data) for r in back] == [(f"i{i}", {"text": f"t{i}"}) for i in range(5)]
    jsonl = tmp_path / "out.jsonl"
    ingest_service.export_dataset(db, "d", "jsonl", jsonl)
    assert json.loads((tmp_path / "out.jsonl.meta.json").read_text())["version"] == "current"


def test_images_import_and_export_to_coco(db: Database, tmp_path: Path) -> None:
    folder = tmp_path / "pics"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    (folder / "dup.png").write_bytes((folder / "0.png").read_bytes())
    report = ingest_service.import_source(db, folder, dataset="pics")
    assert (report.imported, report.duplicates) == (3, 1)
    out = tmp_path / "export" / "coco.json"
    ingest_service.export_dataset(db, "pics", "coco", out)
    doc = json.loads(out.read_text())
    assert len(doc["images"]) == 3 and doc["info"]["dataset"] == "pics"
    assert all((out.parent / img["file_name"]).is_file() for img in doc["images"])


def test_near_duplicate_clusters_of_a_dataset(db: Database, tmp_path: Path) -> None:
    base = "Veracity keeps every item traceable to the file and row it came from."
    src = _jsonl(
        tmp_path / "t.jsonl",
        [
            {"id": "a", "text": base},
            {"id": "b", "text": "Something else entirely, about harbours and boats."},
            {"id": "c", "text": base.replace("every", "each")},
        ],
    )
    ingest_service.import_source(db, src, dataset="t")
    clusters = ingest_service.near_duplicates(db, "t", threshold=0.6)
    assert [[e["external_id"] for e in c["items"]] for c in clusters] == [["a", "c"]]


def test_coco_into_a_boxes_project_and_export_project(db: Database, tmp_path: Path) -> None:
    admin = new_user(db, "root", "admin")
    project = project_service.create_project(db, admin, name="det", schema={"kind": "boxes", "labels": ["cat", "dog"]})
    folder = tmp_path / "src"
    (folder / "images").mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i in (1, 2):
        Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(folder / "images" / f"{i}.png")
    doc = {
        "images": [{"id": i, "file_name": f"images/{i}.png", "width": 64, "height": 48} for i in (1, 2)],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 10, 10]},
            {"id": 2, "image_id": 2, "category_id": 2, "bbox": [5, 5, 20, 10]},
            {"id": 3, "image_id": 2, "category_id": 1, "bbox": [0, 0, 4, 4], "segmentation": [[0, 0, 4, 0, 4, 4]]},
        ],
        "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
    }
    (folder / "coco.json").write_text(json.dumps(doc))
    report = ingest_service.import_source(db, folder / "coco.json", dataset="", project="det", actor=admin)
    assert (report.imported, report.labels_imported, report.labels_parked) == (2, 2, 1)  # the polygon is parked
    out = tmp_path / "exp" / "coco.json"
    exported = ingest_service.export_project(db, admin, project.id, "coco", out)
    assert exported.n_records == 2
    back = json.loads(out.read_text())
    assert sorted(a["bbox"] for a in back["annotations"]) == [[1, 2, 10, 10], [5, 5, 20, 10]]
    assert [c["name"] for c in back["categories"]] == ["cat", "dog"]
    ingest_service.export_project(db, admin, project.id, "yolo", tmp_path / "yolo")
    assert (tmp_path / "yolo" / "classes.txt").read_text() == "cat\ndog\n"


def test_sensitivity_marking_is_kept_out_of_the_data(db: Database, tmp_path: Path) -> None:
    src = _jsonl(tmp_path / "s.jsonl", [{"text": "public"}, {"text": "secret", "sensitivity": 3}])
    ingest_service.import_source(db, src, dataset="s")
    with db.transaction(write=False) as s:
        items = list(s.execute(select(Item).order_by(Item.id)).scalars())
    assert [(i.data, i.sensitivity) for i in items] == [({"text": "public"}, 0), ({"text": "secret"}, 3)]
    viewer = new_user(db, "vic", "viewer")
    out = tmp_path / "v.jsonl"
    ingest_service.export_dataset(db, "s", "jsonl", out, actor=viewer)  # clearance 0
    assert [json.loads(line)["data"]["text"] for line in out.read_text().splitlines()] == ["public"]
    bad = _jsonl(tmp_path / "b.jsonl", [{"text": "x", "sensitivity": 12}])
    with pytest.raises(InvalidInputError, match=r"row 1: field 'sensitivity' must be an integer marking from 0 to 9"):
        ingest_service.import_source(db, bad, dataset="s")


def test_labels_without_a_project_are_kept_on_the_items(db: Database, tmp_path: Path) -> None:
    """No project, no task: the source's labels go to item_labels, come back in exports, versions, lineage."""
    from veracity.storage.models import ItemLabel

    rows = [{"id": f"t{i}", "text": f"text {i}", "label": ["pos", "neg", "odd"][i % 3]} for i in range(7)]
    rows[6].pop("label")
    src = _jsonl(tmp_path / "labelled.jsonl", rows)
    onto = Ontology.from_dict({"labels": {"positive": {"synonyms": ["pos"]}, "negative": {"synonyms": ["neg"]}}})
    report = ingest_service.import_source(
        db, src, dataset="texts", chunk_size=4, ontology=onto, allow_unmapped=True
    )
    assert (report.imported, report.labels_imported, report.labels_parked, report.labels_not_stored) == (7, 4, 2, 0)
    with db.transaction(write=False) as s:
        stored = s.execute(
            select(Item.external_id, ItemLabel.value, ItemLabel.status, ItemLabel.batch_id, ItemLabel.origin)
            .join(Item, Item.id == ItemLabel.item_id)
            .order_by(ItemLabel.id)
        ).all()
        first_id = s.execute(select(Item.id).where(Item.external_id == "t0")).scalar_one()
    assert [(e, v, st) for e, v, st, _b, _o in stored] == [
        ("t0", "positive", "active"), ("t1", "negative", "active"), ("t2", "odd", "parked"),
        ("t3", "positive", "active"), ("t4", "negative", "active"), ("t5", "odd", "parked"),
    ]
    assert all(b == report.batch_id for _e, _v, _s, b, _o in stored)
    assert stored[0][4] == "jsonl:row 1 field label" and "odd" in stored[2][4] and stored[2][4] != "jsonl:row 3"

    out = tmp_path / "out.jsonl"
    ingest_service.export_dataset(db, "texts", "jsonl", out)
    exported = [json.loads(line) for line in out.read_text().splitlines()]
    assert [[a["value"] for a in r["annotations"]] for r in exported] == [
        ["positive"], ["negative"], [], ["positive"], ["negative"], [], [],
    ]
    again = ingest_service.import_source(db, out, dataset="copy")  # round trip: the labels come along
    assert (again.imported, again.labels_imported) == (7, 4)

    version = ingest_service.create_version(db, "texts")
    assert version.n_items == 7
    with db.transaction(write=False) as s:
        from veracity.storage.models import DatasetVersionItem

        frozen = dict(s.execute(select(DatasetVersionItem.external_id, DatasetVersionItem.label)).all())
    assert frozen == {"t0": "positive", "t1": "negative", "t2": None, "t3": "positive", "t4": "negative",
                      "t5": None, "t6": None}
    lineage = ingest_service.item_lineage(db, first_id)
    assert lineage["source_labels"] == [
        {"kind": "classification", "value": "positive", "annotator": None, "origin": "jsonl:row 1 field label",
         "status": "active", "import_batch": report.batch_id}
    ]


def test_project_import_makes_gold_tasks_as_the_rest_import_does(db: Database, tmp_path: Path) -> None:
    """A record's ``gold`` field is its known answer (a gold task), not item data, from a file as from
    the REST import; both compute the same content hash, so the same record is a duplicate either way."""
    admin = new_user(db, "root", "admin")
    project = project_service.create_project(db, admin, name="g", schema={"kind": "classification",
                                                                          "labels": ["a", "b"]}, overlap=3)
    src = _jsonl(tmp_path / "g.jsonl", [{"id": "g1", "text": "is it a?", "gold": "a"}, {"id": "n1", "text": "plain"}])
    report = ingest_service.import_source(db, src, dataset="", project="g", actor=admin)
    assert report.imported == 2
    with db.transaction(write=False) as s:
        rows = s.execute(select(Item.external_id, Item.data, Task.is_gold, Task.gold_value, Task.target)
                         .join(Task, Task.item_id == Item.id).order_by(Item.id)).all()
    assert [tuple(r) for r in rows] == [("g1", {"text": "is it a?"}, True, "a", project_service.GOLD_TARGET),
                                        ("n1", {"text": "plain"}, False, None, 3)]
    again = project_service.import_items(db, admin, project.id, [{"id": "g1", "text": "is it a?", "gold": "a"}])
    assert (again.imported, again.duplicates) == (0, 1)
    bad = _jsonl(tmp_path / "bad.jsonl", [{"text": "fine", "gold": "b"}, {"text": "what?", "gold": "c"}])
    with pytest.raises(InvalidInputError, match=r"bad\.jsonl: row 2: gold: .*'c'"):
        ingest_service.import_source(db, bad, dataset="", project="g", actor=admin)
    plain = ingest_service.import_source(db, _jsonl(tmp_path / "d.jsonl", [{"text": "t", "gold": "a"}]), dataset="d")
    assert plain.imported == 1  # no project: no gold task, the field stays data
    with db.transaction(write=False) as s:
        assert s.execute(select(Item.data).order_by(Item.id.desc()).limit(1)).scalar_one() == {"text": "t", "gold": "a"}


# --------------------------------------------------------------------------- bad sources and side files
def _nothing_stored(db: Database) -> bool:
    from veracity.storage.models import Dataset

    return _count(db, Dataset) == 0 and _count(db, ImportBatch) == 0 and _count(db, Item) == 0


def test_rejected_file_may_not_be_the_source_or_a_folder(db: Database, tmp_path: Path) -> None:
    src = tmp_path / "self.jsonl"
    src.write_text('{"text": "a"}\n{bad\n{"text": "b"}\n')
    before = src.read_bytes()
    (tmp_path / "link.jsonl").symlink_to(src)
    (tmp_path / "inside").mkdir()
    for side, reason in [
        (src, "is the source being imported"),
        (tmp_path / "link.jsonl", "is the source being imported"),
        (tmp_path / "sub" / ".." / "self.jsonl", "is the source being imported"),
        (tmp_path / "inside", "is a folder"),
        (src / "x.jsonl", "cannot be created"),
    ]:
        with pytest.raises(InvalidInputError, match=reason):
            ingest_service.import_source(db, src, dataset="d", skip_bad=True, rejected_path=side)
    assert src.read_bytes() == before
    assert _nothing_stored(db)
    report = ingest_service.import_source(db, src, dataset="d", skip_bad=True, rejected_path=tmp_path / "r.jsonl")
    assert (report.imported, report.rejected) == (2, 1)


def test_csv_with_a_bad_byte_deep_in_it_keeps_the_rows_after_it(db: Database, tmp_path: Path) -> None:
    src = tmp_path / "late.csv"
    rows = [f"row{i},cat" for i in range(2000)] + ["caf\xe9,dog"] + [f"more{i},cat" for i in range(10)]
    body = "".join(r + "\n" for r in rows)
    src.write_bytes(b"text,label\n" + body.encode("latin-1"))
    with pytest.raises(InvalidInputError, match=r"late\.csv: row 2001: not valid UTF-8"):
        ingest_service.import_source(db, src, dataset="d")
    assert _nothing_stored(db)  # the bad row is in the first chunk: nothing was created
    report = ingest_service.import_source(db, src, dataset="d", skip_bad=True, chunk_size=500)
    assert (report.imported, report.rejected) == (2010, 1)
    assert report.errors == [{"source": str(src), "row": 2001, "reason": "not valid UTF-8"}]
    assert _count(db, Item) == 2010


@pytest.mark.parametrize("field", ["label", "id"])
def test_non_utf8_label_or_id_is_a_bad_row_and_the_batch_tells_the_truth(
    db: Database, tmp_path: Path, field: str
) -> None:
    src = tmp_path / "latin.jsonl"
    src.write_bytes(b'{"text":"one"}\n{"text":"two","' + field.encode() + b'":"caf\xe9"}\n{"text":"three"}\n')
    with pytest.raises(InvalidInputError, match=r"latin\.jsonl: row 2: not valid UTF-8; nothing was imported"):
        ingest_service.import_source(db, src, dataset="d")
    assert _nothing_stored(db)
    with pytest.raises(InvalidInputError, match=r"row 2: not valid UTF-8; import stopped, 1 item\(s\)"):
        ingest_service.import_source(db, src, dataset="d", chunk_size=1)
    with db.transaction(write=False) as s:
        (batch,) = s.execute(select(ImportBatch)).scalars()
    assert batch.report["status"].startswith("stopped") and batch.n_items == 1 == _count(db, Item)
    report = ingest_service.import_source(db, src, dataset="e", skip_bad=True)
    assert (report.imported, report.rejected) == (2, 1)
    assert report.errors == [{"source": str(src), "row": 2, "reason": "not valid UTF-8"}]


def test_skip_bad_writes_undecodable_raw_lines_safely(db: Database, tmp_path: Path) -> None:
    src = tmp_path / "bad.jsonl"
    src.write_bytes(b'{"text":"ok"}\n{"text":"caf\xe9",}\n{"text":"ok2"}\n')
    report = ingest_service.import_source(db, src, dataset="d", skip_bad=True)
    assert (report.imported, report.rejected) == (2, 1)
    (line,) = Path(report.rejected_path or "").read_text(encoding="utf-8").splitlines()
    entry = json.loads(line)
    assert entry["row"] == 2 and entry["raw"] == '{"text":"caf\\xe9",}'  # the bad byte as an escape
    assert entry["reason"].startswith("malformed JSON")


@pytest.mark.parametrize(
    ("name", "content", "fmt", "reason"),
    [
        ("garbage.parquet", b"PAR1notreally", None, "not a readable Parquet file"),
        ("zero.parquet", b"", None, "not a readable Parquet file"),
        ("table.csv", b"text,label\nhello,cat\n", "parquet", "not a readable Parquet file"),
        ("latin.csv", b"text,label\nhello,cat\ncaf\xe9,dog\n", None, "row 2: not valid UTF-8"),
        ("header.csv", b"text,caf\xe9\nhello,cat\n", None, r"header \(line 1\): not valid UTF-8"),
        ("answers.jsonl", b'{"worker":"w","task":"t","label":"caf\xe9"}\n', "crowd", "row 1: not valid UTF-8"),
        ("empty.jsonl", b"", None, "no records"),
        ("blank.jsonl", b"\n  \n\n", None, "no records"),
        ("header_only.csv", b"text,label\n", None, "no records"),
        ("empty", None, None, "no records"),
    ],
)
def test_unreadable_or_empty_sources_create_nothing(
    db: Database, tmp_path: Path, name: str, content: bytes | None, fmt: str | None, reason: str
) -> None:
    src = tmp_path / name
    if content is None:
        src.mkdir()
    else:
        src.write_bytes(content)
    with pytest.raises(InvalidInputError, match=f"{name}: {reason}"):
        ingest_service.import_source(db, src, dataset="d", format=fmt)
    assert _nothing_stored(db)


def test_a_chunk_size_below_one_is_refused_before_anything_is_created(db: Database, tmp_path: Path) -> None:
    src = _jsonl(tmp_path / "x.jsonl", [{"text": "a"}])
    with pytest.raises(InvalidInputError, match="chunk_size must be at least 1, got 0"):
        ingest_service.import_source(db, src, dataset="d", chunk_size=0)
    assert _nothing_stored(db)


def test_a_jsonl_byte_order_mark_is_skipped(db: Database, tmp_path: Path) -> None:
    src = tmp_path / "bom.jsonl"
    src.write_bytes(b'\xef\xbb\xbf{"text":"bom"}\n{"text":"x"}\n')
    assert ingest_service.import_source(db, src, dataset="d").imported == 2


def test_a_failed_chunk_is_not_counted_in_the_batch(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chunk whose transaction fails after its rows were counted (labels refused, say) stores
    nothing, and the batch's summary says so."""
    from veracity.errors import StorageError

    admin = new_user(db, "root", "admin")
    project_service.create_project(db, admin, name="p", schema={"kind": "classification", "labels": ["a", "b"]})
    rows = [{"text": f"t{i}", "label": "a"} for i in range(6)]
    for kwargs in ({"dataset": "d"}, {"dataset": "", "project": "p", "actor": admin}):
        src = _jsonl(tmp_path / "x.jsonl", rows)
        real = ingest_service._store_rows if "project" not in kwargs else ingest_service._store_chunk
        calls: list[int] = []

        def failing(*args: object, real: object = real, calls: list[int] = calls) -> None:
            real(*args)  # type: ignore[operator]
            calls.append(1)
            if len(calls) == 2:
                raise StorageError("disk full")

        name = "_store_rows" if "project" not in kwargs else "_store_chunk"
        monkeypatch.setattr(ingest_service, name, failing)
        with pytest.raises(StorageError, match="disk full"):
            ingest_service.import_source(db, src, chunk_size=2, **kwargs)  # type: ignore[arg-type]
        monkeypatch.undo()
        with db.transaction(write=False) as s:
            batch = s.execute(select(ImportBatch).order_by(ImportBatch.id.desc()).limit(1)).scalar_one()
            stored = s.execute(select(func.count()).select_from(Item).where(Item.batch_id == batch.id)).scalar_one()
        assert batch.report["status"] == "stopped: disk full"
        assert batch.n_items == stored == 2 and batch.report["imported"] == 2
        assert batch.report["labels_imported"] == 2


def test_text_the_database_cannot_store_stops_the_import_cleanly(db: Database, tmp_path: Path) -> None:
    """A lone surrogate that a reader lets through (a COCO category named by a JSON escape) stops
    the import with an input error, not a driver traceback, and the batch says what was stored."""
    (tmp_path / "images").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "images" / "a.png")
    doc = {
        "images": [{"id": 1, "file_name": "images/a.png", "width": 8, "height": 8}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2]}],
        "categories": [{"id": 1, "name": "\udce9"}],
    }
    src = tmp_path / "coco.json"
    src.write_text(json.dumps(doc))  # ensure_ascii: the surrogate is written as the escape \udce9
    with pytest.raises(InvalidInputError, match=r"coco\.json: a record holds text that is not valid UTF-8"):
        ingest_service.import_source(db, src, dataset="d")
    with db.transaction(write=False) as s:
        (batch,) = s.execute(select(ImportBatch)).scalars()
    assert batch.report["status"].startswith("stopped") and batch.n_items == 0 == _count(db, Item)

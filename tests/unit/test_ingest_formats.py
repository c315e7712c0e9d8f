"""Round trips: import a source, export it, import the export again, and compare."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _ingest_helpers import image_key, make_coco, make_image, read_all, text_key
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from veracity.ingest import read_source, sniff_format, write_export


def _text_source(tmp_path: Path) -> Path:
    path = tmp_path / "items.jsonl"
    rows = [
        {"id": "a1", "text": "the first item", "label": "pos"},
        {"id": "a2", "text": 'ünïcode, commas and "quotes"\nnew line', "label": "neg"},
        {"id": 3, "text": "no label"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_jsonl_reads_ids_labels_and_rows(tmp_path: Path) -> None:
    recs = read_all(_text_source(tmp_path))
    assert [r.external_id for r in recs] == ["a1", "a2", "3"]
    assert [r.row for r in recs] == [1, 2, 3]
    assert recs[0].data == {"text": "the first item"}
    assert recs[0].annotations[0]["kind"] == "classification"
    assert recs[0].annotations[0]["value"] == "pos"
    assert recs[2].annotations == []
    assert len({r.content_hash for r in recs}) == 3


@pytest.mark.parametrize("fmt,name", [("jsonl", "out.jsonl"), ("csv", "out.csv"), ("parquet", "out.parquet")])
def test_tabular_round_trip(tmp_path: Path, fmt: str, name: str) -> None:
    first = read_all(_text_source(tmp_path))
    write_export(first, tmp_path / name, fmt)
    again = read_all(tmp_path / name)
    assert [text_key(r) for r in again] == [text_key(r) for r in first]
    write_export(again, tmp_path / ("2" + name), fmt)
    assert [text_key(r) for r in read_all(tmp_path / ("2" + name))] == [text_key(r) for r in first]


def test_csv_source_round_trip(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text('id,text,lang,label\n1,"hello, world",en,greeting\n2,bonjour,fr,\n', encoding="utf-8")
    first = read_all(src)
    assert first[0].data == {"text": "hello, world", "lang": "en"}
    assert first[1].annotations == []
    write_export(first, tmp_path / "out.csv", "csv")
    assert [text_key(r) for r in read_all(tmp_path / "out.csv")] == [text_key(r) for r in first]


def test_parquet_streams_in_chunks(tmp_path: Path) -> None:
    src = tmp_path / "big.jsonl"
    src.write_text("".join(json.dumps({"text": f"row {i}", "n": i}) + "\n" for i in range(250)))
    write_export(read_source(src, chunk_size=100), tmp_path / "big.parquet", "parquet")
    chunks = list(read_source(tmp_path / "big.parquet", chunk_size=60))
    assert max(len(c) for c in chunks) <= 60
    recs = [r for c in chunks for r in c]
    assert [r.data["n"] for r in recs] == list(range(250))
    assert recs[-1].row == 250


def test_json_array_and_sniffing(tmp_path: Path) -> None:
    path = tmp_path / "arr.json"
    path.write_text(json.dumps([{"text": "a"}, {"text": "b"}]))
    assert sniff_format(path) == "json"
    assert [r.data["text"] for r in read_all(path)] == ["a", "b"]


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(_text.filter(lambda s: s != ""), min_size=1, max_size=8))
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_arbitrary_strings_round_trip(tmp_path: Path, fmt: str, texts: list[str]) -> None:
    src = tmp_path / "src.jsonl"
    src.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    first = read_all(src)
    out = tmp_path / f"out.{fmt}"
    write_export(first, out, fmt)
    again = read_all(out)
    assert [r.data["text"] for r in again] == texts
    assert [r.content_hash for r in again] == [r.content_hash for r in first]


# --------------------------------------------------------------------------- images and detection formats
def _image_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "pics"
    for i in range(3):
        make_image(folder / f"p{i}.png", seed=100 + i)
    (folder / "p1.json").write_text(json.dumps({"id": "one", "label": "cat", "caption": "a cat"}))
    return folder


def test_image_folder_with_sidecar(tmp_path: Path) -> None:
    recs = read_all(_image_folder(tmp_path))
    assert [Path(r.data["image"]).name for r in recs] == ["p0.png", "p1.png", "p2.png"]
    assert recs[1].external_id == "one"
    assert recs[1].data["caption"] == "a cat"
    assert recs[1].annotations[0]["value"] == "cat"
    assert recs[0].meta == {"width": 64, "height": 48}
    assert len({r.content_hash for r in recs}) == 3


def test_coco_reads_boxes_and_polygons(tmp_path: Path) -> None:
    recs = read_all(make_coco(tmp_path / "src"))
    assert len(recs) == 3
    kinds = {a["kind"]: a for a in recs[0].annotations}
    assert kinds["boxes"]["value"] == [{"x": 2, "y": 3, "w": 20, "h": 10, "label": "dog"}]
    assert kinds["boxes"]["origin"] == "coco:annotations 10"
    assert kinds["polygons"]["value"][0]["points"] == [[5, 5], [15, 5], [15, 15], [5.5, 15]]
    assert recs[0].external_id == "1"


def _approx_shapes(rec_a_key: tuple, rec_b_key: tuple) -> None:
    assert rec_a_key[0] == rec_b_key[0]
    a_anns = [(k, json.loads(v)) for k, v, _ in rec_a_key[1]]
    b_anns = [(k, json.loads(v)) for k, v, _ in rec_b_key[1]]
    assert [k for k, _ in a_anns] == [k for k, _ in b_anns]
    for (_, va), (_, vb) in zip(a_anns, b_anns, strict=True):
        assert len(va) == len(vb)
        for sa, sb in zip(va, vb, strict=True):
            assert sa["label"] == sb["label"]
            if "points" in sa:
                assert [c for pt in sa["points"] for c in pt] == pytest.approx(
                    [c for pt in sb["points"] for c in pt], abs=1e-4
                )
            else:
                assert [sa[k] for k in "xywh"] == pytest.approx([sb[k] for k in "xywh"], abs=1e-4)


@pytest.mark.parametrize("fmt,target", [("coco", "out/coco.json"), ("yolo", "yolo"), ("labelstudio", "ls.json")])
def test_detection_round_trip(tmp_path: Path, fmt: str, target: str) -> None:
    first = read_all(make_coco(tmp_path / "src"))
    write_export(first, tmp_path / target, fmt)
    again = read_all(tmp_path / target)
    assert sniff_format(tmp_path / target) == fmt
    assert len(again) == len(first)
    if fmt == "labelstudio":  # refers to the original images, so hash is over data
        assert [r.data for r in again] == [r.data for r in first]
        first_keys = [(None, sorted(image_key(r)[1])) for r in first]
        again_keys = [(None, sorted(image_key(r)[1])) for r in again]
    else:
        first_keys = [image_key(r) for r in first]
        again_keys = [image_key(r) for r in again]
    for a, b in zip(first_keys, again_keys, strict=True):
        _approx_shapes(a, b)


def test_voc_round_trip(tmp_path: Path) -> None:
    first = read_all(make_coco(tmp_path / "src"))
    for rec in first:  # VOC has boxes only
        rec.annotations = [a for a in rec.annotations if a["kind"] == "boxes"]
    write_export(first, tmp_path / "voc", "voc")
    again = read_all(tmp_path / "voc")
    assert sniff_format(tmp_path / "voc") == "voc"
    assert [image_key(r) for r in again] == [image_key(r) for r in first]
    write_export(again, tmp_path / "voc2", "voc")
    assert [image_key(r) for r in read_all(tmp_path / "voc2")] == [image_key(r) for r in first]


def test_image_folder_round_trip_through_coco(tmp_path: Path) -> None:
    first = read_all(_image_folder(tmp_path))
    write_export(first, tmp_path / "c" / "coco.json", "coco")
    again = read_all(tmp_path / "c" / "coco.json")
    assert [r.content_hash for r in again] == [r.content_hash for r in first]


def test_yolo_reads_data_yaml_names(tmp_path: Path) -> None:
    root = tmp_path / "y"
    make_image(root / "images" / "train" / "a.png", seed=1, size=(100, 50))
    (root / "labels" / "train").mkdir(parents=True)
    (root / "labels" / "train" / "a.txt").write_text("1 0.5 0.5 0.2 0.4\n0 0.1 0.1 0.3 0.1 0.3 0.3\n")
    (root / "data.yaml").write_text("path: .\nnames:\n  - person\n  - 'traffic light'\n")
    (rec,) = read_all(root)
    kinds = {a["kind"]: a["value"] for a in rec.annotations}
    assert kinds["boxes"] == [{"x": 40, "y": 15, "w": 20, "h": 20, "label": "traffic light"}]
    assert kinds["polygons"] == [{"points": [[10, 5], [30, 5], [30, 15]], "label": "person"}]
    assert rec.external_id == "images/train/a"


def test_crowd_answers_round_trip(tmp_path: Path) -> None:
    src = tmp_path / "answers.csv"
    src.write_text("worker,task,label,extra\nw1,t1,a,x\nw2,t1,b,x\nw1,t2,a,x\n")
    assert sniff_format(src) == "crowd"
    first = read_all(src)
    assert [r.external_id for r in first] == ["t1", "t2"]
    assert [(a["annotator"], a["value"]) for a in first[0].annotations] == [("w1", "a"), ("w2", "b")]
    write_export(first, tmp_path / "out.csv", "crowd")
    assert [text_key(r) for r in read_all(tmp_path / "out.csv")] == [text_key(r) for r in first]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    answers=st.lists(
        st.tuples(st.sampled_from(["w1", "w2", "w3"]), st.sampled_from(["t1", "t2", "t3", "t4", "t5"]),
                  st.sampled_from(["a", "b", "7"])),
        min_size=1, max_size=40,
    ),
    chunk_size=st.integers(1, 4),
)
def test_crowd_answers_group_by_task_in_order_of_first_appearance(
    tmp_path: Path, answers: list[tuple[str, str, str]], chunk_size: int
) -> None:
    """The answers of a task are scattered through the file; the reader (which spills them to a
    temporary file to keep memory bounded) gives one record per task, in order of first
    appearance, with the task's answers in file order, whatever the chunk size."""
    src = tmp_path / "scattered.csv"
    src.write_text("worker,task,label\n" + "".join(f"{w},{t},{lab}\n" for w, t, lab in answers))
    expected: dict[str, list[tuple[str, str, str]]] = {}
    for row, (w, t, lab) in enumerate(answers, start=1):  # data rows count from 1
        expected.setdefault(t, []).append((w, lab, f"crowd:row {row}"))
    chunks = list(read_source(src, "crowd", chunk_size=chunk_size))
    assert all(0 < len(c) <= chunk_size for c in chunks)
    records = [r for c in chunks for r in c]
    assert [r.external_id for r in records] == list(expected)
    for rec in records:
        got = [(a["annotator"], a["value"], a["origin"]) for a in rec.annotations]
        assert got == expected[rec.external_id]


def test_labelstudio_text_tasks(tmp_path: Path) -> None:
    tasks = [
        {
            "id": 7,
            "data": {"text": "Alice met Bob"},
            "annotations": [
                {
                    "id": 70,
                    "completed_by": {"email": "ann@example.org"},
                    "result": [
                        {"type": "labels", "value": {"start": 0, "end": 5, "labels": ["PER"]}},
                        {"type": "labels", "value": {"start": 10, "end": 13, "labels": ["PER"]}},
                        {"type": "choices", "value": {"choices": ["social"]}},
                    ],
                },
                {"id": 71, "was_cancelled": True, "result": []},
            ],
        }
    ]
    src = tmp_path / "ls.json"
    src.write_text(json.dumps(tasks))
    assert sniff_format(src) == "labelstudio"
    (rec,) = read_all(src)
    by_kind = {a["kind"]: a for a in rec.annotations}
    assert by_kind["spans"]["value"] == [
        {"start": 0, "end": 5, "label": "PER"},
        {"start": 10, "end": 13, "label": "PER"},
    ]
    assert by_kind["classification"]["annotator"] == "ann@example.org"
    write_export([rec], tmp_path / "out.json", "labelstudio")
    assert [text_key(r) for r in read_all(tmp_path / "out.json")] == [text_key(rec)]


def test_hf_directory_round_trip(tmp_path: Path) -> None:
    pytest.importorskip("datasets")
    first = read_all(_text_source(tmp_path))
    write_export(first, tmp_path / "hf", "hf")
    assert [text_key(r) for r in read_all(tmp_path / "hf", "hf")] == [text_key(r) for r in first]


def test_count_records_estimates_for_progress(tmp_path: Path) -> None:
    from veracity.ingest.sources import count_records

    src = tmp_path / "a.jsonl"
    src.write_text("".join(json.dumps({"text": str(i)}) + "\n" for i in range(7)))
    assert count_records(src, "jsonl") == 7
    write_export(read_source(src), tmp_path / "a.csv", "csv")
    assert count_records(tmp_path / "a.csv", "csv") == 7
    write_export(read_source(src), tmp_path / "a.parquet", "parquet")
    assert count_records(tmp_path / "a.parquet", "parquet") == 7
    assert count_records(make_coco(tmp_path / "c"), "coco") is None

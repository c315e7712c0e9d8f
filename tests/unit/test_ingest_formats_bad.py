"""Malformed COCO, YOLO, VOC, Label Studio, Hugging Face, image-folder and zip sources are refused
with an InvalidInputError naming the file and the record, never a traceback or a wrong record."""

from __future__ import annotations

import json
import struct
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import pytest
from _ingest_helpers import make_image, read_all
from hypothesis import given
from hypothesis import strategies as st

from veracity._text import first_bad_utf8
from veracity.errors import InvalidInputError
from veracity.ingest import BadRow

# --- COCO -------------------------------------------------------------------------------------

_IMAGES = [{"id": 1, "file_name": "a.png", "width": 64, "height": 48}]
_CATEGORIES = [{"id": 1, "name": "cat"}]


def _ann(**fields: Any) -> dict[str, Any]:
    return {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], **fields}


def _coco(tmp_path: Path, doc: dict[str, Any]) -> Path:
    make_image(tmp_path / "a.png", seed=1)  # 64 x 48
    path = tmp_path / "c.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"images": _IMAGES, "annotations": 5}, r"field 'annotations' must be a list, got int"),
        ({"images": _IMAGES, "categories": 3}, r"field 'categories' must be a list, got int"),
        ({"images": _IMAGES, "categories": [{"id": [1], "name": "x"}]}, r"category 1: field 'id' must be"),
        (
            {"images": _IMAGES, "annotations": [_ann()], "categories": [*_CATEGORIES, {"id": 1, "name": "dog"}]},
            r"category 2: duplicate category id 1",
        ),
        ({"images": _IMAGES * 2, "annotations": [_ann()], "categories": _CATEGORIES}, r"duplicate image id 1"),
        (
            {"images": _IMAGES, "annotations": [_ann(), _ann()], "categories": _CATEGORIES},
            r"annotation 2: duplicate annotation id 1",
        ),
        ({"images": [{"id": [1], "file_name": "a.png"}]}, r"row 1: image id must be an integer or string"),
        ({"images": [{"id": 1, "file_name": ""}]}, r"row 1: .* is not a file"),
        (
            {"images": [{"id": 1, "file_name": "a.png", "width": 640, "height": 480}]},
            r"row 1: image id 1 declares size 640x480 but a\.png is 64x48",
        ),
    ],
)
def test_coco_bad_structure_is_refused(tmp_path: Path, doc: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInputError, match=r"c\.json: " + message):
        read_all(_coco(tmp_path, doc), "coco")


@pytest.mark.parametrize(
    ("ann", "message"),
    [
        (_ann(bbox=[1, 2, 3]), r"bbox must be a list \[x, y, w, h\], got \[1, 2, 3\]"),
        (_ann(bbox=["1", 2, 3, 4]), r"coordinate '1' is not a number"),
        (_ann(bbox=[True, 2, 3, 4]), r"coordinate True is not a number"),
        (_ann(bbox=[1, 2, -3, 4]), r"negative size: width -3"),
        (_ann(bbox=[60, 40, 30, 30]), r"box x=60 y=40 w=30 h=30 lies outside the 64x48 image"),
        (_ann(segmentation=[[0, 0, 100, 0, 100, 40]]), r"polygon point \(100, 0\) lies outside"),
    ],
)
def test_coco_bad_box_names_image_and_annotation(tmp_path: Path, ann: dict[str, Any], message: str) -> None:
    path = _coco(tmp_path, {"images": _IMAGES, "annotations": [ann], "categories": _CATEGORIES})
    with pytest.raises(InvalidInputError, match=r"c\.json: row 1: malformed annotation of image id 1: .*" + message):
        read_all(path, "coco")


def test_coco_nan_box_is_refused(tmp_path: Path) -> None:
    make_image(tmp_path / "a.png", seed=1)
    path = tmp_path / "c.json"
    doc = {"images": _IMAGES, "annotations": [_ann(bbox=[float("nan"), 2, 3, 4])], "categories": _CATEGORIES}
    path.write_text(json.dumps(doc))  # json writes NaN, and reads it back
    with pytest.raises(InvalidInputError, match=r"row 1: .*not a finite number"):
        read_all(path, "coco")


def test_coco_box_outside_is_a_bad_row_with_skip_bad(tmp_path: Path) -> None:
    images = [*_IMAGES, {"id": 2, "file_name": "a.png", "width": 64, "height": 48}]
    anns = [_ann(bbox=[60, 40, 30, 30]), _ann(id=2, image_id=2)]
    path = _coco(tmp_path, {"images": images, "annotations": anns, "categories": _CATEGORIES})
    bad: list[BadRow] = []
    recs = read_all(path, "coco", on_bad_row=bad.append)
    assert [r.external_id for r in recs] == ["2"]
    assert [(b.row, "outside" in b.reason) for b in bad] == [(1, True)]


# --- YOLO -------------------------------------------------------------------------------------


def _yolo(tmp_path: Path, labels: str | bytes, names: str | bytes = "cat\ndog\n") -> Path:
    make_image(tmp_path / "images" / "a.png", seed=1)  # 64 x 48
    (tmp_path / "labels").mkdir()
    label_file = tmp_path / "labels" / "a.txt"
    label_file.write_bytes(labels.encode() if isinstance(labels, str) else labels)
    (tmp_path / "classes.txt").write_bytes(names.encode() if isinstance(names, str) else names)
    return tmp_path


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ("0 1.5 0.5 0.1 0.1\n", r"coordinate 1\.5 is outside the normalised range 0\.\.1"),
        ("0 0.5 0.5 -0.1 0.1\n", r"coordinate -0\.1 is outside"),
        ("0 nan 0.5 0.1 0.1\n", r"coordinate nan is outside"),
        ("0 inf 0.5 0.1 0.1\n", r"coordinate inf is outside"),
        ("0 0.5 0.5 0.1 0.1\n0 0.95 0.5 0.5 0.1\n", r"row 2: box x=44\.8 .* lies outside the 64x48 image"),
        ("0 0.1 0.1 0.5 1.5 0.9 0.9\n", r"coordinate 1\.5 is outside"),
        (b"0 0.5 0.5 0.1 0.1\n1 \xff\n", r"row 2: not UTF-8 text"),
    ],
)
def test_yolo_bad_label_line_is_refused(tmp_path: Path, labels: str | bytes, message: str) -> None:
    with pytest.raises(InvalidInputError, match=r"labels/a\.txt: (row 1: )?" + message):
        read_all(_yolo(tmp_path, labels), "yolo")


def test_yolo_class_names_not_utf8_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"classes\.txt: not UTF-8 text"):
        read_all(_yolo(tmp_path, "0 0.5 0.5 0.1 0.1\n", names=b"caf\xe9\n"), "yolo")


def test_yolo_yaml_names_with_bad_key_is_refused(tmp_path: Path) -> None:
    root = _yolo(tmp_path, "0 0.5 0.5 0.1 0.1\n")
    (root / "classes.txt").unlink()
    (root / "data.yaml").write_text("names:\n  cat: 0\n")
    with pytest.raises(InvalidInputError, match=r"data\.yaml: 'names' key 'cat' is not a class index"):
        read_all(root, "yolo")


# --- Pascal VOC -------------------------------------------------------------------------------

_VOC = "<annotation><filename>a.png</filename><size><width>{w}</width><height>48</height></size>{obj}</annotation>"
_OBJ = "<object><name>cat</name><bndbox><xmin>{}</xmin><ymin>{}</ymin><xmax>{}</xmax><ymax>{}</ymax></bndbox></object>"


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        (_VOC.format(w=64, obj=_OBJ.format(10, 2, 3, 4)), r"object 1: box has a negative size: width -7"),
        (_VOC.format(w=64, obj=_OBJ.format(10, 2, 300, 4)), r"object 1: box x=10 .* lies outside the 64x48 image"),
        (_VOC.format(w=64, obj=_OBJ.format("nan", 2, 3, 4)), r"object 1: field 'xmin' is not a number: 'nan'"),
        (_VOC.format(w=640, obj=_OBJ.format(1, 2, 3, 4)), r"<size> says 640x48 but a\.png is 64x48"),
    ],
)
def test_voc_bad_box_or_size_is_refused(tmp_path: Path, xml: str, message: str) -> None:
    make_image(tmp_path / "a.png", seed=1)
    (tmp_path / "a.xml").write_text(xml)
    with pytest.raises(InvalidInputError, match=r"a\.xml: row 1: " + message):
        read_all(tmp_path / "a.xml", "voc")


# --- Label Studio -----------------------------------------------------------------------------


def _poly(**value: Any) -> dict[str, Any]:
    v = {"points": [[10, 10], [20, 10], [20, 20]], "polygonlabels": ["cat"], **value}
    return {"type": "polygonlabels", "original_width": 100, "original_height": 50, "value": v}


def _rect(**value: Any) -> dict[str, Any]:
    v = {"x": 10, "y": 10, "width": 10, "height": 10, "rectanglelabels": ["cat"], **value}
    return {"type": "rectanglelabels", "original_width": 100, "original_height": 50, "value": v}


@pytest.mark.parametrize(
    ("task", "message"),
    [
        ({"annotations": "x"}, r"task 1: field 'annotations' must be a list of objects"),
        ({"annotations": [5]}, r"task 1: field 'annotations' must be a list of objects"),
        ({"annotations": [{"result": [5]}]}, r"result must be an object, got int"),
        ({"annotations": [{"result": {"type": "choices"}}]}, r"field 'result' must be a list, got dict"),
        (
            {"annotations": [{"result": [{"type": "choices", "value": ["a"]}]}]},
            r"choices result: field 'value' must be an object",
        ),
        ({"annotations": [{"result": [_rect(width=-10)]}]}, r"box has a negative size"),
        ({"annotations": [{"result": [_rect(x=95)]}]}, r"lies outside the 100x50 image"),
        ({"annotations": [{"result": [{**_rect(), "original_width": "100"}]}]}, r"must be positive integers"),
        ({"id": {"a": 1}}, r"task id must be an integer or string"),
        # field-level messages instead of Python's ("'x'", "too many values to unpack", ...)
        ({"annotations": [{"result": [_rect(x=None)]}]}, r"rectanglelabels result: field 'value\.x' must be a number"),
        (
            {"annotations": [{"result": [{**_rect(), "value": {"y": 1, "width": 1, "height": 1}}]}]},
            r"rectanglelabels result: field 'value\.x' is missing",
        ),
        (
            {"annotations": [{"result": [_rect(rectanglelabels="cat")]}]},
            r"field 'value\.rectanglelabels' must be a list of strings, got 'cat'",
        ),
        (
            {"annotations": [{"result": [_poly(points=[[1, 2, 3]])]}]},
            r"polygonlabels result: field 'value\.points' must be a list of \[x, y\] number pairs",
        ),
        (
            {"annotations": [{"result": [_poly(points=[["1", 2]])]}]},
            r"field 'value\.points' must be a list of \[x, y\]",
        ),
        (
            {"annotations": [{"result": [{"type": "choices", "value": {"choices": "pos"}}]}]},
            r"choices result: field 'value\.choices' must be a list of strings, got 'pos'",
        ),
        (
            {"annotations": [{"result": [{"type": "labels", "value": {"end": 3, "labels": ["a"]}}]}]},
            r"labels result: field 'value\.start' is missing",
        ),
        (
            {"annotations": [{"result": [{"type": "taxonomy", "value": {"taxonomy": ["a"]}}]}]},
            r"taxonomy result: field 'value\.taxonomy' must be a list of lists of strings",
        ),
        (
            {"annotations": [{"result": [{"type": "rating", "value": {}}]}]},
            r"rating result: field 'value\.rating' is missing",
        ),
    ],
)
def test_labelstudio_bad_task_is_refused(tmp_path: Path, task: dict[str, Any], message: str) -> None:
    path = tmp_path / "ls.json"
    path.write_text(json.dumps([{"id": 1, "data": {"image": "a.png"}, **task}]))
    with pytest.raises(InvalidInputError, match=r"ls\.json: row 1: .*" + message):
        read_all(path, "labelstudio")


def test_labelstudio_repeated_task_id_is_refused(tmp_path: Path) -> None:
    """Two tasks with one id (e.g. two exports pasted together) would become two items answering
    to one external id; the repeat is refused, or set aside with --skip-bad."""
    path = tmp_path / "ls.json"
    tasks = [{"id": 5, "data": {"text": "first"}}, {"id": 6, "data": {"text": "x"}}, {"id": "5", "data": {"text": "b"}}]
    path.write_text(json.dumps(tasks))
    with pytest.raises(InvalidInputError, match=r"ls\.json: row 3: task id '5' repeats the task of row 1"):
        read_all(path, "labelstudio")


def test_labelstudio_nan_in_data_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ls.json"
    path.write_text('[{"id": 1, "data": {"text": NaN}}]')
    with pytest.raises(InvalidInputError, match=r"ls\.json: row 1: task 1: data cannot be stored as JSON"):
        read_all(path, "labelstudio")


# --- Hugging Face folders and image folders ---------------------------------------------------


@pytest.mark.parametrize("files", [{}, {"dataset_info.json": "{", "state.json": "{}"}])
def test_hf_folder_without_dataset_files_is_refused(tmp_path: Path, files: dict[str, str]) -> None:
    pytest.importorskip("datasets")
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(InvalidInputError, match=r"not a readable Hugging Face dataset folder"):
        read_all(tmp_path, "hf")


def test_image_sidecar_not_utf8_is_refused(tmp_path: Path) -> None:
    make_image(tmp_path / "a.png", seed=1)
    (tmp_path / "a.json").write_bytes(b'{"caption": "caf\xe9"}')
    with pytest.raises(InvalidInputError, match=r"row 1: sidecar a\.json: not UTF-8 text"):
        read_all(tmp_path, "images")


def test_image_metadata_naming_a_folder_is_refused(tmp_path: Path) -> None:
    make_image(tmp_path / "a.png", seed=1)
    (tmp_path / "metadata.jsonl").write_text('{"file_name": "."}\n')
    with pytest.raises(InvalidInputError, match=r"metadata\.jsonl: row 1: .* is not a file"):
        read_all(tmp_path, "images")


# --- zip archives -----------------------------------------------------------------------------


def _zip(path: Path, members: dict[str, bytes | str]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


@pytest.mark.parametrize("members", [{}, {"folder/": ""}])
def test_zip_without_files_is_refused(tmp_path: Path, members: dict[str, bytes | str]) -> None:
    archive = _zip(tmp_path / "empty.zip", members)
    with pytest.raises(InvalidInputError, match=r"empty\.zip: archive holds no files"):
        read_all(archive, extract_dir=tmp_path / "out")


def test_nested_zip_is_refused(tmp_path: Path) -> None:
    inner = _zip(tmp_path / "inner.zip", {"a.jsonl": '{"text": "a"}\n'})
    archive = _zip(tmp_path / "outer.zip", {"inner.zip": inner.read_bytes()})
    with pytest.raises(InvalidInputError, match=r"outer\.zip: holds only another archive \(inner\.zip\)"):
        read_all(archive, extract_dir=tmp_path / "out")


def test_zip_with_a_damaged_member_is_refused(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "bad.zip", {"a.jsonl": '{"text": "a"}\n' * 1000})
    blob = bytearray(archive.read_bytes())
    central = blob.rfind(b"PK\x01\x02")
    struct.pack_into("<I", blob, central + 16, 0)  # wrong CRC-32 in the central directory
    archive.write_bytes(bytes(blob))
    with pytest.raises(InvalidInputError, match=r"bad\.zip: member 'a\.jsonl': cannot be unpacked"):
        read_all(archive, extract_dir=tmp_path / "out")


def test_zip_declaring_a_small_size_cannot_unpack_past_the_limit(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "liar.zip", {"a.jsonl": "0" * 200_000})
    blob = bytearray(archive.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # uncompressed size: 10 bytes
        struct.pack_into("<I", blob, blob.find(signature) + offset, 10)
    archive.write_bytes(bytes(blob))
    with pytest.raises(InvalidInputError, match=r"liar\.zip: member 'a\.jsonl'"):
        read_all(archive, max_bytes=50_000, extract_dir=tmp_path / "out")
    assert (tmp_path / "out" / "a.jsonl").stat().st_size <= 50_000


def test_zip_is_not_unpacked_over_other_files(tmp_path: Path) -> None:
    """A folder already holding files that are not this archive is refused (they would be read with
    it); the same archive unpacked in full before is reused as it is."""
    archive = _zip(tmp_path / "data.zip", {"rows.jsonl": '{"text": "a"}\n{"text": "b"}\n'})
    out = tmp_path / "out"
    first = read_all(archive, extract_dir=out)
    assert sorted(r.data["text"] for r in first) == ["a", "b"]
    assert sorted(r.data["text"] for r in read_all(archive, extract_dir=out)) == ["a", "b"]  # reused
    other = _zip(tmp_path / "other.zip", {"c.jsonl": '{"text": "c"}\n'})
    with pytest.raises(InvalidInputError, match=r"other\.zip: .*out already holds other files"):
        read_all(other, extract_dir=out)
    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / "old.jsonl").write_text('{"text": "old"}\n')
    with pytest.raises(InvalidInputError, match="already holds other files"):
        read_all(archive, extract_dir=stray)


def test_single_file_archive_under_a_hidden_folder(tmp_path: Path) -> None:
    """Only the names inside the unpacked folder count as hidden, not the folders above it."""
    base = tmp_path / ".cache" / "v"
    base.mkdir(parents=True)
    archive = _zip(base / "one.zip", {"rows.jsonl": '{"text": "x"}\n'})
    assert [r.data["text"] for r in read_all(archive, extract_dir=base / "out")] == ["x"]


# --- UTF-8 ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "text"),
    [
        ("json", b'[{"text": "ok"},\n {"text": "bad \xff byte"}]'),
        ("labelstudio", b'[{"id": 1, "data": {"text": "ok"}},\n {"id": 2, "data": {"text": "bad \xff"}}]'),
        ("coco", b'{"images": [], "annotations": [],\n "categories": [{"id": 1, "name": "c\xff"}]}'),
    ],
)
def test_json_readers_name_the_line_of_a_byte_that_is_not_utf8(tmp_path: Path, fmt: str, text: bytes) -> None:
    path = tmp_path / "data.json"
    path.write_bytes(text)
    column = text.split(b"\n")[1].index(b"\xff") + 1
    with pytest.raises(InvalidInputError, match=rf"data\.json: not UTF-8 text at line 2 column {column} "):
        read_all(path, fmt)


@given(
    st.lists(
        st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\n\r"), max_size=12),
        min_size=1,
        max_size=6,
    ),
    st.data(),
)
def test_first_bad_utf8_finds_the_byte(lines: list[str], data: st.DataObject) -> None:
    encoded = [line.encode("utf-8") for line in lines]
    row = data.draw(st.integers(0, len(encoded) - 1))
    # between two characters, never inside a multi-byte one
    col = len(lines[row][: data.draw(st.integers(0, len(lines[row])))].encode("utf-8"))
    encoded[row] = encoded[row][:col] + b"\xff" + encoded[row][col:]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.txt"
        path.write_bytes(b"\n".join(encoded))
        assert first_bad_utf8(path) == (row + 1, col + 1)
        path.write_bytes("\n".join(lines).encode("utf-8"))
        assert first_bad_utf8(path) is None

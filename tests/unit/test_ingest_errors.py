"""Bad input is refused with a message naming the file, the row or line, and the reason."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from _ingest_helpers import make_coco, make_image, read_all

from veracity.errors import InvalidInputError
from veracity.ingest import BadRow, read_source


def test_malformed_json_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "ok"}\n\n{"text": oops}\n')
    with pytest.raises(InvalidInputError) as err:
        read_all(path)
    assert str(path) in str(err.value)
    assert "row 3" in str(err.value)
    assert "malformed JSON" in str(err.value)
    assert err.value.details["row"] == 3


def test_missing_required_field_names_row_and_field(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text("id,text,lang\n1,hello,en\n2,,fr\n")
    with pytest.raises(InvalidInputError, match=r"in\.csv: row 2: missing field 'text'"):
        read_all(path, required=["text"])


def test_csv_wrong_width_names_row(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text("id,text\n1,hello\n2,a,b\n")
    with pytest.raises(InvalidInputError, match=r"row 2: expected 2 fields, got 3"):
        read_all(path)


def test_non_object_line_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"text": "a"}\n[1, 2]\n')
    with pytest.raises(InvalidInputError, match=r"row 2: expected an object, got list"):
        read_all(path)


def test_bad_rows_can_be_collected_instead(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"text": "a"}\nnot json\n{"text": "b"}\n{}\n')
    bad: list[BadRow] = []
    recs = read_all(path, on_bad_row=bad.append)
    assert [r.data["text"] for r in recs] == ["a", "b"]
    assert [(b.row, b.raw) for b in bad] == [(2, "not json"), (4, None)]
    assert "no data fields" in bad[1].reason


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    path.write_text(json.dumps({"text": "x" * 500}) + "\n")
    with pytest.raises(InvalidInputError, match=r"larger than the limit of 100 bytes"):
        read_all(path, max_bytes=100)


def test_undecodable_image_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "pics"
    make_image(folder / "good.png", seed=1)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    with pytest.raises(InvalidInputError, match=r"broken\.png cannot be decoded"):
        read_all(folder)


def test_metadata_path_traversal_is_refused(tmp_path: Path) -> None:
    make_image(tmp_path / "secret.png", seed=2)
    folder = tmp_path / "pics"
    make_image(folder / "a.png", seed=1)
    (folder / "metadata.jsonl").write_text(
        json.dumps({"file_name": "a.png"}) + "\n" + json.dumps({"file_name": "../secret.png"}) + "\n"
    )
    with pytest.raises(InvalidInputError, match=r"metadata\.jsonl: row 2: path '\.\./secret\.png' resolves outside"):
        read_all(folder)


def test_sidecar_path_traversal_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "pics"
    make_image(folder / "a.png", seed=1)
    (folder / "a.json").write_text(json.dumps({"image": "/etc/passwd"}))
    with pytest.raises(InvalidInputError, match=r"resolves outside the source folder"):
        read_all(folder)


def test_symlink_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    make_image(tmp_path / "outside.png", seed=3)
    folder = tmp_path / "pics"
    folder.mkdir()
    (folder / "link.png").symlink_to(tmp_path / "outside.png")
    with pytest.raises(InvalidInputError, match=r"resolves outside"):
        read_all(folder)


def test_coco_file_name_traversal_is_refused(tmp_path: Path) -> None:
    path = make_coco(tmp_path / "src", n_images=1)
    doc = json.loads(path.read_text())
    doc["images"][0]["file_name"] = "../../elsewhere.png"
    path.write_text(json.dumps(doc))
    with pytest.raises(InvalidInputError, match=r"coco\.json: image 1 \(id 1\): path '\.\./\.\./elsewhere\.png'"):
        read_all(path)


def test_coco_unknown_category_is_named(tmp_path: Path) -> None:
    path = make_coco(tmp_path / "src", n_images=1)
    doc = json.loads(path.read_text())
    doc["annotations"][0]["category_id"] = 99
    path.write_text(json.dumps(doc))
    with pytest.raises(InvalidInputError, match=r"annotation 1 \(id 10\): unknown category_id 99"):
        read_all(path)


def test_zip_slip_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ok.jsonl", '{"text": "a"}\n')
        zf.writestr("../escaped.jsonl", '{"text": "b"}\n')
    with pytest.raises(InvalidInputError, match=r"member '\.\./escaped\.jsonl'.*outside"):
        list(read_source(archive, extract_dir=tmp_path / "out"))
    assert not (tmp_path / "escaped.jsonl").exists()


def test_zip_of_jsonl_is_read(tmp_path: Path) -> None:
    archive = tmp_path / "good.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("data/items.jsonl", '{"text": "a"}\n{"text": "b"}\n')
    recs = read_all(archive, extract_dir=tmp_path / "x")
    assert [r.data["text"] for r in recs] == ["a", "b"]
    assert recs[0].source == str(tmp_path / "x" / "data" / "items.jsonl")


def test_zip_bomb_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("big.jsonl", "0" * 200_000)
    with pytest.raises(InvalidInputError, match=r"unpacks to 200000 bytes"):
        list(read_source(archive, max_bytes=50_000, extract_dir=tmp_path / "out"))


def test_voc_dtd_is_refused(tmp_path: Path) -> None:
    make_image(tmp_path / "a.png", seed=1)
    (tmp_path / "a.xml").write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">]>\n'
        "<annotation><filename>a.png</filename></annotation>\n"
    )
    with pytest.raises(InvalidInputError, match=r"a\.xml: XML document type declarations \(DTD\) are not allowed"):
        read_all(tmp_path / "a.xml")


def test_voc_missing_field_names_object(tmp_path: Path) -> None:
    make_image(tmp_path / "a.png", seed=1)
    (tmp_path / "a.xml").write_text(
        "<annotation><filename>a.png</filename><object><name>cat</name>"
        "<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax></bndbox></object></annotation>"
    )
    with pytest.raises(InvalidInputError, match=r"a\.xml: row 1: object 1: missing field 'ymax'"):
        read_all(tmp_path / "a.xml")


def test_yolo_bad_line_names_label_file_and_line(tmp_path: Path) -> None:
    make_image(tmp_path / "images" / "a.png", seed=1)
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "a.txt").write_text("0 0.5 0.5 0.1 0.1\n3 0.5 0.5 0.1 0.1\n")
    (tmp_path / "classes.txt").write_text("cat\ndog\n")
    with pytest.raises(InvalidInputError, match=r"labels/a\.txt: row 2: class 3 out of range"):
        read_all(tmp_path)


def test_unknown_format_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x.jsonl").write_text('{"text": "a"}\n')
    with pytest.raises(InvalidInputError, match=r"unknown format 'excel'"):
        read_source(tmp_path / "x.jsonl", "excel")


# --------------------------------------------------------------------------- text that is not UTF-8
def test_csv_bad_byte_deep_in_the_file_is_one_bad_row_at_its_row(tmp_path: Path) -> None:
    path = tmp_path / "late.csv"
    rows = [f"row{i},cat" for i in range(2000)] + ["caf\xe9,dog"] + [f"more{i},cat" for i in range(10)]
    body = "".join(r + "\n" for r in rows)
    path.write_bytes(b"text,label\n" + body.encode("latin-1"))
    with pytest.raises(InvalidInputError, match=r"late\.csv: row 2001: not valid UTF-8$"):
        read_all(path)
    bad: list[BadRow] = []
    recs = read_all(path, on_bad_row=bad.append, chunk_size=300)
    assert [(b.row, b.reason) for b in bad] == [(2001, "not valid UTF-8")]
    assert len(recs) == 2010  # every row after the bad one is read
    assert [r.row for r in recs[-11:]] == [2000, *range(2002, 2012)]
    assert recs[-1].data == {"text": "more9"}


def test_csv_header_that_is_not_utf8_names_file_and_line(tmp_path: Path) -> None:
    from veracity.ingest import sniff_format

    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"text,label\nhello,cat\ncaf\xe9,dog\n")
    assert sniff_format(latin) == "csv"  # only the header line is looked at
    with pytest.raises(InvalidInputError, match=r"latin\.csv: row 2: not valid UTF-8"):
        read_all(latin)
    header = tmp_path / "header.csv"
    header.write_bytes(b"text,caf\xe9\nhello,cat\n")
    with pytest.raises(InvalidInputError, match=r"header\.csv: header \(line 1\): not valid UTF-8"):
        sniff_format(header)
    with pytest.raises(InvalidInputError, match=r"header\.csv: header \(line 1\): not valid UTF-8"):
        read_all(header, "csv")


@pytest.mark.parametrize(
    "line",
    [
        b'{"text":"two","label":"caf\xe9"}',
        b'{"text":"two","id":"caf\xe9"}',
        b'{"text":"two","label":["a","caf\xe9"]}',
        b'{"text":"two","label":"\\udce9"}',  # a lone surrogate written as a JSON escape
        b'{"id":"x","data":{"text":"two"},"annotations":[{"value":"a","annotator":"caf\xe9"}]}',
    ],
)
def test_jsonl_id_or_label_that_is_not_utf8_is_a_bad_row(tmp_path: Path, line: bytes) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"text":"one","label":"a"}\n' + line + b'\n{"text":"three"}\n')
    with pytest.raises(InvalidInputError, match=r"in\.jsonl: row 2: not valid UTF-8"):
        read_all(path)
    bad: list[BadRow] = []
    assert [r.row for r in read_all(path, on_bad_row=bad.append)] == [1, 3]
    assert [(b.row, b.reason) for b in bad] == [(2, "not valid UTF-8")]


def test_crowd_answers_that_are_not_utf8_are_bad_rows(tmp_path: Path) -> None:
    path = tmp_path / "answers.jsonl"
    path.write_bytes(
        b'{"worker":"w1","task":"t1","label":"a"}\n{"worker":"w1","task":"t2","label":"caf\xe9"}\n'
        b'{"worker":"w2","task":"t1","label":"\\udce9"}\n{"worker":"w2","task":"t2","label":"b"}\n'
    )
    with pytest.raises(InvalidInputError, match=r"answers\.jsonl: row 2: not valid UTF-8"):
        read_all(path, "crowd")
    bad: list[BadRow] = []
    recs = read_all(path, "crowd", on_bad_row=bad.append)
    assert [(b.row, b.reason) for b in bad] == [(2, "not valid UTF-8"), (3, "not valid UTF-8")]
    assert [(r.external_id, [a["value"] for a in r.annotations]) for r in recs] == [("t1", ["a"]), ("t2", ["b"])]


def test_jsonl_byte_order_mark_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"text":"bom"}\n{"text":"x"}\n')
    assert [r.data for r in read_all(path)] == [{"text": "bom"}, {"text": "x"}]


@pytest.mark.parametrize("content", [b"PAR1notreally", b"", b"text,label\nhello,cat\n"])
def test_unreadable_parquet_names_the_file(tmp_path: Path, content: bytes) -> None:
    from veracity.ingest.sources import count_records

    path = tmp_path / "bad.parquet"
    path.write_bytes(content)
    assert count_records(path, "parquet") is None  # the progress estimate gives up; the reader says why
    with pytest.raises(InvalidInputError, match=r"bad\.parquet: not a readable Parquet file"):
        read_all(path, "parquet")

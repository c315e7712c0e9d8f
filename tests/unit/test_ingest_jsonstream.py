"""The streaming JSON array reader gives exactly what json.loads gives, whatever the block size."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from veracity.errors import InvalidInputError
from veracity.ingest._jsonstream import iter_json_array_file

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


def _whole(doc: Any) -> list[Any]:
    return [("whole", doc)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    values=st.lists(json_values, max_size=8),
    indent=st.sampled_from([None, 0, 2]),
    block=st.integers(min_value=1, max_value=40),
)
def test_elements_match_json_loads_at_every_block_size(
    tmp_path: Path, values: list[Any], indent: int | None, block: int
) -> None:
    path = tmp_path / "a.json"
    path.write_text(json.dumps(values, indent=indent, ensure_ascii=False) + "\n", encoding="utf-8")
    assert list(iter_json_array_file(path, None, not_array=_whole, block=block)) == json.loads(path.read_text())


@pytest.mark.parametrize("block", [1, 3, 1 << 20])
def test_numbers_cut_by_a_block_boundary_are_read_whole(tmp_path: Path, block: int) -> None:
    path = tmp_path / "n.json"
    path.write_text("[123456789, 0.000123e-7, -98765432109876543210, true,false,null]")
    assert list(iter_json_array_file(path, None, not_array=_whole, block=block)) == json.loads(path.read_text())


def test_a_document_that_is_not_an_array_goes_to_not_array(tmp_path: Path) -> None:
    path = tmp_path / "o.json"
    path.write_text('\n {"a": [1, 2]} \n')
    assert list(iter_json_array_file(path, None, not_array=_whole, block=4)) == [("whole", {"a": [1, 2]})]


@pytest.mark.parametrize(
    "text",
    ['[{"a": 1},\n {"b": 2}\n {"c": 3}]', '[1, 2,\n]', '[1, 2', '[1] x', '[\n"abc', '', '   ', '[1,\n\n  tru]'],
)
@pytest.mark.parametrize("block", [2, 1 << 20])
def test_malformed_json_names_the_line_and_column_json_names(tmp_path: Path, text: str, block: int) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(json.JSONDecodeError) as expected:
        json.loads(text)
    got: list[Any] = []
    with pytest.raises(InvalidInputError) as err:
        got.extend(iter_json_array_file(path, None, not_array=_whole, block=block))
    assert f"line {expected.value.lineno} column {expected.value.colno}" in err.value.message


def test_elements_before_an_error_are_yielded_first(tmp_path: Path) -> None:
    path = tmp_path / "late.json"
    path.write_text('[{"a": 1}, {"b": 2}, oops]')
    reader = iter_json_array_file(path, None, not_array=_whole, block=5)
    assert next(reader) == {"a": 1} and next(reader) == {"b": 2}
    with pytest.raises(InvalidInputError, match="line 1 column 22"):
        next(reader)


def test_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "latin.json"
    path.write_bytes(b'["caf\xe9"]')
    with pytest.raises(InvalidInputError, match="not UTF-8"):
        list(iter_json_array_file(path, None, not_array=_whole))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    doc=st.dictionaries(st.sampled_from(["images", "annotations", "other", "x"]), json_values, max_size=4),
    indent=st.sampled_from([None, 1]),
    block=st.integers(min_value=1, max_value=30),
)
def test_object_members_match_json_loads(tmp_path: Path, doc: dict[str, Any], indent: int | None, block: int) -> None:
    from veracity.ingest._jsonstream import iter_json_object_file

    path = tmp_path / "o.json"
    path.write_text(json.dumps(doc, indent=indent), encoding="utf-8")
    got: dict[str, Any] = {}
    for key, index, value in iter_json_object_file(path, None, streamed=frozenset({"images", "x"}), block=block):
        if index is None:
            got[key] = value
        elif index == 0:
            got[key] = []
        else:
            assert index == len(got[key]) + 1
            got[key].append(value)
    assert got == json.loads(path.read_text())


def test_coco_annotations_may_come_before_the_images(tmp_path: Path) -> None:
    """COCO is read in two streamed passes; key order in the file does not matter."""
    from _ingest_helpers import make_coco, read_all

    path = make_coco(tmp_path / "src", n_images=3)
    doc = json.loads(path.read_text())
    expected = read_all(path, "coco")
    reordered = {"categories": doc["categories"], "annotations": doc["annotations"][::-1], "info": {}}
    reordered["images"] = doc["images"]
    path.write_text(json.dumps(reordered, indent=1))
    got = read_all(path, "coco")
    assert [r.external_id for r in got] == [r.external_id for r in expected] == ["1", "2", "3"]
    for a, b in zip(got, expected, strict=True):
        assert sorted(json.dumps(x, sort_keys=True) for x in a.annotations) == sorted(
            json.dumps(x, sort_keys=True) for x in b.annotations
        )
    doc["annotations"].append({"id": 99, "image_id": 42, "category_id": 1, "bbox": [0, 0, 1, 1]})
    path.write_text(json.dumps(doc))
    with pytest.raises(InvalidInputError, match=r"annotation 7 \(id 99\): unknown image_id 42"):
        read_all(path, "coco")
    path.write_text(json.dumps([doc]))
    with pytest.raises(InvalidInputError, match="not a COCO file"):
        read_all(path, "coco")

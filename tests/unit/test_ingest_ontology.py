"""Ontology mapping: synonyms, case-folding, folded children, parents; unmapped labels reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from veracity.errors import InvalidInputError
from veracity.ingest import Ontology, SourceRecord, make_annotation

TOML = """
[options]
case_sensitive = false

[labels.cat]
synonyms = ["kitty", "Feline"]
children = ["tabby"]
parent = "animal"

[labels.dog]
synonyms = ["puppy"]
parent = "animal"

[labels.animal]

[map]
"Canis familiaris" = "dog"
"""


@pytest.fixture
def ontology(tmp_path: Path) -> Ontology:
    path = tmp_path / "onto.toml"
    path.write_text(TOML)
    return Ontology.from_toml(path)


def _rec(row: int, *anns: dict) -> SourceRecord:
    return SourceRecord.from_data({"text": f"t{row}"}, source="src.jsonl", row=row, annotations=list(anns))


def test_names_map_through_synonyms_case_and_children(ontology: Ontology) -> None:
    assert ontology.map_label("KITTY") == "cat"
    assert ontology.map_label(" feline ") == "cat"
    assert ontology.map_label("Tabby") == "cat"
    assert ontology.map_label("canis FAMILIARIS") == "dog"
    assert ontology.map_label("dog") == "dog"
    assert ontology.map_label("horse") is None
    assert ontology.ancestors("cat") == ["animal"]


def test_apply_rewrites_every_value_shape(ontology: Ontology) -> None:
    recs = [
        _rec(1, make_annotation("kitty", origin="o")),
        _rec(2, make_annotation(["puppy", "tabby"], origin="o")),
        _rec(3, make_annotation([{"x": 1, "y": 2, "w": 3, "h": 4, "label": "Feline"}], origin="o")),
        _rec(4, make_annotation(4, origin="o")),  # a rating carries no label names
    ]
    report = ontology.apply(recs)
    assert recs[0].annotations[0]["value"] == "cat"
    assert recs[1].annotations[0]["value"] == ["dog", "cat"]
    assert recs[2].annotations[0]["value"][0]["label"] == "cat"
    assert recs[3].annotations[0]["value"] == 4
    assert report.n_mapped == 3


def test_unmapped_labels_stop_with_the_full_list(ontology: Ontology) -> None:
    recs = [
        _rec(1, make_annotation("horse", origin="o")),
        _rec(2, make_annotation("cat", origin="o")),
        _rec(3, make_annotation(["horse", "cow"], origin="o")),
    ]
    with pytest.raises(InvalidInputError) as err:
        ontology.apply(recs)
    assert "2 unmapped label(s)" in str(err.value)
    assert "'horse' (2x, first at src.jsonl row 1)" in str(err.value)
    assert "'cow'" in str(err.value)
    assert sorted(err.value.details) == ["cow", "horse"]
    assert recs[1].annotations[0]["value"] == "cat"  # nothing was changed


def test_allow_unmapped_parks_annotations(ontology: Ontology) -> None:
    recs = [_rec(1, make_annotation("horse", origin="o"), make_annotation("kitty", origin="p"))]
    report = ontology.apply(recs, allow_unmapped=True)
    assert [a["value"] for a in recs[0].annotations] == ["cat"]
    (parked,) = recs[0].meta["parked_annotations"]
    assert parked["value"] == "horse"
    assert parked["reason"] == "unmapped label(s): horse"
    assert report.n_parked == 1
    assert list(report.unmapped) == ["horse"]


def test_bad_ontologies_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"maps to both 'a' and 'b'"):
        Ontology({"a": {"synonyms": ["x"]}, "b": {"synonyms": ["X"]}})
    with pytest.raises(InvalidInputError, match=r"parent 'zzz' is not a defined label"):
        Ontology({"a": {"parent": "zzz"}})
    with pytest.raises(InvalidInputError, match=r"parent cycle"):
        Ontology({"a": {"parent": "b"}, "b": {"parent": "a"}})
    bad = tmp_path / "bad.toml"
    bad.write_text("[labels.a\n")
    with pytest.raises(InvalidInputError, match=r"bad\.toml: malformed TOML"):
        Ontology.from_toml(bad)


def test_case_sensitive_option() -> None:
    onto = Ontology.from_dict({"labels": {"Cat": {}}, "options": {"case_sensitive": True}})
    assert onto.map_label("Cat") == "Cat"
    assert onto.map_label("cat") is None


def test_unreadable_mapping_files_name_the_file(tmp_path: Path) -> None:
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b'[labels.cat]\nsynonyms=["caf\xe9"]\n')
    with pytest.raises(InvalidInputError, match=r"latin\.toml: line 2: not valid UTF-8$"):
        Ontology.from_toml(latin)
    with pytest.raises(InvalidInputError, match=r"is a folder, expected a TOML mapping file"):
        Ontology.from_toml(tmp_path)
    wrong = tmp_path / "wrong.toml"
    wrong.write_text("[labels]\ncat = 3\n")
    with pytest.raises(InvalidInputError, match=r"wrong\.toml: label 'cat' must be a table") as err:
        Ontology.from_toml(wrong)
    assert "[" not in str(err.value)  # a console that renders markup would eat a "[labels.cat]"
    for doc in ("labels = 3\n", '[labels.cat]\n[map]\nkitty = 3\n', "options = 1\n[labels.cat]\n"):
        wrong.write_text(doc)
        with pytest.raises(InvalidInputError, match=r"wrong\.toml: "):
            Ontology.from_toml(wrong)

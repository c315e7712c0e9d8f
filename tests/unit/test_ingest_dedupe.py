"""Exact duplicates are reported with their first copy; near duplicates come back as clusters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from _ingest_helpers import make_image, read_all
from PIL import Image, ImageFilter

from veracity.ingest import (
    SourceRecord,
    dhash,
    exact_duplicates,
    minhash_signatures,
    near_duplicate_images,
    near_duplicate_texts,
    phash,
)


def _rec(text: str, row: int) -> SourceRecord:
    return SourceRecord.from_data({"text": text}, source="s.jsonl", row=row)


def test_exact_duplicates_are_returned_not_dropped() -> None:
    recs = [_rec("a", 1), _rec("b", 2), _rec("a", 3), _rec("a", 4)]
    unique, dups = exact_duplicates(recs)
    assert [r.row for r in unique] == [1, 2]
    assert [(d.record.row, d.first) for d in dups] == [(3, ("s.jsonl", 1)), (4, ("s.jsonl", 1))]


def test_exact_duplicates_across_chunks_and_known_hashes() -> None:
    seen: dict[str, object] = {}
    exact_duplicates([_rec("a", 1)], seen=seen)
    stored = {_rec("z", 0).content_hash: "item 42"}
    unique, dups = exact_duplicates(
        [_rec("a", 2), _rec("z", 3), _rec("c", 4)],
        seen=seen,
        known=lambda hs: {h: stored[h] for h in hs if h in stored},
    )
    assert [r.row for r in unique] == [4]
    assert [d.first for d in dups] == [("s.jsonl", 1), "item 42"]


def test_equal_images_share_a_hash(tmp_path: Path) -> None:
    make_image(tmp_path / "a" / "x.png", seed=5)
    make_image(tmp_path / "a" / "y.png", seed=5)
    make_image(tmp_path / "a" / "z.png", seed=6)
    recs = read_all(tmp_path / "a")
    _, dups = exact_duplicates(recs)
    assert [d.record.data["image"].endswith("y.png") for d in dups] == [True]


def test_minhash_estimates_jaccard() -> None:
    a = "the quick brown fox jumps over the lazy dog " * 3
    b = a.replace("lazy", "sleepy")
    sig = minhash_signatures([a, b, "completely different words here"], num_perm=256)
    assert sig.shape == (3, 256)
    assert (sig[0] == sig[1]).mean() > 0.5
    assert (sig[0] == sig[2]).mean() < 0.1
    again = minhash_signatures([a], num_perm=256)
    assert np.array_equal(again[0], sig[0])


def test_near_duplicate_text_clusters() -> None:
    base = [
        "Veracity imports every common format with provenance and de-duplication.",
        "A completely unrelated sentence about the weather in Lisbon in spring.",
        "Numbers: one two three four five six seven eight nine ten eleven twelve.",
    ]
    texts = [
        base[0],
        base[1],
        base[0].upper(),  # case-folded: identical shingles
        base[2],
        base[0].replace("common", "usual"),
        "short",
        base[2] + " thirteen",
    ]
    clusters = near_duplicate_texts(texts, threshold=0.6)
    assert clusters == [[0, 2, 4], [3, 6]]


def test_near_duplicate_texts_handles_tiny_inputs() -> None:
    assert near_duplicate_texts([]) == []
    assert near_duplicate_texts(["a"]) == []
    assert near_duplicate_texts(["", "", "ab"], threshold=1.0) == [[0, 1]]


def test_perceptual_hashes_survive_small_changes(tmp_path: Path) -> None:
    paths = [make_image(tmp_path / f"{i}.png", seed=i, size=(128, 96)) for i in range(4)]
    with Image.open(paths[0]) as im:
        im.resize((200, 150)).save(tmp_path / "resized.png")
        im.filter(ImageFilter.GaussianBlur(1)).convert("RGB").save(tmp_path / "blurred.jpg", quality=70)
    images = [*paths, tmp_path / "resized.png", tmp_path / "blurred.jpg"]
    for method in ("dhash", "phash"):
        assert near_duplicate_images(images, method=method, max_distance=10) == [[0, 4, 5]]
    assert bin(dhash(paths[0]) ^ dhash(tmp_path / "resized.png")).count("1") <= 10
    assert 0 <= phash(paths[1]) < 2**64


def test_near_duplicate_images_accepts_hashes() -> None:
    hashes = np.array([0b1111, 0b1110, 0xFF00FF00FF00FF00, 0b1111], dtype=np.uint64)
    assert near_duplicate_images(hashes, max_distance=1) == [[0, 1, 3]]

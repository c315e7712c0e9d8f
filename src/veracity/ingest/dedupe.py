"""De-duplication: exact (content hash), near-duplicate text (MinHash + LSH), near-duplicate images.

Nothing here drops records: every function returns the duplicates or the clusters it found, and
the caller decides what to do with them (the import service reports them).

References
----------
.. [1] A. Z. Broder, "On the resemblance and containment of documents", Compression and
   Complexity of Sequences 1997, pp. 21-29. https://doi.org/10.1109/SEQUEN.1997.666900
.. [2] J. Leskovec, A. Rajaraman, J. D. Ullman, *Mining of Massive Datasets*, ch. 3
   "Finding Similar Items" (LSH banding of MinHash signatures). http://www.mmds.org/
.. [3] N. Krawetz, "Kind of Like That" (dHash), The Hacker Factor Blog, 2013.
   https://www.hackerfactor.com/blog/index.php?/archives/529-Kind-of-Like-That.html
.. [4] N. Krawetz, "Looks Like It" (pHash by DCT), The Hacker Factor Blog, 2011.
   https://www.hackerfactor.com/blog/index.php?/archives/432-Looks-Like-It.html
.. [5] C. Zauner, "Implementation and Benchmarking of Perceptual Image Hash Functions",
   Master's thesis, Upper Austria University of Applied Sciences, 2010.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from PIL import Image

from veracity.errors import InvalidInputError
from veracity.ingest.records import SourceRecord
from veracity.types import RandomState

__all__ = [
    "Duplicate",
    "dhash",
    "exact_duplicates",
    "hash_images",
    "minhash_signatures",
    "near_duplicate_images",
    "near_duplicate_texts",
    "phash",
]

UInt64Array = npt.NDArray[np.uint64]


# --------------------------------------------------------------------------- exact
@dataclass(frozen=True, slots=True)
class Duplicate:
    """A record whose content hash was seen before: ``first`` names the earlier copy.

    ``first`` is ``(source, row)`` for a copy earlier in the same input, or whatever ``known``
    returned for it (for example an item id already in the catalogue).
    """

    record: SourceRecord
    first: Any

    @property
    def content_hash(self) -> str:
        return self.record.content_hash


def exact_duplicates(
    records: Iterable[SourceRecord],
    *,
    seen: dict[str, Any] | None = None,
    known: Callable[[list[str]], Mapping[str, Any]] | None = None,
) -> tuple[list[SourceRecord], list[Duplicate]]:
    """Split records into first copies and exact duplicates (equal ``content_hash``).

    Parameters
    ----------
    records : iterable of SourceRecord
        One chunk, or a whole source.
    seen : dict, optional
        Hashes seen in earlier chunks, updated in place (pass the same dict for every chunk).
    known : callable, optional
        Looks up hashes already stored elsewhere (the catalogue): given the chunk's hashes, returns
        ``{hash: reference}`` for those that exist.

    Returns
    -------
    unique : list of SourceRecord
        Records whose content was not seen before, in input order.
    duplicates : list of Duplicate
        The others, each naming its first copy. Duplicates are reported, never silently dropped.
    """
    records = list(records)
    keep_seen = seen is not None
    seen = {} if seen is None else seen
    existing = known([r.content_hash for r in records]) if known is not None and records else {}
    unique: list[SourceRecord] = []
    duplicates: list[Duplicate] = []
    local: dict[str, SourceRecord] = {}
    for rec in records:
        h = rec.content_hash
        if h in existing:
            duplicates.append(Duplicate(rec, existing[h]))
        elif h in local:
            first = local[h]
            duplicates.append(Duplicate(rec, (first.source, first.row)))
        elif h in seen:
            duplicates.append(Duplicate(rec, seen[h]))
        else:
            local[h] = rec
            unique.append(rec)
    if keep_seen:
        seen.update((h, (r.source, r.row)) for h, r in local.items())
    return unique, duplicates


# --------------------------------------------------------------------------- clustering helper
def _clusters(n: int, pairs_i: npt.NDArray[np.int64], pairs_j: npt.NDArray[np.int64]) -> list[list[int]]:
    """Connected components (size >= 2) of the graph with the given edges, by union-find."""
    parent = np.arange(n)

    def find(a: int) -> int:
        root = a
        while parent[root] != root:
            root = parent[root]
        while parent[a] != root:
            parent[a], a = root, parent[a]
        return int(root)

    for a, b in zip(pairs_i.tolist(), pairs_j.tolist(), strict=True):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    roots = np.array([find(i) for i in range(n)], dtype=np.int64)
    order = np.argsort(roots, kind="stable")
    _, starts, counts = np.unique(roots[order], return_index=True, return_counts=True)
    groups = [sorted(order[s : s + c].tolist()) for s, c in zip(starts, counts, strict=True) if c > 1]
    return sorted(groups, key=lambda g: g[0])


# --------------------------------------------------------------------------- text: MinHash + LSH
_MASK32 = np.uint64(0xFFFFFFFF)
_SPACE = re.compile(r"\s+")


def _shingle_hashes(text: str, k: int) -> UInt64Array:
    """Distinct 32-bit hashes of the character k-shingles of ``text`` (case-folded, spaces collapsed)."""
    norm = _SPACE.sub(" ", text.casefold()).strip()
    codes = np.frombuffer(norm.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    if codes.size < k:
        codes = np.concatenate([codes, np.zeros(k - codes.size, dtype=np.uint64)])
    windows = np.lib.stride_tricks.sliding_window_view(codes, k)
    powers = np.uint64(1_000_003) ** np.arange(k - 1, -1, -1, dtype=np.uint64)
    h = (windows * powers).sum(axis=1, dtype=np.uint64)  # polynomial hash, wraps mod 2**64
    h ^= h >> np.uint64(29)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(32)
    return np.unique(h & _MASK32)


def _rng(random_state: RandomState) -> np.random.Generator:
    return random_state if isinstance(random_state, np.random.Generator) else np.random.default_rng(random_state)


def minhash_signatures(
    texts: Sequence[str], *, num_perm: int = 128, shingle_size: int = 5, random_state: RandomState = 0
) -> npt.NDArray[np.uint32]:
    """MinHash signatures of character shingles (Broder 1997 [1]_).

    Each of ``num_perm`` hash functions ``h(x) = (a * x + b) mod 2**64 >> 32`` (multiply-shift
    universal hashing, ``a`` odd) is applied to every shingle; a signature entry is the minimum.
    The fraction of equal entries of two signatures estimates the Jaccard similarity of the
    shingle sets.

    Parameters
    ----------
    texts : sequence of str, length n_texts
    num_perm : int
        Number of hash functions (signature length).
    shingle_size : int
        Characters per shingle, after case-folding and collapsing white space.
    random_state : int, Generator or None
        Seed of the hash functions; the same seed gives comparable signatures.

    Returns
    -------
    ndarray of uint32, shape (n_texts, num_perm)
    """
    rng = _rng(random_state)
    a = rng.integers(1, 2**63, size=num_perm, dtype=np.uint64) | np.uint64(1)
    b = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64)
    out = np.empty((len(texts), num_perm), dtype=np.uint32)
    block: list[UInt64Array] = []
    block_start = 0
    budget = 1 << 16  # shingles per vectorised block: num_perm * budget * 8 bytes of scratch

    def flush(end: int) -> None:
        if not block:
            return
        lengths = np.array([len(s) for s in block])
        flat = np.concatenate(block)
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        vals = (a[:, None] * flat[None, :] + b[:, None]) >> np.uint64(32)
        out[block_start:end] = np.minimum.reduceat(vals, offsets, axis=1).T.astype(np.uint32)

    total = 0
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise InvalidInputError(f"texts[{i}] must be a string, got {type(text).__name__}")
        sh = _shingle_hashes(text, shingle_size)
        if total + sh.size > budget and block:
            flush(i)
            block, block_start, total = [], i, 0
        block.append(sh)
        total += sh.size
    flush(len(texts))
    return out


def _choose_bands(num_perm: int, threshold: float) -> int:
    """Bands b (b * r = num_perm) whose LSH threshold (1/b)**(1/r) sits a little below ``threshold``."""
    target = max(threshold - 0.15, 0.05)
    options = [b for b in range(1, num_perm + 1) if num_perm % b == 0]
    return min(options, key=lambda b: abs((1 / b) ** (b / num_perm) - target))


def near_duplicate_texts(
    texts: Sequence[str],
    *,
    threshold: float = 0.8,
    num_perm: int = 128,
    bands: int | None = None,
    shingle_size: int = 5,
    random_state: RandomState = 0,
) -> list[list[int]]:
    """Clusters of texts whose estimated Jaccard similarity is at least ``threshold``.

    Candidate pairs come from LSH banding [2]_: the signature is cut into ``bands`` bands of
    ``num_perm / bands`` rows and texts sharing any whole band are compared; a pair is kept when the
    fraction of equal signature entries reaches ``threshold``. Clusters are the connected
    components of kept pairs (single linkage).

    Parameters
    ----------
    texts : sequence of str, length n_texts
    threshold : float in (0, 1]
        Jaccard similarity of shingle sets above which two texts are near duplicates.
    num_perm, shingle_size, random_state
        As in :func:`minhash_signatures`.
    bands : int, optional
        Number of LSH bands (a divisor of ``num_perm``); chosen from ``threshold`` when omitted.

    Returns
    -------
    list of list of int
        Indices into ``texts``, each cluster sorted, clusters ordered by first index; texts with no
        near duplicate are not listed.

    Examples
    --------
    >>> near_duplicate_texts(["the cat sat on the mat", "The cat sat on the mat!", "dogs bark"])
    [[0, 1]]
    """
    if not 0 < threshold <= 1:
        raise InvalidInputError(f"threshold must be in (0, 1], got {threshold}")
    n = len(texts)
    if n < 2:
        return []
    bands = bands or _choose_bands(num_perm, threshold)
    if num_perm % bands:
        raise InvalidInputError(f"bands must divide num_perm, got {bands} and {num_perm}")
    sig = minhash_signatures(texts, num_perm=num_perm, shingle_size=shingle_size, random_state=random_state)
    rows = num_perm // bands
    cand_i: list[npt.NDArray[np.int64]] = []
    cand_j: list[npt.NDArray[np.int64]] = []
    for band in range(bands):
        part = np.ascontiguousarray(sig[:, band * rows : (band + 1) * rows])
        keys = part.view(np.dtype((np.void, part.dtype.itemsize * rows))).ravel()
        _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
        shared = counts[inverse] > 1
        if not shared.any():
            continue
        idx = np.flatnonzero(shared)
        order = idx[np.argsort(inverse[idx], kind="stable")]
        groups = np.split(order, np.flatnonzero(np.diff(inverse[order])) + 1)
        for g in groups:
            if g.size <= 64:
                ii, jj = np.triu_indices(g.size, k=1)
                cand_i.append(g[ii])
                cand_j.append(g[jj])
            else:  # a large bucket: compare everyone with its first member
                cand_i.append(np.full(g.size - 1, g[0]))
                cand_j.append(g[1:])
    if not cand_i:
        return []
    pi = np.concatenate(cand_i)
    pj = np.concatenate(cand_j)
    pairs = np.unique(np.stack([np.minimum(pi, pj), np.maximum(pi, pj)], axis=1), axis=0)
    pi, pj = pairs[:, 0], pairs[:, 1]
    similarity = np.empty(len(pi))
    step = 1 << 14
    for s in range(0, len(pi), step):
        similarity[s : s + step] = (sig[pi[s : s + step]] == sig[pj[s : s + step]]).mean(axis=1)
    keep = similarity >= threshold
    return _clusters(n, pi[keep], pj[keep])


# --------------------------------------------------------------------------- images: dHash / pHash
ImageLike = str | os.PathLike[str] | Image.Image


def _gray(image: ImageLike, size: tuple[int, int]) -> npt.NDArray[np.float64]:
    if isinstance(image, Image.Image):
        im = image.convert("L").resize(size, Image.Resampling.LANCZOS)
    else:
        try:
            with Image.open(Path(image)) as src:
                im = src.convert("L").resize(size, Image.Resampling.LANCZOS)
        except (OSError, ValueError) as exc:
            raise InvalidInputError(f"{image}: image cannot be decoded ({exc})") from None
    return np.asarray(im, dtype=np.float64)


def _bits_to_int(bits: npt.NDArray[np.bool_]) -> int:
    return int.from_bytes(np.packbits(bits.ravel()).tobytes(), "big")


def dhash(image: ImageLike, *, hash_size: int = 8) -> int:
    """Difference hash (Krawetz 2013 [3]_): ``hash_size**2`` bits, is each pixel brighter than its left neighbour.

    The image is turned grey and shrunk to ``(hash_size + 1) x hash_size`` first, so the hash
    survives rescaling, recompression and small colour changes.
    """
    px = _gray(image, (hash_size + 1, hash_size))
    return _bits_to_int(px[:, 1:] > px[:, :-1])


def _dct_matrix(n: int) -> npt.NDArray[np.float64]:
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    return np.cos(np.pi * (2 * i + 1) * k / (2 * n))


def phash(image: ImageLike, *, hash_size: int = 8, highfreq_factor: int = 4) -> int:
    """Perceptual hash (Krawetz 2011 [4]_, Zauner 2010 [5]_): signs of low DCT frequencies against their median.

    The image is turned grey and shrunk to ``(hash_size * highfreq_factor)`` squared pixels; the
    top-left ``hash_size x hash_size`` block of its 2-D DCT-II is compared with its median.
    """
    n = hash_size * highfreq_factor
    px = _gray(image, (n, n))
    c = _dct_matrix(n)
    low = (c @ px @ c.T)[:hash_size, :hash_size]
    return _bits_to_int(low > np.median(low))


def hash_images(
    images: Iterable[ImageLike], *, method: Literal["dhash", "phash"] = "dhash", hash_size: int = 8
) -> UInt64Array:
    """Perceptual hashes of images as a ``uint64`` array (``hash_size`` must be 8)."""
    if hash_size != 8:
        raise InvalidInputError(f"hash_images packs 64-bit hashes: hash_size must be 8, got {hash_size}")
    fn = dhash if method == "dhash" else phash
    if method not in ("dhash", "phash"):
        raise InvalidInputError(f"method must be 'dhash' or 'phash', got {method!r}")
    return np.array([fn(im, hash_size=hash_size) for im in images], dtype=np.uint64)


def near_duplicate_images(
    images: Sequence[ImageLike] | UInt64Array,
    *,
    method: Literal["dhash", "phash"] = "dhash",
    max_distance: int = 6,
) -> list[list[int]]:
    """Clusters of images whose 64-bit perceptual hashes differ in at most ``max_distance`` bits.

    Parameters
    ----------
    images : sequence of paths or PIL images, or uint64 array of hashes, length n_images
    method : {"dhash", "phash"}
        Hash to compute when ``images`` are not hashes already.
    max_distance : int
        Largest Hamming distance between two near duplicates (of 64 bits).

    Returns
    -------
    list of list of int
        Indices into ``images``, as in :func:`near_duplicate_texts`.
    """
    if isinstance(images, np.ndarray):
        hashes = images.astype(np.uint64, copy=False)
    else:
        hashes = hash_images(images, method=method)
    n = hashes.size
    if n < 2:
        return []
    pi: list[npt.NDArray[np.int64]] = []
    pj: list[npt.NDArray[np.int64]] = []
    step = max(1, (1 << 22) // n)
    for s in range(0, n, step):
        block = hashes[s : s + step]
        dist = np.bitwise_count(block[:, None] ^ hashes[None, :])
        ii, jj = np.nonzero(dist <= max_distance)
        ii = ii + s
        upper = jj > ii
        pi.append(ii[upper])
        pj.append(jj[upper])
    return _clusters(n, np.concatenate(pi), np.concatenate(pj))

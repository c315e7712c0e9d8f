"""numpy <-> Arrow conversions for the CLI's readers and writers that do not import pandas.

``pa.array(x)``, ``Array.to_numpy()`` and any compute call given a Python scalar first ask
pyarrow's pandas shim whether their argument is a pandas object, and the shim imports pandas
(about 0.3 s) when it is installed. That was a sixth of a ``veracity aggregate`` run on a million
answers, for files that never touch pandas. These helpers go through Arrow buffers instead.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

__all__ = ["as_objects", "from_numpy", "to_numpy"]


def from_numpy(values: np.ndarray) -> pa.Array:
    """A one-dimensional numpy array of numbers as an Arrow array (copied once, no nulls)."""
    x = np.array(values)  # a C-ordered copy that the Arrow buffer keeps alive
    if x.ndim != 1 or x.dtype.kind not in "iuf":
        raise TypeError(f"expected a 1-d array of numbers, got shape {x.shape} and dtype {x.dtype}")
    return pa.Array.from_buffers(pa.from_numpy_dtype(x.dtype), len(x), [None, pa.py_buffer(x)])


def to_numpy(values: pa.Array | pa.ChunkedArray, *, nulls_as_nan: bool = False) -> np.ndarray:
    """An Arrow array of numbers as a numpy array (a read-only view when it has one chunk and no nulls).

    Nulls are refused, or with ``nulls_as_nan`` become NaN in a float64 copy.
    """
    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    if not (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type)) or (arr.null_count and not nulls_as_nan):
        raise TypeError(f"expected numbers without nulls, got {arr.type} with {arr.null_count} nulls")
    dtype = np.dtype(arr.type.to_pandas_dtype())
    out = np.frombuffer(arr.buffers()[1], dtype=dtype, count=len(arr), offset=arr.offset * dtype.itemsize)
    if not arr.null_count:
        return out
    bits = np.unpackbits(np.frombuffer(arr.buffers()[0], dtype=np.uint8), bitorder="little")
    valid = bits[arr.offset : arr.offset + len(arr)].astype(bool)
    out = out.astype(np.float64)
    out[~valid] = np.nan
    return out


def as_objects(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """An Arrow array as a numpy object array of its Python values (strings stay ``str``)."""
    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    out = np.empty(len(arr), dtype=object)
    out[:] = arr.to_pylist()
    return out

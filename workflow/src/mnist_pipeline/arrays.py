"""Arrow arrays as numpy arrays and back, without pandas.

pyarrow's own conversions (`to_numpy`, `np.asarray`, `pa.array(ndarray)`) import pandas on their
first call when pandas is installed: about a third of a second, more than all the work of a job
that scores a split. An array of fixed-width numbers without nulls is a view of its data buffer
instead, both ways.
"""

import numpy as np
import pyarrow as pa

_DTYPES = {
    pa.int8(): np.int8,
    pa.int16(): np.int16,
    pa.int32(): np.int32,
    pa.int64(): np.int64,
    pa.uint8(): np.uint8,
    pa.uint16(): np.uint16,
    pa.uint32(): np.uint32,
    pa.uint64(): np.uint64,
    pa.float32(): np.float32,
    pa.float64(): np.float64,
}
_TYPES = {np.dtype(dtype): arrow_type for arrow_type, dtype in _DTYPES.items()}


def values(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The values of `array` as a read-only numpy array, as `array.to_numpy()` gives them.

    Numbers without nulls are viewed in place (a chunked array's chunks joined first); anything
    else goes through `to_numpy`, with its rules (nulls raise)."""
    if isinstance(array, pa.ChunkedArray):
        array = array.chunk(0) if array.num_chunks == 1 else array.combine_chunks()
    dtype = _DTYPES.get(array.type)
    if dtype is None or array.null_count:
        return array.to_numpy()
    if not len(array):
        return np.empty(0, dtype=dtype)
    return np.frombuffer(
        array.buffers()[1], dtype=dtype, count=len(array), offset=array.offset * dtype().itemsize
    )


def arrow(values: np.ndarray) -> pa.Array:
    """A 1-D numpy array of numbers as an Arrow array without nulls, as `pa.array(values)` gives
    it: sharing the memory of a contiguous array, a copy of any other."""
    values = np.ascontiguousarray(values)
    if values.ndim != 1 or values.dtype not in _TYPES:
        raise TypeError(
            f"expected a 1-D array of numbers, got {values.dtype} of shape {values.shape}"
        )
    return pa.Array.from_buffers(_TYPES[values.dtype], len(values), [None, pa.py_buffer(values)])

"""values() gives what to_numpy gives, without the pandas import to_numpy pays."""

import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest

from mnist_pipeline.arrays import arrow, values


@pytest.mark.parametrize("dtype", [np.uint8, np.int64, np.float32, np.int16, np.float64])
def test_values_are_what_to_numpy_gives(dtype):
    data = pa.array(np.arange(10).astype(dtype))
    for array in (data, data.slice(3, 4), data.slice(10)):
        got = values(array)
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, array.to_numpy())
    chunked = pa.chunked_array([data.slice(0, 3), data.slice(7)])
    np.testing.assert_array_equal(values(chunked), chunked.to_numpy())
    one = pa.chunked_array([data.slice(2, 5)])
    np.testing.assert_array_equal(values(one), one.to_numpy())
    assert values(pa.chunked_array([], type=data.type)).dtype == dtype


@pytest.mark.parametrize(
    "array", [pa.array([True, False]), pa.array([1, None], type=pa.int64())], ids=["bool", "null"]
)
def test_other_arrays_keep_to_numpys_rules(array):
    with pytest.raises(pa.ArrowInvalid):
        array.to_numpy()
    with pytest.raises(pa.ArrowInvalid):
        values(array)


@pytest.mark.parametrize("dtype", [np.uint8, np.int64, np.float32, np.int16, np.float64])
def test_arrow_is_what_pa_array_gives_and_shares_contiguous_memory(dtype):
    data = np.arange(12).astype(dtype)
    for part in (data, data[3:7], data[::2], data[:0]):
        got = arrow(part)
        assert got.equals(pa.array(part))
        assert got.null_count == 0
    shared = arrow(data)
    assert shared.buffers()[1].address == data.ctypes.data
    assert np.shares_memory(values(shared), data)


@pytest.mark.parametrize(
    "data", [np.zeros((2, 3), dtype=np.uint8), np.array([True]), np.array(["a"])], ids=str
)
def test_arrow_takes_only_1d_numbers(data):
    with pytest.raises(TypeError, match="1-D array of numbers"):
        arrow(data)


def test_values_load_no_pandas():
    """(Arrays made from Python or numpy objects would load it themselves: from bytes here.)"""
    code = (
        "import sys, numpy as np, pyarrow as pa\n"
        "from mnist_pipeline.arrays import arrow, values\n"
        "data = pa.py_buffer(np.arange(5, dtype=np.int64).tobytes())\n"
        "array = pa.Array.from_buffers(pa.int64(), 5, [None, data])\n"
        "chunked = pa.chunked_array([array.slice(0, 2), array.slice(3)])\n"
        "assert values(chunked).tolist() == [0, 1, 3, 4]\n"
        "assert arrow(np.arange(3, dtype=np.uint8)).to_pylist() == [0, 1, 2]\n"
        "assert 'pandas' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

"""Perceptron gates and XOR as a two-layer network (the book's chapter 2)."""

import subprocess
import sys

import numpy as np
import pytest

from mnist_pipeline.perceptron import (
    GATES,
    PerceptronError,
    gate,
    perceptron,
    truth_table,
    xor,
    xor_compositions,
)

# Truth tables written out by hand, inputs in the note's order 00, 10, 01, 11.
X1 = [0, 1, 0, 1]
X2 = [0, 0, 1, 1]
EXPECTED = {
    "AND": [0, 0, 0, 1],
    "NAND": [1, 1, 1, 0],
    "OR": [0, 1, 1, 1],
    "XOR": [0, 1, 1, 0],
}


def test_book_weights():
    assert GATES == {
        "AND": ((0.5, 0.5), -0.7),
        "NAND": ((-0.5, -0.5), 0.7),
        "OR": ((0.5, 0.5), -0.2),
    }


@pytest.mark.parametrize("name", ["AND", "NAND", "OR"])
def test_gate_truth_table(name):
    np.testing.assert_array_equal(gate(name, np.array(X1), np.array(X2)), EXPECTED[name])


def test_xor_truth_table():
    np.testing.assert_array_equal(xor(np.array(X1), np.array(X2)), EXPECTED["XOR"])


def test_scalars_give_0d_results():
    assert int(gate("AND", 1, 1)) == 1
    assert int(xor(1, 1)) == 0


def test_perceptron_threshold_is_strict():
    # 0.5*1 + 0.5*0 - 0.5 = 0 exactly: the book fires only when the sum is > 0.
    assert int(perceptron(1, 0, (0.5, 0.5), -0.5)) == 0
    assert int(perceptron(1, 0, (0.5, 0.5), -0.49)) == 1


def test_gates_broadcast():
    # A column of x1 against a row of x2 gives the whole 2x2 table at once.
    x1 = np.array([[0], [1]])
    x2 = np.array([[0, 1]])
    np.testing.assert_array_equal(xor(x1, x2), [[0, 1], [1, 0]])
    np.testing.assert_array_equal(gate("OR", x1, x2), [[0, 1], [1, 1]])


def test_truth_table():
    columns = {"x1": X1, "x2": X2} | EXPECTED
    expected = [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]
    rows = truth_table()
    assert rows == expected
    assert all(type(value) is int for row in rows for value in row.values())  # not numpy's


def test_xor_compositions():
    # Worked by hand on inputs 00, 10, 01, 11:
    #   AND, NAND -> OR:  NAND is NOT AND, so one of the two always fires: 1111
    #   AND, OR -> NAND:  (0,0) (0,1) (0,1) (1,1) -> NAND: 1 1 1 0
    #   NAND, OR -> AND:  (1,0) (1,1) (1,1) (0,1) -> AND:  0 1 1 0 = XOR
    # Swapping the hidden pair gives the same output.
    columns = ["hidden_1", "hidden_2", "output", "outputs", "computes_xor"]
    expected = [
        ("AND", "NAND", "OR", "1111", False),
        ("AND", "OR", "NAND", "1110", False),
        ("NAND", "AND", "OR", "1111", False),
        ("NAND", "OR", "AND", "0110", True),
        ("OR", "AND", "NAND", "1110", False),
        ("OR", "NAND", "AND", "0110", True),
    ]
    assert xor_compositions() == [dict(zip(columns, row, strict=True)) for row in expected]


def test_unknown_gate():
    with pytest.raises(PerceptronError, match=r"no gate named 'XNOR': choose one of AND, NAND, OR"):
        gate("XNOR", 0, 1)


def test_inputs_that_do_not_broadcast():
    with pytest.raises(PerceptronError, match=r"x1 \(3,\) and x2 \(2,\) do not broadcast"):
        gate("AND", [0, 1, 1], [0, 1])


def test_the_tables_load_no_pandas():
    """The job runs beside the first downloads: pandas' import would slow them."""
    code = (
        "import sys\n"
        "from mnist_pipeline.perceptron import truth_table, xor_compositions\n"
        "assert truth_table() and xor_compositions()\n"
        "assert 'pandas' not in sys.modules, 'pandas was loaded'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

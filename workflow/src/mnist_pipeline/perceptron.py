"""Logic gates as perceptrons, and XOR as a two-layer network of them (the book's chapter 2)."""

from itertools import permutations

import numpy as np

from .errors import MnistPipelineError

# The book's weights (w1, w2) and bias b for each single-layer gate.
GATES: dict[str, tuple[tuple[float, float], float]] = {
    "AND": ((0.5, 0.5), -0.7),
    "NAND": ((-0.5, -0.5), 0.7),
    "OR": ((0.5, 0.5), -0.2),
}

# The four inputs in the order the study note lists them: 00, 10, 01, 11.
INPUTS = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], dtype=np.int64)


class PerceptronError(MnistPipelineError, ValueError):
    """A gate was asked for by a name it does not have, or given inputs that do not fit."""


def perceptron(x1, x2, w: tuple[float, float], b: float) -> np.ndarray:
    """Fire (1) where w1*x1 + w2*x2 + b > 0, else 0; elementwise over broadcast arrays (int64)."""
    try:
        x1, x2 = np.broadcast_arrays(np.asarray(x1, dtype=float), np.asarray(x2, dtype=float))
    except ValueError as err:
        raise PerceptronError(
            f"perceptron inputs x1 {np.shape(x1)} and x2 {np.shape(x2)} do not broadcast "
            f"together: give arrays of the same shape (or a scalar)"
        ) from err
    return (w[0] * x1 + w[1] * x2 + b > 0).astype(np.int64)


def gate(name: str, x1, x2) -> np.ndarray:
    """The single-perceptron gate `name` ("AND", "NAND" or "OR") applied to x1, x2."""
    if name not in GATES:
        raise PerceptronError(f"no gate named {name!r}: choose one of {', '.join(GATES)}")
    w, b = GATES[name]
    return perceptron(x1, x2, w, b)


def compose(hidden_1: str, hidden_2: str, output: str, x1, x2) -> np.ndarray:
    """Two-layer network: gate `output` applied to the outputs of `hidden_1` and `hidden_2`."""
    return gate(output, gate(hidden_1, x1, x2), gate(hidden_2, x1, x2))


def xor(x1, x2) -> np.ndarray:
    """XOR as the book builds it: s1 = NAND(x1, x2), s2 = OR(x1, x2), y = AND(s1, s2)."""
    return compose("NAND", "OR", "AND", x1, x2)


def truth_table() -> list[dict[str, int]]:
    """Rows of x1, x2, AND, NAND, OR, XOR over the inputs 00, 10, 01, 11 (the note's order).

    Plain rows, as the csv module writes them (and pd.DataFrame shows them): the job that
    writes them runs beside the first downloads, and importing pandas would take the CPU they
    need.
    """
    x1, x2 = INPUTS[:, 0], INPUTS[:, 1]
    columns = {"x1": x1, "x2": x2} | {name: gate(name, x1, x2) for name in GATES}
    columns["XOR"] = xor(x1, x2)
    return [
        dict(zip(columns, map(int, row), strict=True))
        for row in np.column_stack([*columns.values()])
    ]


def xor_compositions() -> list[dict[str, str | bool]]:
    """Every two-layer arrangement of the three gates, and whether it computes XOR, as rows
    (see `truth_table`).

    Rows are the ordered pairs of distinct gates in the hidden layer, with the remaining gate as
    output (3 * 2 = 6 rows). `outputs` is the network's answers on 00, 10, 01, 11 as a string
    (XOR is "0110"). Only (NAND, OR) -> AND and (OR, NAND) -> AND compute XOR.
    """
    x1, x2 = INPUTS[:, 0], INPUTS[:, 1]
    target = "".join(map(str, x1 ^ x2))  # exclusive or by definition, not by the network
    rows = []
    for hidden_1, hidden_2 in permutations(GATES, 2):
        (output,) = set(GATES) - {hidden_1, hidden_2}
        outputs = "".join(map(str, compose(hidden_1, hidden_2, output, x1, x2)))
        rows.append(
            {
                "hidden_1": hidden_1,
                "hidden_2": hidden_2,
                "output": output,
                "outputs": outputs,
                "computes_xor": outputs == target,
            }
        )
    return rows

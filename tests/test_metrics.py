"""Confusion matrix, accuracy and per-class metrics against values worked out by hand."""

import io
from fractions import Fraction as F

import numpy as np
import pandas as pd
import pytest

from mnist_pipeline.metrics import (
    MetricsError,
    accuracy_summary,
    confusion_csv,
    confusion_matrix,
    per_class_csv,
    per_class_table,
)

# Four classes; class 3 is in the targets once but never predicted.
TARGET = [0, 0, 0, 1, 1, 2, 2, 2, 2, 3]
PREDICTED = [0, 0, 1, 1, 1, 2, 2, 0, 2, 2]
# Rows = true class, columns = predicted, counted from the pairs above:
#   true 0 -> predicted 0, 0, 1        true 1 -> 1, 1
#   true 2 -> 2, 2, 0, 2               true 3 -> 2
CM = np.array(
    [
        [2, 1, 0, 0],
        [0, 2, 0, 0],
        [1, 0, 3, 0],
        [0, 0, 1, 0],
    ]
)
NAMES = ["zero", "one", "two", "three"]


def test_confusion_matrix_by_hand():
    cm = confusion_matrix(TARGET, PREDICTED, n_classes=4)
    assert cm.dtype == np.int64
    np.testing.assert_array_equal(cm, CM)


def test_confusion_matrix_matches_a_plain_count():
    rng = np.random.default_rng(7)
    t = rng.integers(0, 10, 5000)
    p = rng.integers(0, 10, 5000)
    expected = np.zeros((10, 10), dtype=np.int64)
    for a, b in zip(t, p, strict=True):  # the slow obvious way, as a reference
        expected[a, b] += 1
    np.testing.assert_array_equal(confusion_matrix(t, p), expected)


def test_confusion_matrix_uint8_labels_do_not_overflow():
    # 29 * 30 + 29 = 899 would wrap around in uint8 arithmetic.
    t = np.array([29, 29, 0], dtype=np.uint8)
    p = np.array([29, 0, 29], dtype=np.uint8)
    cm = confusion_matrix(t, p, n_classes=30)
    assert cm[29, 29] == 1 and cm[29, 0] == 1 and cm[0, 29] == 1 and cm.sum() == 3


def test_confusion_matrix_empty():
    np.testing.assert_array_equal(confusion_matrix([], [], 3), np.zeros((3, 3)))


def test_labels_out_of_range_are_named():
    with pytest.raises(
        MetricsError, match=r"predicted has 3 value\(s\) outside 0\.\.9: -1 \(1x\), 10 \(2x\)"
    ):
        confusion_matrix([1, 2, 3, 4], [10, -1, 10, 4])
    with pytest.raises(MetricsError, match=r"target has 1 value\(s\) outside 0\.\.3: 4 \(1x\)"):
        confusion_matrix([4, 0], [0, 0], n_classes=4)


@pytest.mark.parametrize(
    ("target", "predicted", "n", "message"),
    [
        ([0, 1], [0], 10, r"target has 2 labels but predicted has 1"),
        ([[0, 1]], [[0, 1]], 10, r"target must be a 1-D array .* shape \(1, 2\)"),
        ([0.0, 1.5], [0, 1], 10, r"target must hold integer class indices, got dtype float64"),
        ([0], ["a"], 10, r"predicted must hold integer class indices, got dtype <U1"),
        ([0], [0], 0, r"n_classes must be at least 1, got 0"),
    ],
)
def test_bad_labels(target, predicted, n, message):
    with pytest.raises(MetricsError, match=message):
        confusion_matrix(target, predicted, n)


def test_accuracy_summary():
    # Diagonal 2 + 2 + 3 + 0 = 7 correct out of 10.
    assert accuracy_summary(CM) == {"correct": 7, "total": 10, "accuracy": 0.7}


def test_per_class_table_by_hand():
    table = per_class_table(CM, NAMES)
    assert list(table) == ["class", "name", "support", "precision", "recall", "f1"]
    assert table["name"] == [*NAMES, "macro avg", "weighted avg"]
    assert table["class"] == [0, 1, 2, 3, None, None]
    # support = row sums 3, 2, 4, 1 (total 10); column sums (times predicted) 3, 3, 4, 0.
    assert table["support"] == [3, 2, 4, 1, 10, 10]
    # precision = diagonal / column sum; class 3 is never predicted -> 0.
    precision = [F(2, 3), F(2, 3), F(3, 4), F(0)]
    # recall = diagonal / row sum
    recall = [F(2, 3), F(2, 2), F(3, 4), F(0, 1)]
    # f1 = 2pr / (p + r): 2/3; 2*(2/3)*1/(5/3) = 4/5; 3/4; 0
    f1 = [F(2, 3), F(4, 5), F(3, 4), F(0)]
    # macro: plain mean over the 4 classes
    #   precision (8 + 8 + 9 + 0)/12/4 = 25/48, recall (8 + 12 + 9 + 0)/12/4 = 29/48,
    #   f1 (40 + 48 + 45 + 0)/60/4 = 133/240
    macro = [F(25, 48), F(29, 48), F(133, 240)]
    # weighted by support 3, 2, 4, 1 over 10:
    #   precision (2 + 4/3 + 3 + 0)/10 = 19/30, recall (2 + 2 + 3 + 0)/10 = 7/10,
    #   f1 (2 + 8/5 + 3 + 0)/10 = 33/50
    weighted = [F(19, 30), F(7, 10), F(33, 50)]
    for column, per_class, m, w in zip(
        ["precision", "recall", "f1"], [precision, recall, f1], macro, weighted, strict=True
    ):
        expected = [float(v) for v in [*per_class, m, w]]
        np.testing.assert_allclose(table[column], expected, rtol=1e-12, err_msg=column)


def test_class_absent_everywhere_scores_zero():
    cm = np.array([[5, 0], [0, 0]])  # class 1 neither in targets nor in predictions
    table = pd.DataFrame(per_class_table(cm, ["a", "b"])).set_index("name")
    assert table.loc["b", ["precision", "recall", "f1"]].tolist() == [0.0, 0.0, 0.0]
    # macro averages the zero in: (1 + 0) / 2; weighted gives it weight 0 (support 0)
    assert table.loc["macro avg", "precision"] == 0.5
    assert table.loc["weighted avg", "precision"] == 1.0


def test_confusion_csv():
    text = confusion_csv(CM, NAMES)
    expected = (
        "true \\ predicted,zero,one,two,three\n"
        "zero,2,1,0,0\n"
        "one,0,2,0,0\n"
        "two,1,0,3,0\n"
        "three,0,0,1,0\n"
    )
    assert text == expected
    back = pd.read_csv(io.StringIO(text), index_col=0)
    np.testing.assert_array_equal(back.to_numpy(), CM)


def test_per_class_csv():
    text = per_class_csv(per_class_table(CM, NAMES))
    assert text.splitlines()[:2] == [
        "class,name,support,precision,recall,f1",
        "0,zero,3,0.666667,0.666667,0.666667",
    ]
    assert text.splitlines()[-1] == ",weighted avg,10,0.633333,0.700000,0.660000"
    assert text.endswith("\n") and "\r" not in text


# Names a CSV must quote (comma, quote, line break), and others it must not.
AWKWARD = ["T-shirt/top", 'say "hi"', "a,b", "two\nlines", " spaced ", "é", "true \\ x", "7"]


def test_the_csv_files_are_what_pandas_wrote():
    """per_class.csv and confusion_matrix.csv keep the bytes pandas' to_csv gave them."""
    rng = np.random.default_rng(5)
    cm = rng.integers(0, 1000, size=(len(AWKWARD), len(AWKWARD)))
    cm[3] = 0  # a class absent from the targets
    table = per_class_table(cm, AWKWARD)
    frame = pd.DataFrame({**table, "class": pd.array(table["class"], dtype="Int64")})
    assert per_class_csv(table) == frame.to_csv(index=False, float_format="%.6f")
    index = pd.Index(AWKWARD, name="true \\ predicted")
    assert confusion_csv(cm, AWKWARD) == pd.DataFrame(cm, index=index, columns=AWKWARD).to_csv()


@pytest.mark.parametrize(
    ("cm", "names", "message"),
    [
        (np.zeros((2, 3), dtype=int), ["a", "b"], r"square and non-empty, got shape \(2, 3\)"),
        (np.zeros((0, 0), dtype=int), [], r"square and non-empty, got shape \(0, 0\)"),
        (np.eye(2), ["a", "b"], r"integer counts, got dtype float64"),
        (np.array([[1, -1], [0, 1]]), ["a", "b"], r"negative counts"),
        (np.eye(2, dtype=int), ["a"], r"1 class names given for a 2x2 confusion matrix"),
        (np.eye(2, dtype=int), ["a", "a"], r"class names must be distinct"),
    ],
)
def test_bad_confusion_matrix(cm, names, message):
    for build in (confusion_csv, per_class_table):
        with pytest.raises(MetricsError, match=message):
            build(cm, names)


def test_empty_matrix_has_no_scores():
    cm = np.zeros((3, 3), dtype=np.int64)
    with pytest.raises(MetricsError, match=r"counts no predictions \(total 0\)"):
        accuracy_summary(cm)
    with pytest.raises(MetricsError, match=r"counts no predictions \(total 0\)"):
        per_class_table(cm, ["a", "b", "c"])

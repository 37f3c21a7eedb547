#!/usr/bin/python3
"""Writes test/fixtures/quality-oracle.json: quality metrics computed by scikit-learn on seeded
synthetic predictions, the oracle the service's own metric code (shared/src/quality/) is tested against.

Run from the repository root:  /usr/bin/python3 models/quality_oracle.py
Re-running reproduces the file byte for byte (numpy's legacy RandomState, fixed seeds).

Inputs, as the service holds them:
- classification: `labels`, `yTrue` (class indices) and `proba` (one row of probabilities per row).
  Every probability is a multiple of 2^-24, so it is exactly a float32, and every row sums to
  exactly 1 (scikit-learn's log_loss renormalises rows: here that is a no-op). The true class's
  probability is never 0 (no clipping either).
- regression: `yTrue` (JSON numbers) and `yPred` (float32 values, as a model's output).
How `expected` is computed: CONVENTIONS below (also written into the file as "conventions").
"""
import json
import math
import os
import sys

import numpy as np
import sklearn
from sklearn.metrics import (accuracy_score, brier_score_loss, confusion_matrix, f1_score, log_loss,
                             mean_absolute_error, mean_squared_error, precision_recall_fscore_support, r2_score)

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(os.path.dirname(HERE), "test", "fixtures", "quality-oracle.json")
ONE = 1 << 24  # probabilities are multiples of 2^-24
BINS = 10
# How `expected` is computed (in float64, from the inputs as written); also written into the file.
CONVENTIONS = [
    "predicted class = argmax of the row, the first index on ties (some rows tie on purpose)",
    "precision, recall, f1, support: precision_recall_fscore_support(labels=range(K), zero_division=0); "
    "macroF1 / weightedF1: f1_score(average='macro' / 'weighted', labels=range(K), zero_division=0), so a "
    "class never predicted or never true counts (as 0) in the macro mean",
    "confusion: confusion_matrix(labels=range(K)), rows = true class, columns = predicted class",
    "logLoss: log_loss(labels=range(K)), natural log; brier: mean over rows of the sum over classes of "
    "(p_k - onehot_k)^2 (for two classes, twice sklearn's brier_score_loss of the positive class)",
    "meanConfidence: mean of each row's largest probability; calibration: 10 equal-width bins of that "
    "confidence, bin = min(floor(10 * confidence), 9), i.e. [0, 0.1), ..., [0.8, 0.9), [0.9, 1.0]; only "
    "non-empty bins are listed, with their rows, mean confidence and accuracy; calibrationError (ECE) = "
    "sum over bins of rows / N * |accuracy - confidence| (10 * c is exact in float64 for a float32 c, so "
    "any implementation bins these inputs alike; confidences of exactly 0.5 and 1.0 occur)",
    "regression: mae = mean_absolute_error, rmse = sqrt(mean_squared_error), r2 = r2_score, "
    "bias = mean(yPred - yTrue)",
]


# ---------------------------------------------------------------------------------- probabilities
def quantise(p):
    """Rows of probabilities as multiples of 2^-24 that sum to exactly 1, each entry >= 2^-24:
    floor to counts, then the counts still missing go to the largest remainders (lowest index first)."""
    p = np.asarray(p, dtype=np.float64)
    out = np.empty_like(p)
    for i, row in enumerate(p):
        k = len(row)
        scaled = row / row.sum() * (ONE - k)       # leave one count for every entry
        counts = np.floor(scaled).astype(np.int64) + 1
        missing = ONE - int(counts.sum())
        order = sorted(range(k), key=lambda j: (-(scaled[j] - math.floor(scaled[j])), j))
        for j in order[:missing]:
            counts[j] += 1
        assert counts.sum() == ONE and (counts >= 1).all()
        out[i] = counts / ONE
    assert (out.astype(np.float32).astype(np.float64) == out).all() and (out.sum(axis=1) == 1.0).all()
    return out


def exact_row(counts):
    """A hand-made row from integer counts out of 2^24 (ties, confidence 0.5 or 1.0)."""
    assert sum(counts) == ONE
    return [c / ONE for c in counts]


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def synthetic(rng, n, k, class_weights, signal, noise):
    """True classes drawn with `class_weights`; logits = signal on the true class + gaussian noise."""
    y = rng.choice(k, size=n, p=np.asarray(class_weights) / np.sum(class_weights))
    z = rng.normal(0.0, noise, size=(n, k))
    z[np.arange(n), y] += signal
    return y, z


# ----------------------------------------------------------------------------------------- metrics
def classification_expected(y, proba, k):
    y = np.asarray(y)
    proba = np.asarray(proba, dtype=np.float64)
    n = len(y)
    pred = proba.argmax(axis=1)  # first index on ties
    labels = list(range(k))
    precision, recall, f1, support = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    onehot = np.eye(k)[y]
    brier = float(((proba - onehot) ** 2).sum(axis=1).mean())
    if k == 2:
        assert abs(brier - 2 * brier_score_loss(y, proba[:, 1])) < 1e-12
    confidence = proba.max(axis=1)
    correct = (pred == y).astype(np.float64)
    bins = np.minimum(np.floor(confidence * BINS).astype(np.int64), BINS - 1)
    calibration, ece = [], 0.0
    for b in range(BINS):
        members = bins == b
        rows = int(members.sum())
        if rows == 0:
            continue
        conf, acc = float(confidence[members].mean()), float(correct[members].mean())
        calibration.append({"from": b / BINS, "to": (b + 1) / BINS, "rows": rows, "confidence": conf, "accuracy": acc})
        ece += rows / n * abs(acc - conf)
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "precision": [float(v) for v in precision],
        "recall": [float(v) for v in recall],
        "f1": [float(v) for v in f1],
        "support": [int(v) for v in support],
        "macroF1": float(f1_score(y, pred, labels=labels, average="macro", zero_division=0)),
        "weightedF1": float(f1_score(y, pred, labels=labels, average="weighted", zero_division=0)),
        "confusion": confusion_matrix(y, pred, labels=labels).tolist(),
        "logLoss": float(log_loss(y, proba, labels=labels)),
        "brier": brier,
        "meanConfidence": float(confidence.mean()),
        "calibrationError": float(ece),
        "calibration": calibration,
    }


def regression_expected(y_true, y_pred):
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    return {
        "mae": float(mean_absolute_error(y_true, y_pred)),
        "rmse": float(math.sqrt(mean_squared_error(y_true, y_pred))),
        "r2": float(r2_score(y_true, y_pred)),
        "bias": float((y_pred - y_true).mean()),
    }


# ------------------------------------------------------------------------------------------- cases
def classification_case(name, description, labels, y, proba):
    y = [int(v) for v in y]
    proba = np.asarray(proba, dtype=np.float64)
    assert proba.shape == (len(y), len(labels))
    assert all(proba[i, t] > 0 for i, t in enumerate(y)), "a true class with probability 0 would be clipped"
    return {"name": name, "description": description, "labels": labels, "yTrue": y,
            "proba": [[float(v) for v in row] for row in proba],
            "expected": classification_expected(y, proba, len(labels))}


def binary_case():
    rng = np.random.RandomState(1)
    y, z = synthetic(rng, 200, 2, [0.65, 0.35], signal=2.0, noise=1.2)
    proba = quantise(softmax(z))
    # Exact ties (confidence 0.5: the first class is predicted) and a certain, correct row (confidence 1.0).
    for i in (10, 11, 12):
        proba[i] = exact_row([ONE // 2, ONE // 2])
    y[13], proba[13] = 0, exact_row([ONE, 0])
    return classification_case("binary", "200 rows, two classes (35 % positive), rows 10-12 tie at 0.5, row 13 is certain",
                               ["ham", "spam"], y, proba)


def three_class_case():
    rng = np.random.RandomState(2)
    y, z = synthetic(rng, 150, 3, [1, 1, 1], signal=2.5, noise=1.0)
    proba = quantise(softmax(z))
    c = 6710886  # rows 0-1: the top two classes tie (1 and 2), the first of them is predicted
    proba[0] = exact_row([ONE - 2 * c, c, c])
    proba[1] = exact_row([c, c, ONE - 2 * c])  # classes 0 and 1 tie: 0 is predicted
    return classification_case("three-class", "150 rows, three balanced classes, rows 0-1 tie between two classes",
                               ["setosa", "versicolor", "virginica"], y, proba)


def ten_class_case():
    rng = np.random.RandomState(3)
    weights = [1.0 + 0.1 * j for j in range(10)]
    y, z = synthetic(rng, 500, 10, weights, signal=3.0, noise=1.1)
    proba = quantise(softmax(z))
    labels = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    return classification_case("ten-class", "500 rows, ten unevenly frequent classes", labels, y, proba)


def never_predicted_case():
    rng = np.random.RandomState(4)
    y, z = synthetic(rng, 120, 4, [3, 3, 3, 1], signal=2.0, noise=1.0)
    z[:, 3] -= 6.0  # class 3 occurs but is never the argmax: its precision is 0/0 (zero_division=0)
    proba = quantise(softmax(z))
    assert (y == 3).any() and not (proba.argmax(axis=1) == 3).any()
    return classification_case("never-predicted", "120 rows, four classes; class 3 is true in some rows but never predicted",
                               ["a", "b", "c", "d"], y, proba)


def absent_class_case():
    rng = np.random.RandomState(5)
    y, z = synthetic(rng, 120, 4, [1, 1, 1, 0], signal=2.0, noise=1.0)
    z[rng.rand(120) < 0.1, 3] += 4.0  # class 3 is never true but sometimes predicted: its recall is 0/0
    proba = quantise(softmax(z))
    assert not (y == 3).any() and (proba.argmax(axis=1) == 3).any()
    return classification_case("absent-class", "120 rows, four classes; class 3 is never true but sometimes predicted",
                               ["a", "b", "c", "d"], y, proba)


def regression_case(name, description, y_true, y_pred):
    y_pred = np.asarray(y_pred, dtype=np.float32).astype(np.float64)
    y_true = [float(v) for v in y_true]
    return {"name": name, "description": description, "yTrue": y_true, "yPred": [float(v) for v in y_pred],
            "expected": regression_expected(y_true, y_pred)}


def progression_case():
    rng = np.random.RandomState(6)
    y = rng.randint(25, 347, size=300).astype(np.float64)  # integer targets, as in load_diabetes
    pred = 0.4 * y + 0.6 * 152.0 + rng.normal(0.0, 45.0, size=300)
    return regression_case("progression", "300 rows, integer targets 25-346, predictions shrunk towards 152 (biased low)",
                           y, pred)


def signed_case():
    rng = np.random.RandomState(7)
    y = np.round(rng.normal(-3.0, 10.0, size=300), 4)  # signed targets with four decimals
    pred = 1.1 * y + 2.5 + rng.normal(0.0, 3.0, size=300)
    return regression_case("signed-biased", "300 rows, signed targets, predictions biased upwards (bias ~ +2.2)", y, pred)


def main():
    oracle = {
        "generatedBy": f"models/quality_oracle.py, scikit-learn {sklearn.__version__}",
        "conventions": CONVENTIONS,
        "classification": [binary_case(), three_class_case(), ten_class_case(), never_predicted_case(), absent_class_case()],
        "regression": [progression_case(), signed_case()],
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8", newline="\n") as f:
        f.write(json.dumps(oracle, separators=(",", ":"), allow_nan=False) + "\n")
    print(f"wrote {os.path.relpath(OUT, os.path.dirname(HERE))}: {os.path.getsize(OUT)} bytes")
    for case in oracle["classification"]:
        e = case["expected"]
        print(f"  {case['name']}: accuracy {e['accuracy']:.4f} macroF1 {e['macroF1']:.4f} logLoss {e['logLoss']:.4f} "
              f"ECE {e['calibrationError']:.4f} bins {len(e['calibration'])}")
    for case in oracle["regression"]:
        e = case["expected"]
        print(f"  {case['name']}: mae {e['mae']:.4f} rmse {e['rmse']:.4f} r2 {e['r2']:.4f} bias {e['bias']:.4f}")


if __name__ == "__main__":
    main()

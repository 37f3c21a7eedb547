#!/usr/bin/python3
"""iris v3: scikit-learn multinomial logistic regression on a stratified 70 % split, converted by
hand to ONNX (MatMul + Add + Softmax). A candidate version: not the default (version 2 stays it).

Run from the repository root:  /usr/bin/python3 models/iris/train_v3_logistic.py
Writes models/iris/3/{model.onnx, model.json, golden.json, evaluation.ndjson} and baseline.json
(the 105 training rows' reference statistics, through `npm run baseline`). Deterministic (lbfgs on
fixed data, fixed split seed): re-running reproduces every file byte for byte.

Split: train_test_split(test_size=0.3, random_state=0, stratify=target) of the 150 rows (the
function models/evaluation_sets.py shares): 105 rows to train on, 45 held out (15 per species),
which are the evaluation set and the held-out accuracy in the manifest.

Conversion: LogisticRegression(multi_class="multinomial").predict_proba(x) = softmax(x·coef_ᵀ +
intercept_), so the graph is  input float32 [N, 4] -> MatMul(coef_ᵀ [4, 3]) -> Add(intercept_ [3])
-> Softmax(axis=1) -> probabilities float32 [N, 3]  (opset 17, weights rounded to float32).
"""
import json
import os
import sys

import numpy as np
import onnx
import sklearn
from onnx import TensorProto, helper, numpy_helper
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

SEED = 0
C = 1.0
MAX_ITER = 1000
OPSET = 17

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(HERE, "3")
sys.dont_write_bytecode = True  # no __pycache__ in the model repository
sys.path.insert(0, os.path.dirname(HERE))
from evaluation_sets import (IRIS_TEST_SIZE, iris_held_out_evaluation, iris_split,  # noqa: E402
                             write_evaluation)  # (models/evaluation_sets.py)
from reference_baseline import write_baseline  # noqa: E402  (models/reference_baseline.py)

FEATURES = [
    ("sepal_length", "sepal length in cm"),
    ("sepal_width", "sepal width in cm"),
    ("petal_length", "petal length in cm"),
    ("petal_width", "petal width in cm"),
]
LABELS = ["setosa", "versicolor", "virginica"]


def logistic_to_onnx(clf):
    assert list(clf.classes_) == list(range(len(LABELS)))
    coef = clf.coef_.T.astype(np.float32)        # [4, 3]
    intercept = clf.intercept_.astype(np.float32)  # [3]
    nodes = [
        helper.make_node("MatMul", ["input", "coef"], ["xw"], name="matmul"),
        helper.make_node("Add", ["xw", "intercept"], ["logits"], name="add"),
        helper.make_node("Softmax", ["logits"], ["probabilities"], name="softmax", axis=1),
    ]
    graph = helper.make_graph(
        nodes, "iris_logistic_regression",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", len(LABELS)])],
        initializer=[numpy_helper.from_array(coef, "coef"), numpy_helper.from_array(intercept, "intercept")])
    model = helper.make_model(
        graph, producer_name="models/iris/train_v3_logistic.py",
        producer_version=f"scikit-learn {sklearn.__version__}",
        opset_imports=[helper.make_opsetid("", OPSET)])
    onnx.checker.check_model(model, full_check=True)
    return model


def graph_proba(clf, X):
    """What the graph computes, in numpy float32 (a check of the conversion, not the golden values)."""
    logits = X.astype(np.float32) @ clf.coef_.T.astype(np.float32) + clf.intercept_.astype(np.float32)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def main():
    iris = load_iris()
    assert list(iris.target_names) == LABELS
    X64, y = iris.data, iris.target
    train, test = iris_split(y)
    assert len(train) == 105 and len(test) == 45

    clf = LogisticRegression(C=C, max_iter=MAX_ITER, multi_class="multinomial", random_state=SEED)
    clf.fit(X64[train], y[train])
    proba = clf.predict_proba(X64)  # float64 [150, 3], every row
    pred = proba.argmax(axis=1)
    assert (pred == clf.predict(X64)).all()
    held_out = float((pred[test] == y[test]).mean())
    trained = float((pred[train] == y[train]).mean())
    print(f"accuracy: held-out {held_out:.4f} ({int((pred[test] == y[test]).sum())}/{len(test)}), "
          f"training {trained:.4f} ({len(train)} rows)")
    assert held_out >= 0.9, held_out
    diff = float(np.abs(graph_proba(clf, X64) - proba).max())
    print(f"float32 graph vs predict_proba: max abs diff {diff:.2e}")
    assert diff < 1e-6, diff

    os.makedirs(OUT, exist_ok=True)
    onnx_path = os.path.join(OUT, "model.onnx")
    onnx.save(logistic_to_onnx(clf), onnx_path)

    framework = f"scikit-learn {sklearn.__version__}"
    test_pct = int(IRIS_TEST_SIZE * 100)
    manifest = {
        "name": "iris",
        "version": "3",
        "default": False,
        "task": "classification",
        "description": ("Iris species from four flower measurements (multinomial logistic regression, "
                        f"trained on a stratified {100 - test_pct} % split)."),
        "features": [
            {"name": n, "type": "number", "minimum": 0, "maximum": 10, "description": d}
            for n, d in FEATURES
        ],
        "inputs": [
            {"name": "input", "dtype": "float32", "shape": [-1, 4],
             "features": [n for n, _ in FEATURES]},
        ],
        "outputs": [
            {"name": "probabilities", "dtype": "float32", "shape": [-1, 3]},
        ],
        "result": {"kind": "classification", "output": "probabilities", "labels": LABELS},
        "metrics": {"accuracy": round(held_out, 4),
                    "evaluation": (f"the {len(test)} rows of the iris data set held out from training "
                                   f"(stratified {test_pct} % split, train_test_split(random_state={SEED})); "
                                   f"accuracy on the {len(train)} training rows {trained:.4f}")},
        "evaluation": write_evaluation("iris", "3", *iris_held_out_evaluation()),
        "training": {"script": "models/iris/train_v3_logistic.py", "framework": framework,
                     "seed": SEED,
                     "dataset": (f"scikit-learn load_iris(), the {len(train)} rows of a stratified "
                                 f"{100 - test_pct} % split, train_test_split(test_size={IRIS_TEST_SIZE}, "
                                 f"random_state={SEED}, stratify=target)"),
                     "estimator": f"LogisticRegression(C={C}, multi_class='multinomial', lbfgs)"},
    }
    write_json(os.path.join(OUT, "model.json"), manifest)

    golden = {
        "framework": framework,
        "description": ("all 150 iris rows (105 trained on, 45 held out); outputs are scikit-learn's "
                        "predict_proba"),
        "inputs": [{n: float(v) for (n, _), v in zip(FEATURES, row)} for row in X64],
        "outputs": {"probabilities": [[float(p) for p in row] for row in proba]},
        "labels": [LABELS[int(i)] for i in pred],
    }
    write_json(os.path.join(OUT, "golden.json"), golden)
    print("wrote", os.path.relpath(OUT, REPO), "model.onnx", os.path.getsize(onnx_path), "bytes")
    write_baseline("iris", "3", [golden["inputs"][i] for i in train],
                   f"scikit-learn load_iris(), the {len(train)} rows of the stratified {100 - test_pct} % "
                   f"training split (train_test_split(random_state={SEED}); the training data)")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""iris v2: a scikit-learn random forest, converted by hand to an ai.onnx.ml TreeEnsembleClassifier.

Run from the repository root:  /usr/bin/python3 models/iris/train_v2_forest.py
Writes models/iris/2/{model.onnx, model.json, golden.json, evaluation.ndjson} and baseline.json (the training rows'
reference statistics, through `npm run baseline`). Deterministic (fixed random_state).

Conversion notes (no skl2onnx here, so the graph is built with onnx.helper):
- sklearn's RandomForestClassifier.predict_proba is the mean over trees of each tree's
  predict_proba, and a tree's predict_proba is its leaf's class counts divided by their sum.
  So every leaf gets class weights  value / value.sum() / n_estimators  and post_transform is
  NONE: ORT's sum over trees is then exactly the mean sklearn computes.
- sklearn casts X to float32 and tests  float32(x) <= float64 threshold;  ORT tests float32 against
  float32 thresholds. Rounding each threshold DOWN to the largest float32 <= it keeps every
  comparison identical (nearest-rounding flips rows lying on a threshold, e.g. x = 1.7).
- No ZipMap: outputs are label int64 [N] and probabilities float32 [N, 3].
"""
import json
import os
import sys

import numpy as np
import onnx
import sklearn
from onnx import TensorProto, helper
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.tree._tree import TREE_LEAF

SEED = 0
N_ESTIMATORS = 25
MAX_DEPTH = 5
ML_OPSET = 3  # ai.onnx.ml
OPSET = 17    # default domain (no default-domain ops are used, but the import is declared)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(HERE, "2")
sys.dont_write_bytecode = True  # no __pycache__ in the model repository
sys.path.insert(0, os.path.dirname(HERE))
from evaluation_sets import iris_all_rows_evaluation, write_evaluation  # noqa: E402  (models/evaluation_sets.py)
from reference_baseline import write_baseline  # noqa: E402  (models/reference_baseline.py)

FEATURES = [
    ("sepal_length", "sepal length in cm"),
    ("sepal_width", "sepal width in cm"),
    ("petal_length", "petal length in cm"),
    ("petal_width", "petal width in cm"),
]
LABELS = ["setosa", "versicolor", "virginica"]


def float32_down(t):
    """Largest float32 <= t (t is a float64)."""
    f = np.float32(t)
    if float(f) > t:
        f = np.nextafter(f, np.float32(-np.inf), dtype=np.float32)
    assert float(f) <= t and float(np.nextafter(f, np.float32(np.inf), dtype=np.float32)) > t
    return float(f)


def forest_to_onnx(forest):
    n_trees = len(forest.estimators_)
    n_classes = forest.n_classes_
    assert list(forest.classes_) == list(range(n_classes))
    a = {k: [] for k in ("nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_values",
                         "nodes_modes", "nodes_truenodeids", "nodes_falsenodeids",
                         "class_treeids", "class_nodeids", "class_ids", "class_weights")}
    for t, est in enumerate(forest.estimators_):
        tree = est.tree_
        for i in range(tree.node_count):
            left, right = int(tree.children_left[i]), int(tree.children_right[i])
            a["nodes_treeids"].append(t)
            a["nodes_nodeids"].append(i)
            if left == TREE_LEAF:
                a["nodes_featureids"].append(0)
                a["nodes_values"].append(0.0)
                a["nodes_modes"].append("LEAF")
                a["nodes_truenodeids"].append(0)
                a["nodes_falsenodeids"].append(0)
                value = tree.value[i, 0, :].astype(np.float64)
                frac = value / value.sum()
                for c in range(n_classes):
                    a["class_treeids"].append(t)
                    a["class_nodeids"].append(i)
                    a["class_ids"].append(c)
                    a["class_weights"].append(float(frac[c] / n_trees))
            else:
                a["nodes_featureids"].append(int(tree.feature[i]))
                a["nodes_values"].append(float32_down(float(tree.threshold[i])))
                a["nodes_modes"].append("BRANCH_LEQ")  # x <= threshold -> left (true) child
                a["nodes_truenodeids"].append(left)
                a["nodes_falsenodeids"].append(right)

    node = helper.make_node(
        "TreeEnsembleClassifier", ["input"], ["label", "probabilities"],
        domain="ai.onnx.ml", name="forest",
        classlabels_int64s=list(range(n_classes)), post_transform="NONE", **a)
    graph = helper.make_graph(
        [node], "iris_random_forest",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
         helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", n_classes])])
    model = helper.make_model(
        graph, producer_name="models/iris/train_v2_forest.py",
        producer_version=f"scikit-learn {sklearn.__version__}",
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("ai.onnx.ml", ML_OPSET)])
    onnx.checker.check_model(model, full_check=True)
    return model


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def main():
    iris = load_iris()
    assert list(iris.target_names) == LABELS
    X64, y = iris.data, iris.target

    forest = RandomForestClassifier(n_estimators=N_ESTIMATORS, max_depth=MAX_DEPTH,
                                    random_state=SEED, n_jobs=1)
    forest.fit(X64, y)
    proba = forest.predict_proba(X64)  # float64 [150, 3]
    pred = forest.predict(X64)
    assert (pred == proba.argmax(axis=1)).all()
    accuracy = float((pred == y).mean())
    print(f"accuracy on all 150 rows {accuracy:.4f}")
    assert accuracy >= 0.95, accuracy

    os.makedirs(OUT, exist_ok=True)
    onnx_path = os.path.join(OUT, "model.onnx")
    onnx.save(forest_to_onnx(forest), onnx_path)

    framework = f"scikit-learn {sklearn.__version__}"
    manifest = {
        "name": "iris",
        "version": "2",
        "default": True,
        "task": "classification",
        "description": (f"Iris species from four flower measurements (random forest, "
                        f"{N_ESTIMATORS} trees of depth <= {MAX_DEPTH})."),
        "features": [
            {"name": n, "type": "number", "minimum": 0, "maximum": 10, "description": d}
            for n, d in FEATURES
        ],
        "inputs": [
            {"name": "input", "dtype": "float32", "shape": [-1, 4],
             "features": [n for n, _ in FEATURES]},
        ],
        "outputs": [
            {"name": "label", "dtype": "int64", "shape": [-1]},
            {"name": "probabilities", "dtype": "float32", "shape": [-1, 3]},
        ],
        "result": {"kind": "classification", "output": "probabilities", "labels": LABELS},
        "metrics": {"accuracy": round(accuracy, 4),
                    "evaluation": "all 150 rows of the iris data set (training data)"},
        "evaluation": write_evaluation("iris", "2", *iris_all_rows_evaluation("2")),
        "training": {"script": "models/iris/train_v2_forest.py", "framework": framework,
                     "seed": SEED, "dataset": "scikit-learn load_iris()"},
    }
    write_json(os.path.join(OUT, "model.json"), manifest)

    golden = {
        "framework": framework,
        "description": "all 150 iris rows",
        "inputs": [{n: float(v) for (n, _), v in zip(FEATURES, row)} for row in X64],
        "outputs": {
            "label": [int(p) for p in pred],
            "probabilities": [[float(p) for p in row] for row in proba],
        },
        "labels": [LABELS[int(i)] for i in pred],
    }
    write_json(os.path.join(OUT, "golden.json"), golden)
    print("wrote", os.path.relpath(OUT, REPO), "model.onnx", os.path.getsize(onnx_path), "bytes")
    write_baseline("iris", "2", golden["inputs"], "scikit-learn load_iris(), all 150 rows (the training data)")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""diabetes v1: ordinary least squares on scikit-learn's bundled diabetes data (a regression model),
converted by hand to ONNX (Cast, MatMul, Add in float64, Cast to float32).

Run from the repository root:  /usr/bin/python3 models/diabetes/train.py
Writes models/diabetes/1/{model.onnx, model.json, golden.json, evaluation.ndjson} and baseline.json
(the training rows' reference statistics, through `npm run baseline`). Deterministic (a closed-form
fit on a fixed split): re-running reproduces every file byte for byte.

Data: load_diabetes(scaled=False), 442 patients, the 10 baseline measurements as they were taken
(not sklearn's mean-centred, scaled copy), target = a quantitative measure of disease progression
one year after baseline (25-346). Split: train_test_split(test_size=0.2, random_state=0) (the
function models/evaluation_sets.py shares): 353 rows to train on, 89 held out, which are the
evaluation set and the held-out scores in the manifest.

Graph (opset 17): input float64 [N, 10] -> MatMul(coef_ [10, 1], float64) -> Add(intercept_) ->
Cast(float32) -> progression float32 [N, 1]. The arithmetic is float64 like scikit-learn's, so the
output is sklearn's prediction rounded to the nearest float32 (the golden values): in float32 a
prediction near 300 has a spacing of 3e-5, and a float32 dot product would miss the golden
tolerance (1e-5); the float64 input also keeps values such as bmi 32.1 exactly as sent.
"""
import json
import os
import sys

import numpy as np
import onnx
import sklearn
from onnx import TensorProto, helper, numpy_helper
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

SEED = 0
OPSET = 17
OUTPUT = "progression"

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(HERE, "1")
sys.dont_write_bytecode = True  # no __pycache__ in the model repository
sys.path.insert(0, os.path.dirname(HERE))
from evaluation_sets import (DIABETES_FEATURES, DIABETES_TEST_SIZE, diabetes_data,  # noqa: E402
                             diabetes_held_out_evaluation, diabetes_row, diabetes_split,
                             write_evaluation)  # (models/evaluation_sets.py)
from reference_baseline import write_baseline  # noqa: E402  (models/reference_baseline.py)

# (name as in the data set order, type, minimum, maximum, description). Bounds are generous
# physiological limits, well outside the data's own ranges (in brackets).
FEATURES = [
    ("age", "number", 0, 120, "age in years [19-79]"),
    ("sex", "integer", 1, 2, "sex, coded 1 or 2 as in the data set"),
    ("bmi", "number", 10, 80, "body mass index, kg/m² [18-42.2]"),
    ("bp", "number", 30, 250, "average blood pressure, mm Hg [62-133]"),
    ("tc", "number", 50, 600, "total serum cholesterol, mg/dL (sklearn's s1) [97-301]"),
    ("ldl", "number", 0, 500, "low-density lipoproteins, mg/dL (s2) [41.6-242.4]"),
    ("hdl", "number", 5, 200, "high-density lipoproteins, mg/dL (s3) [22-99]"),
    ("tch", "number", 0, 30, "total cholesterol / HDL (s4) [2-9.09]"),
    ("ltg", "number", 1, 9, "log of serum triglycerides level (s5) [3.258-6.107]"),
    ("glu", "number", 30, 400, "blood sugar level, mg/dL (s6) [58-124]"),
]
assert [f[0] for f in FEATURES] == DIABETES_FEATURES


def linear_to_onnx(reg):
    coef = reg.coef_.astype(np.float64).reshape(len(FEATURES), 1)
    intercept = np.array([reg.intercept_], dtype=np.float64)
    nodes = [
        helper.make_node("MatMul", ["input", "coef"], ["xw"], name="matmul"),
        helper.make_node("Add", ["xw", "intercept"], ["prediction"], name="add"),
        helper.make_node("Cast", ["prediction"], [OUTPUT], name="to_float32", to=TensorProto.FLOAT),
    ]
    graph = helper.make_graph(
        nodes, "diabetes_linear_regression",
        [helper.make_tensor_value_info("input", TensorProto.DOUBLE, ["N", len(FEATURES)])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["N", 1])],
        initializer=[numpy_helper.from_array(coef, "coef"), numpy_helper.from_array(intercept, "intercept")])
    model = helper.make_model(
        graph, producer_name="models/diabetes/train.py",
        producer_version=f"scikit-learn {sklearn.__version__}",
        opset_imports=[helper.make_opsetid("", OPSET)])
    onnx.checker.check_model(model, full_check=True)
    return model


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def main():
    X, y = diabetes_data()
    for j, (name, _, lo, hi, _) in enumerate(FEATURES):
        assert lo <= X[:, j].min() and X[:, j].max() <= hi, name
    train, test = diabetes_split(len(y))
    assert len(train) == 353 and len(test) == 89

    reg = LinearRegression().fit(X[train], y[train])
    pred = reg.predict(X)  # float64, every row
    p_test = pred[test]
    mae = float(mean_absolute_error(y[test], p_test))
    rmse = float(np.sqrt(mean_squared_error(y[test], p_test)))
    r2 = float(r2_score(y[test], p_test))
    r2_train = float(r2_score(y[train], pred[train]))
    print(f"held-out ({len(test)} rows): R² {r2:.4f}  MAE {mae:.2f}  RMSE {rmse:.2f}; "
          f"training R² {r2_train:.4f} ({len(train)} rows)")
    assert r2 > 0.25, r2

    os.makedirs(OUT, exist_ok=True)
    onnx_path = os.path.join(OUT, "model.onnx")
    onnx.save(linear_to_onnx(reg), onnx_path)

    framework = f"scikit-learn {sklearn.__version__}"
    test_pct = int(DIABETES_TEST_SIZE * 100)
    manifest = {
        "name": "diabetes",
        "version": "1",
        "task": "regression",
        "description": ("Diabetes disease progression one year after baseline, from ten baseline measurements "
                        "(linear regression)."),
        "features": [
            {"name": n, "type": t, "minimum": lo, "maximum": hi, "description": d}
            for n, t, lo, hi, d in FEATURES
        ],
        "inputs": [
            {"name": "input", "dtype": "float64", "shape": [-1, len(FEATURES)],
             "features": [f[0] for f in FEATURES]},
        ],
        "outputs": [
            {"name": OUTPUT, "dtype": "float32", "shape": [-1, 1]},
        ],
        "result": {"kind": "regression", "output": OUTPUT},
        "metrics": {"evaluation": (f"the {len(test)} of the {len(y)} patients held out from training "
                                   f"({test_pct} % split, train_test_split(random_state={SEED})): "
                                   f"R² {r2:.4f}, MAE {mae:.2f}, RMSE {rmse:.2f}; "
                                   f"R² on the {len(train)} training rows {r2_train:.4f}")},
        "evaluation": write_evaluation("diabetes", "1", *diabetes_held_out_evaluation()),
        "training": {"script": "models/diabetes/train.py", "framework": framework, "seed": SEED,
                     "dataset": (f"scikit-learn load_diabetes(scaled=False), the {len(train)} rows of an "
                                 f"{100 - test_pct} % split, train_test_split(test_size={DIABETES_TEST_SIZE}, "
                                 f"random_state={SEED})"),
                     "estimator": "LinearRegression() (ordinary least squares)"},
    }
    write_json(os.path.join(OUT, "model.json"), manifest)

    golden = {
        "framework": framework,
        "description": (f"all {len(y)} patients ({len(train)} trained on, {len(test)} held out); outputs are "
                        "scikit-learn's predict (float64) rounded to float32, the graph's output type"),
        "inputs": [diabetes_row(x) for x in X],
        "outputs": {OUTPUT: [[float(np.float32(p))] for p in pred]},
    }
    write_json(os.path.join(OUT, "golden.json"), golden)
    print("wrote", os.path.relpath(OUT, REPO), "model.onnx", os.path.getsize(onnx_path), "bytes")
    write_baseline("diabetes", "1", [golden["inputs"][i] for i in train],
                   f"scikit-learn load_diabetes(scaled=False), the {len(train)} rows of the {100 - test_pct} % "
                   f"training split (train_test_split(random_state={SEED}); the training data)")


if __name__ == "__main__":
    main()

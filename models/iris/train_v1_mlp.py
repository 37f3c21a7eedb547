#!/usr/bin/python3
"""iris v1: a small PyTorch MLP, exported to ONNX with softmax inside the graph.

Run from the repository root:  /usr/bin/python3 models/iris/train_v1_mlp.py
Writes models/iris/1/{model.onnx, model.json, golden.json, evaluation.ndjson} and baseline.json (the training rows'
reference statistics, through `npm run baseline`). Deterministic (fixed seed, one thread,
full-batch training), so re-running regenerates identical files.
"""
import json
import os
import random
import subprocess
import sys

import numpy as np
import torch
from sklearn.datasets import load_iris

SEED = 0
EPOCHS = 1000
HIDDEN = 16
LR = 0.01
OPSET = 17

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(HERE, "1")
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


def torch_version():
    # Debian's python3-torch 1.13.1 reports torch.__version__ == "1.13.0a0"; prefer the package version.
    try:
        v = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "python3-torch"],
                           capture_output=True, text=True, check=True).stdout.strip()
        if v:
            return v.split("+")[0]
    except (OSError, subprocess.CalledProcessError):
        pass
    return torch.__version__


class IrisMLP(torch.nn.Module):
    """Standardise (constants baked into the graph) -> Linear -> ReLU -> Linear -> Softmax."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32))
        self.fc1 = torch.nn.Linear(4, HIDDEN)
        self.fc2 = torch.nn.Linear(HIDDEN, 3)

    def logits(self, x):
        x = (x - self.mean) / self.std
        return self.fc2(torch.relu(self.fc1(x)))

    def forward(self, x):
        return torch.softmax(self.logits(x), dim=1)


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def main():
    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    iris = load_iris()
    assert list(iris.target_names) == LABELS
    X64 = iris.data  # float64, [150, 4], columns in FEATURES order
    y = iris.target
    X = torch.tensor(X64, dtype=torch.float32)
    Y = torch.tensor(y, dtype=torch.long)

    mean = X64.mean(axis=0).astype(np.float32)
    std = X64.std(axis=0).astype(np.float32)
    model = IrisMLP(mean, std)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()
    for _ in range(EPOCHS):  # full batch: 150 rows
        opt.zero_grad()
        loss = loss_fn(model.logits(X), Y)
        loss.backward()
        opt.step()

    model.eval()
    with torch.no_grad():
        probs = model(X).numpy()  # float32 [150, 3]
    pred = probs.argmax(axis=1)
    accuracy = float((pred == y).mean())
    print(f"final loss {loss.item():.4f}  accuracy on all 150 rows {accuracy:.4f}")
    assert accuracy >= 0.95, accuracy

    os.makedirs(OUT, exist_ok=True)
    onnx_path = os.path.join(OUT, "model.onnx")
    torch.onnx.export(
        model, X[:2], onnx_path,
        input_names=["input"], output_names=["probabilities"],
        dynamic_axes={"input": {0: "N"}, "probabilities": {0: "N"}},
        opset_version=OPSET, do_constant_folding=True,
    )

    framework = f"torch {torch_version()}"
    manifest = {
        "name": "iris",
        "version": "1",
        "task": "classification",
        "description": "Iris species from four flower measurements (MLP, 4-16-3, softmax in the graph).",
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
        "metrics": {"accuracy": round(accuracy, 4),
                    "evaluation": "all 150 rows of the iris data set (training data)"},
        "evaluation": write_evaluation("iris", "1", *iris_all_rows_evaluation("1")),
        "training": {"script": "models/iris/train_v1_mlp.py", "framework": framework,
                     "seed": SEED, "dataset": "scikit-learn load_iris()"},
    }
    write_json(os.path.join(OUT, "model.json"), manifest)

    golden = {
        "framework": framework,
        "description": "all 150 iris rows",
        "inputs": [{n: float(v) for (n, _), v in zip(FEATURES, row)} for row in X64],
        "outputs": {"probabilities": [[float(p) for p in row] for row in probs]},
        "labels": [LABELS[i] for i in pred],
    }
    write_json(os.path.join(OUT, "golden.json"), golden)
    print("wrote", os.path.relpath(OUT, REPO), "model.onnx", os.path.getsize(onnx_path), "bytes")
    write_baseline("iris", "1", golden["inputs"], "scikit-learn load_iris(), all 150 rows (the training data)")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Labelled evaluation sets: models/<model>/<version>/evaluation.ndjson beside each model version.

Each line is one row exactly as a client submits it to the API (its features, plus an `id`
"eval-0001", "eval-0002", ...) with the true outcome added: `"label"` (a class name of the
manifest's result.labels) for a classifier, `"value"` (a number) for a regression model. The
manifest's `evaluation` object names the file, its row count and how the rows were chosen.

Run from the repository root, with Debian's Python (scikit-learn 1.2.1):

    /usr/bin/python3 models/evaluation_sets.py [--spam-corpus PATH] [MODEL/VERSION ...]

rewrites the evaluation set of every listed version (default: all of them) and the `evaluation`
object of its model.json, from the data alone: nothing is trained, and model.onnx, golden.json and
baseline.json are left as they are. The training scripts build the same sets through the same
functions (so a retrain ships a matching set); re-running either reproduces the files byte for
byte. Each set is at most ~2 MB: larger held-out sets are subsampled with a fixed seed.
"""
import argparse
import base64
import importlib.util
import json
import os
import sys

import numpy as np
from sklearn.datasets import load_diabetes, load_iris
from sklearn.model_selection import train_test_split

sys.dont_write_bytecode = True  # no __pycache__ in the model repository

MODELS_DIR = os.path.dirname(os.path.abspath(__file__))
EVALUATION_FILE = "evaluation.ndjson"
SEED = 0

IRIS_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
IRIS_LABELS = ["setosa", "versicolor", "virginica"]
IRIS_TEST_SIZE = 0.3            # iris 3: stratified 70 % training split, 30 % held out
DIABETES_TEST_SIZE = 0.2        # diabetes 1: 80 % training split, 20 % held out
SPAM_EVALUATION_ROWS = 600      # of the 1210 held-out messages (1.8 MB; all of them would be 3.8 MB)
FASHION_EVALUATION_ROWS = 1000  # of the 10 000 t10k test images (1.1 MB as base64)


# ------------------------------------------------------------------------------------- writing
def write_evaluation(model, version, rows, description):
    """Writes models/<model>/<version>/evaluation.ndjson from row dicts (features + label or
    value), each given an id first; answers the manifest's `evaluation` object."""
    path = os.path.join(MODELS_DIR, model, version, EVALUATION_FILE)
    count = 0
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for count, row in enumerate(rows, start=1):
            assert "id" not in row and ("label" in row) != ("value" in row), row.keys()
            line = {"id": f"eval-{count:04d}", **row}
            f.write(json.dumps(line, ensure_ascii=False, separators=(",", ":"), allow_nan=False) + "\n")
    assert count >= 1, f"{model} {version}: an evaluation set needs at least one row"
    print(f"wrote {os.path.relpath(path, os.path.dirname(MODELS_DIR))}: {count} rows, "
          f"{os.path.getsize(path)} bytes")
    return {"file": EVALUATION_FILE, "rows": count, "description": description}


def set_manifest_evaluation(model, version, evaluation):
    """Puts `evaluation` into models/<model>/<version>/model.json, right after `metrics` (the
    place the training scripts give it), keeping every other byte of the file."""
    path = os.path.join(MODELS_DIR, model, version, "model.json")
    with open(path, encoding="utf-8") as f:
        manifest = json.load(f)
    manifest.pop("evaluation", None)
    out = {}
    for key, value in manifest.items():
        out[key] = value
        if key == "metrics":
            out["evaluation"] = evaluation
    out.setdefault("evaluation", evaluation)
    with open(path, "w", encoding="utf-8") as f:
        f.write(json.dumps(out, indent=2, ensure_ascii=False) + "\n")


# ----------------------------------------------------------------------------------------- iris
def iris_rows(X, y):
    return [{**{n: float(v) for n, v in zip(IRIS_FEATURES, row)}, "label": IRIS_LABELS[int(t)]}
            for row, t in zip(X, y)]


def iris_split(y):
    """iris 3's split of load_iris()'s 150 row indices: stratified, 30 % held out (45 rows)."""
    train, test = train_test_split(np.arange(len(y)), test_size=IRIS_TEST_SIZE, random_state=SEED, stratify=y)
    return np.sort(train), np.sort(test)


def iris_all_rows_evaluation(model_version):
    """iris 1 and 2 were trained on all 150 rows: their evaluation set is those same rows."""
    iris = load_iris()
    return (iris_rows(iris.data, iris.target),
            "all 150 rows of scikit-learn's load_iris(), in data set order. NOT held out: iris "
            f"{model_version} was trained on all 150 rows, so its scores on them are training scores")


def iris_held_out_evaluation():
    iris = load_iris()
    _, test = iris_split(iris.target)
    return (iris_rows(iris.data[test], iris.target[test]),
            f"the {len(test)} rows of scikit-learn's load_iris() held out from training (15 per species): "
            f"stratified {int(IRIS_TEST_SIZE * 100)} % split, train_test_split(test_size={IRIS_TEST_SIZE}, "
            f"random_state={SEED}, stratify=target), in data set order; never seen in training")


# ------------------------------------------------------------------------------------- diabetes
DIABETES_FEATURES = ["age", "sex", "bmi", "bp", "tc", "ldl", "hdl", "tch", "ltg", "glu"]


def diabetes_data():
    """load_diabetes(scaled=False): the original, unscaled measurements (Efron et al. 2004)."""
    d = load_diabetes(scaled=False)
    assert list(d.feature_names) == ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
    return d.data, d.target


def diabetes_split(n):
    train, test = train_test_split(np.arange(n), test_size=DIABETES_TEST_SIZE, random_state=SEED)
    return np.sort(train), np.sort(test)


def diabetes_feature_value(name, v):
    return int(v) if name in ("age", "sex", "tc", "glu") else float(v)


def diabetes_row(x):
    return {n: diabetes_feature_value(n, v) for n, v in zip(DIABETES_FEATURES, x)}


def diabetes_held_out_evaluation():
    X, y = diabetes_data()
    _, test = diabetes_split(len(y))
    rows = [{**diabetes_row(X[i]), "value": float(y[i])} for i in test]
    return (rows,
            f"the {len(test)} of the {len(y)} patients of scikit-learn's load_diabetes(scaled=False) held out from "
            f"training: {int(DIABETES_TEST_SIZE * 100)} % split, train_test_split(test_size={DIABETES_TEST_SIZE}, "
            f"random_state={SEED}), in data set order; value = disease progression one year after baseline; "
            "never seen in training")


# ----------------------------------------------------------------------------------------- spam
def spam_evaluation(texts, y, test, labels, max_length):
    """A seeded stratified sample of spam 1's held-out split (`test`: indices into texts/y, the
    split models/spam/train.py trains without), in corpus order."""
    usable = np.array([i for i in test if len(texts[i]) <= max_length])
    assert len(usable) == len(test), "a held-out message is longer than the manifest's maxLength"
    chosen, _ = train_test_split(usable, train_size=SPAM_EVALUATION_ROWS, random_state=SEED, stratify=y[usable])
    chosen = np.sort(chosen)
    rows = [{"text": texts[i], "label": labels[int(y[i])]} for i in chosen]
    n_spam = int(y[chosen].sum())
    return (rows,
            f"{len(chosen)} of the {len(test)} messages held out from training ({n_spam} spam, "
            f"{len(chosen) - n_spam} ham): a stratified sample, train_test_split(train_size={SPAM_EVALUATION_ROWS}, "
            f"random_state={SEED}, stratify=label), of the held-out split models/spam/train.py trains without "
            f"(stratified 20 %, train_test_split(random_state={SEED})), in corpus order; never seen in training")


# -------------------------------------------------------------------------------------- fashion
def fashion_evaluation(test_x, test_y, labels):
    """A seeded stratified sample of the Fashion-MNIST t10k test images, as base64 of their
    784 raw bytes (the form `"base64": "uint8"` accepts), in test set order."""
    chosen, _ = train_test_split(np.arange(len(test_y)), train_size=FASHION_EVALUATION_ROWS,
                                 random_state=SEED, stratify=test_y)
    chosen = np.sort(chosen)
    rows = [{"image": base64.b64encode(np.ascontiguousarray(test_x[i], dtype=np.uint8).tobytes()).decode("ascii"),
             "label": labels[int(test_y[i])]} for i in chosen]
    return (rows,
            f"{len(chosen)} of the {len(test_y)} Fashion-MNIST t10k test images ({len(chosen) // len(labels)} per "
            f"class): a stratified sample, train_test_split(train_size={FASHION_EVALUATION_ROWS}, "
            f"random_state={SEED}, stratify=label), in test set order; images as base64 of the 784 raw "
            "bytes; not trained on (models/fashion/train.py only reports its accuracy on the test set after each "
            "epoch, and the model's README compares two architectures on it)")


# ----------------------------------------------------------------------------------------- main
def load_script(model, file):
    """A training script of models/<model>/ as a module (its main() is not run)."""
    spec = importlib.util.spec_from_file_location(f"{model}_{file[:-3]}", os.path.join(MODELS_DIR, model, file))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_iris(version):
    return iris_held_out_evaluation() if version == "3" else iris_all_rows_evaluation(version)


def build_spam(args):
    spam = load_script("spam", "train.py")
    texts, y, _ = spam.load_corpus(spam.find_data_dir(args.spam_corpus))
    _, test = spam.split(y)
    return spam_evaluation(texts, y, test, spam.LABELS, spam.MAX_LENGTH)


def build_fashion():
    fashion = load_script("fashion", "train.py")
    test_x, test_y = fashion.load("t10k")
    return fashion_evaluation(test_x, test_y, fashion.LABELS)


BUILDERS = {
    "iris/1": lambda args: build_iris("1"),
    "iris/2": lambda args: build_iris("2"),
    "iris/3": lambda args: build_iris("3"),
    "spam/1": build_spam,
    "fashion/1": lambda args: build_fashion(),
    "diabetes/1": lambda args: diabetes_held_out_evaluation(),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("versions", nargs="*", metavar="MODEL/VERSION", help=f"default: {' '.join(BUILDERS)}")
    ap.add_argument("--spam-corpus", default=os.environ.get("SPAM_CORPUS", "/tmp/spam-corpus"),
                    help="the SpamAssassin corpus, as for models/spam/train.py --corpus (default: $SPAM_CORPUS "
                         "or /tmp/spam-corpus)")
    args = ap.parse_args()
    for key in args.versions or list(BUILDERS):
        if key not in BUILDERS:
            sys.exit(f"unknown model version {key!r}; known: {' '.join(BUILDERS)}")
        model, version = key.split("/")
        rows, description = BUILDERS[key](args)
        set_manifest_evaluation(model, version, write_evaluation(model, version, rows, description))


if __name__ == "__main__":
    main()

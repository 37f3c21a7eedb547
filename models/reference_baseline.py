"""Shared by the training scripts: writes a model version's baseline.json from its training rows.

The rows go to a temporary NDJSON file (rows exactly as a client sends them) and through the
service's own command, `npm run baseline` (docs/model-manifest.md): the same validation, chunk
codec, measures and model.onnx as in production, so a retrain always ships a matching baseline.
Needs `node` and `npm` on PATH and the repository's node_modules.
"""
import json
import os
import subprocess
import tempfile

MODELS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(MODELS_DIR)


def write_baseline(model, version, rows, description, extra_args=()):
    """Writes models/<model>/<version>/baseline.json from an iterable of row dicts."""
    fd, path = tempfile.mkstemp(prefix=f"{model}-{version}-reference-", suffix=".ndjson")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, separators=(",", ":")) + "\n")
        subprocess.run(
            ["npm", "run", "--silent", "baseline", "--",
             "--model", model, "--version", version, "--input", path,
             "--models-dir", MODELS_DIR, "--description", description, *extra_args],
            cwd=REPO, check=True)
    finally:
        os.unlink(path)


def write_reference(model, version):
    """Writes metrics.reference into models/<model>/<version>/model.json: the version's figures on
    its evaluation set (its manifest's "evaluation"), through `npm run reference`, i.e. the service's
    validation, chunk codec, model.onnx and quality counters. Run it after the manifest, the model
    and the evaluation set are written."""
    subprocess.run(
        ["npm", "run", "--silent", "reference", "--",
         "--model", model, "--version", version, "--models-dir", MODELS_DIR],
        cwd=REPO, check=True)

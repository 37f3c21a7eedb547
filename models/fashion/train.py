#!/usr/bin/python3
"""Train the `fashion` model (Fashion-MNIST, small CNN) and export version 1.

Writes, next to this script:
  1/model.onnx     graph: image uint8 [N,1,28,28] raw pixels 0-255 (Cast to float inside) -> probabilities float32 [N,10]
  1/model.json     manifest (docs/model-manifest.md)
  1/golden.json    first 32 test images with torch's own probabilities and labels
  1/evaluation.ndjson  1000 labelled test images (models/evaluation_sets.py)
  1/baseline.json  reference statistics of the 60 000 training images (through `npm run baseline`)

Run with Debian's python (torch 1.13, onnx 1.12):  /usr/bin/python3 models/fashion/train.py
Reproducible: fixed seeds, deterministic algorithms, 2 intra-op threads, CPU only.
`--baseline-only` skips training and rewrites 1/baseline.json from the committed model.
"""
import argparse
import base64
import gzip
import json
import os
import struct
import sys
import time

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F

SEED = 0
EPOCHS = 3
BATCH_SIZE = 64
LEARNING_RATE = 1e-3
VERSION = "1"
GOLDEN_ROWS = 32
# Most images one ONNX Runtime call takes (manifest `maxBatchRows`): per image, batches beyond a
# chunk of 256 run slower here (models/fashion/batch_sizes.mjs: ~30 µs at 256, 43-59 µs at 512-2048).
MAX_BATCH_ROWS = 256
OPSET = 17

DATA_DIR = "/usr/share/datasets/fashion-mnist"
HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, VERSION)
sys.dont_write_bytecode = True  # no __pycache__ in the model repository
sys.path.insert(0, os.path.dirname(HERE))
from evaluation_sets import fashion_evaluation, write_evaluation  # noqa: E402  (models/evaluation_sets.py)
from reference_baseline import write_baseline  # noqa: E402  (models/reference_baseline.py)

LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
          "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def read_idx(path):
    """Read an idx1/idx3 ubyte file (gzip) into a uint8 numpy array."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    assert zero == 0 and dtype == 0x08, "expected unsigned-byte idx file: " + path
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    return arr.reshape(dims)


def load(split):
    images = read_idx(os.path.join(DATA_DIR, split + "-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(DATA_DIR, split + "-labels-idx1-ubyte.gz"))
    assert images.shape[0] == labels.shape[0]
    return images, labels


class Net(nn.Module):
    """2 conv + 2 fc on normalised [N,1,28,28] input; returns logits."""

    def __init__(self):
        super().__init__()
        # Channel counts kept small on purpose: conv2 dominates the compute, the fc1 weights
        # dominate the size. 16/32 channels + fc 128 (~808 KB) runs ~4x faster in ORT than
        # 32/64 channels + fc 48 (~663 KB) at about the same accuracy.
        self.conv1 = nn.Conv2d(1, 16, kernel_size=3, padding=1)   # 28x28 -> pool -> 14x14
        self.conv2 = nn.Conv2d(16, 32, kernel_size=3, padding=1)  # 14x14 -> pool -> 7x7
        self.fc1 = nn.Linear(32 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        return self.fc2(x)


class RawPixelClassifier(nn.Module):
    """What gets exported: raw pixels 0-255 in, softmax probabilities out."""

    def __init__(self, net, mean, std):
        super().__init__()
        self.net = net
        # (x / 255 - mean) / std folded into one multiply-add: x * scale + shift
        self.register_buffer("scale", torch.tensor(1.0 / (255.0 * std), dtype=torch.float32))
        self.register_buffer("shift", torch.tensor(-mean / std, dtype=torch.float32))

    def forward(self, image):
        # Bytes in: the widening to float happens inside the graph (a Cast), so the service feeds
        # the stored bytes as they are.
        x = image.to(torch.float32) * self.scale + self.shift
        return torch.softmax(self.net(x), dim=1)


def write_reference_baseline(train_x):
    """1/baseline.json from all training images, sent as base64 bytes (as clients may send them)."""
    rows = ({"image": base64.b64encode(image.tobytes()).decode("ascii")} for image in train_x)
    write_baseline("fashion", VERSION, rows, "Fashion-MNIST train set, all %d training images" % train_x.shape[0])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--baseline-only", action="store_true",
                    help="do not train: rewrite 1/baseline.json from the training images and the committed model")
    args = ap.parse_args()
    if args.baseline_only:
        write_reference_baseline(load("train")[0])
        return

    torch.manual_seed(SEED)
    np.random.seed(SEED)
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)

    train_x, train_y = load("train")
    test_x, test_y = load("t10k")
    print("train", train_x.shape, "test", test_x.shape)

    # normalisation constants from the training pixels (scaled to 0-1)
    mean = float(train_x.astype(np.float64).mean() / 255.0)
    std = float(train_x.astype(np.float64).std() / 255.0)
    print("pixel mean %.6f std %.6f" % (mean, std))

    net = Net()
    model = RawPixelClassifier(net, mean, std)
    n_params = sum(p.numel() for p in net.parameters())
    print("parameters %d (%.0f KB float32)" % (n_params, n_params * 4 / 1024))

    xt = torch.from_numpy(train_x.astype(np.float32)).unsqueeze(1)   # raw 0-255
    yt = torch.from_numpy(train_y.astype(np.int64))
    xs = torch.from_numpy(test_x.astype(np.float32)).unsqueeze(1)

    def evaluate():
        model.eval()
        preds = []
        with torch.no_grad():
            for i in range(0, xs.shape[0], 1000):
                preds.append(model(xs[i:i + 1000]).argmax(dim=1))
        return float((torch.cat(preds).numpy() == test_y).mean())

    opt = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    gen = torch.Generator().manual_seed(SEED)
    for epoch in range(1, EPOCHS + 1):
        model.train()
        t0 = time.time()
        perm = torch.randperm(xt.shape[0], generator=gen)
        total = 0.0
        for i in range(0, xt.shape[0], BATCH_SIZE):
            idx = perm[i:i + BATCH_SIZE]
            x = xt[idx] * model.scale + model.shift
            loss = F.cross_entropy(net(x), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss) * idx.shape[0]
        acc = evaluate()
        print("epoch %d  loss %.4f  test accuracy %.4f  (%.0f s)"
              % (epoch, total / xt.shape[0], acc, time.time() - t0))

    accuracy = evaluate()
    assert accuracy >= 0.88, "test accuracy %.4f below 0.88" % accuracy

    os.makedirs(OUT_DIR, exist_ok=True)
    model.eval()

    # --- ONNX export -------------------------------------------------------
    onnx_path = os.path.join(OUT_DIR, "model.onnx")
    dummy = torch.from_numpy(test_x[:2].copy()).unsqueeze(1)   # uint8 [2, 1, 28, 28]
    torch.onnx.export(
        model, (dummy,), onnx_path,
        input_names=["image"], output_names=["probabilities"],
        dynamic_axes={"image": {0: "N"}, "probabilities": {0: "N"}},
        opset_version=OPSET, do_constant_folding=True,
    )
    m = onnx.load(onnx_path)
    onnx.checker.check_model(m)
    print("exported %s (%d bytes, IR %d, opset %d)"
          % (onnx_path, os.path.getsize(onnx_path), m.ir_version, m.opset_import[0].version))

    # --- golden: first 32 test images, torch's own outputs (float32) --------
    with torch.no_grad():
        probs = model(xs[:GOLDEN_ROWS]).numpy().astype(np.float32)
    golden = {
        "framework": "torch " + torch.__version__,
        "description": "first %d images of the Fashion-MNIST t10k test set" % GOLDEN_ROWS,
        "inputs": [{"image": test_x[i].astype(int).tolist()} for i in range(GOLDEN_ROWS)],
        "outputs": {"probabilities": [[float(v) for v in row] for row in probs]},
        "labels": [LABELS[int(k)] for k in probs.argmax(axis=1)],
    }
    with open(os.path.join(OUT_DIR, "golden.json"), "w") as f:
        json.dump(golden, f, separators=(",", ":"))
        f.write("\n")

    # --- manifest ------------------------------------------------------------
    manifest = {
        "name": "fashion",
        "version": VERSION,
        "task": "classification",
        "description": "Fashion-MNIST clothing category from a 28x28 grayscale image "
                       "(small CNN: 2 conv + 2 fc).",
        # ONNX Runtime runs this CNN fastest around batch 256 (77k images/s on 2 threads here,
        # 52k at 1024): chunks of 256 images, and dynamic batching joins no more than that
        # (measured by models/fashion/batch_sizes.mjs: larger batches are slower per image).
        "chunkSize": 256,
        "maxBatchRows": MAX_BATCH_ROWS,
        "features": [
            {"name": "image", "type": "tensor", "shape": [28, 28],
             "minimum": 0, "maximum": 255, "base64": "uint8",
             "description": "28x28 grayscale pixels, row-major, 0 = background, 255 = ink "
                            "(Fashion-MNIST convention); nested array or base64 of 784 bytes"},
        ],
        "inputs": [
            {"name": "image", "dtype": "uint8", "shape": [-1, 1, 28, 28],
             "features": ["image"]},
        ],
        "outputs": [
            {"name": "probabilities", "dtype": "float32", "shape": [-1, 10]},
        ],
        "result": {"kind": "classification", "output": "probabilities", "labels": LABELS},
        "metrics": {"accuracy": round(accuracy, 4),
                    "evaluation": "Fashion-MNIST t10k test set (10 000 images)"},
        "evaluation": write_evaluation("fashion", VERSION, *fashion_evaluation(test_x, test_y, LABELS)),
        "training": {"script": "models/fashion/train.py",
                     "framework": "torch " + torch.__version__,
                     "seed": SEED,
                     "dataset": "Fashion-MNIST train set (60 000 images), "
                                + DATA_DIR,
                     "epochs": EPOCHS},
    }
    with open(os.path.join(OUT_DIR, "model.json"), "w") as f:
        f.write(json.dumps(manifest, indent=2) + "\n")
    print("test accuracy %.4f; wrote %s" % (accuracy, OUT_DIR))
    write_reference_baseline(train_x)


if __name__ == "__main__":
    main()

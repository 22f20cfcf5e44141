"""Text classification on sparse TF-IDF features.

``ReLUMLPClassifier`` accepts scipy CSR matrices: the first layer multiplies the sparse
rows directly, so a ``TfidfVectorizer`` output goes into the network without ever being
made dense. The corpus is generated here (four topics, each with its own words, mixed
with words of other topics, common words and a long tail of made-up rare words), so
the example needs no download. The same pipeline with scikit-learn's ``MLPClassifier``
(same hidden size, ``max_iter`` and ``random_state``) gives the comparison, and a
confusion matrix shows which topics get confused.

Run as a script (``python examples/sparse_text.py [OUTPUT_DIR]``) or cell by cell in a
notebook (``# %%`` cells). The figure is saved as a PNG file only when
OUTPUT_DIR is given. ``RELUMLP_EXAMPLE_QUICK=1`` uses a smaller corpus (used by
the test suite).
"""
# %%
import os
import sys
import time
import tracemalloc
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import ConfusionMatrixDisplay, confusion_matrix
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline

from relumlp import ReLUMLPClassifier

# Figures are saved only into a directory given on the command line; in a notebook
# sys.argv holds the kernel's options ("-f ..."), and the figures are just shown.
out_dir = None
if len(sys.argv) > 1 and not sys.argv[1].startswith("-"):
    out_dir = Path(sys.argv[1])
    out_dir.mkdir(parents=True, exist_ok=True)
quick = os.environ.get("RELUMLP_EXAMPLE_QUICK") == "1"
n_docs, max_iter = (1200, 30) if quick else (2400, 40)

# %% A generated corpus
TOPICS = {
    "sports": "match goal coach league player score referee stadium win defeat tournament "
              "striker keeper penalty trophy fans transfer injury",
    "cooking": "recipe oven flour butter sauce garlic onion simmer roast bake salt pepper "
               "dough spice kitchen chef taste dessert",
    "space": "orbit rocket planet galaxy telescope astronaut moon mars satellite comet "
             "nebula gravity probe solar asteroid crater spacecraft star",
    "finance": "stock bond investor price inflation bank interest dividend fund portfolio "
               "trader shares profit loss currency earnings budget debt",
}
# Common words, some of them typical of a topic ("team", "launch", "market").
COMMON = ("the a of and to in is it that for on with as was at by this from be have are "
          "new year time people day week report said today first last many more most also "
          "after before while during result plan team season mission market launch record "
          "high low big small good bad early late part").split()

rng = np.random.RandomState(0)
syllables = ["ka", "lo", "mi", "ne", "ru", "ta", "po", "si", "de", "va", "zu", "be", "ko",
             "ri", "sa", "te", "no", "fi", "gu", "ha"]
rare = sorted({"".join(rng.choice(syllables, rng.randint(2, 5))) for _ in range(5000)})
rare_p = 1.0 / np.arange(1, len(rare) + 1) ** 0.8  # Zipf-like long tail
rare_p /= rare_p.sum()
topics = list(TOPICS)
topic_words = np.array([TOPICS[t].split() for t in topics])  # (n_topics, n_words)

# Each word is from the document's topic (10 %), from a random topic (6 %), common
# (40 %) or rare (44 %): topics overlap enough that no single word decides.
n_words = rng.randint(20, 61, size=n_docs)
doc_topic = rng.randint(len(topics), size=n_docs)
total = n_words.sum()
source = rng.choice(4, total, p=[0.10, 0.06, 0.40, 0.44])
word_topic = np.where(source == 1, rng.randint(len(topics), size=total),
                      np.repeat(doc_topic, n_words))
words = np.where(
    source <= 1, topic_words[word_topic, rng.randint(topic_words.shape[1], size=total)],
    np.where(source == 2, np.array(COMMON)[rng.randint(len(COMMON), size=total)],
             np.array(rare)[rng.choice(len(rare), total, p=rare_p)]))
docs = [" ".join(doc) for doc in np.split(words, np.cumsum(n_words)[:-1])]
labels = [topics[k] for k in doc_topic]

docs_train, docs_test, y_train, y_test = train_test_split(
    docs, labels, stratify=labels, random_state=0)
print(f"example document ({labels[0]}): {docs[0][:100]}...")

# %% The TF-IDF matrix stays sparse
vectorizer = TfidfVectorizer(sublinear_tf=True, min_df=2)
X_train = vectorizer.fit_transform(docs_train)
dense_mb = X_train.shape[0] * X_train.shape[1] * X_train.dtype.itemsize / 1e6
sparse_mb = (X_train.data.nbytes + X_train.indices.nbytes + X_train.indptr.nbytes) / 1e6
print(f"TF-IDF training matrix: {type(X_train).__name__} of shape {X_train.shape}, "
      f"nnz={X_train.nnz}, density={X_train.nnz / np.prod(X_train.shape):.4f}")
print(f"memory: {sparse_mb:.2f} MB as CSR, {dense_mb:.1f} MB if it were dense")

# tracemalloc sees every NumPy allocation: a dense copy of X would show in the peak.
network = ReLUMLPClassifier((64,), max_iter=max_iter, random_state=0)
tracemalloc.start()
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    network.fit(X_train, y_train)
peak_mb = tracemalloc.get_traced_memory()[1] / 1e6
tracemalloc.stop()
params_mb = sum(w.nbytes for w in network.coefs_ + network.intercepts_) / 1e6
print(f"peak memory allocated while ReLUMLPClassifier fits on it: {peak_mb:.1f} MB "
      f"(mostly copies of the parameters, {params_mb:.2f} MB each: weights, gradients, "
      f"Adam's moments)")

# %% relumlp against scikit-learn, same pipeline
results = {}
for model in [ReLUMLPClassifier((64,), max_iter=max_iter, random_state=0),
              MLPClassifier((64,), max_iter=max_iter, random_state=0)]:
    pipe = make_pipeline(clone(vectorizer), model)
    start = time.perf_counter()
    with warnings.catch_warnings():
        # max_iter is kept small so the example runs in seconds.
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe.fit(docs_train, y_train)
    results[type(model).__name__] = (time.perf_counter() - start, pipe.score(docs_test, y_test),
                                     pipe)

print("\n| model | hidden units | epochs | pipeline fit time (s) | test accuracy |")
print("| --- | ---: | ---: | ---: | ---: |")
for name, (fit_time, accuracy, pipe) in results.items():
    print(f"| {name} | 64 | {pipe[-1].n_iter_} | {fit_time:.2f} | {accuracy:.3f} |")

# %% Which topics get confused
pipe = results["ReLUMLPClassifier"][2]
y_pred = pipe.predict(docs_test)
cm = confusion_matrix(y_test, y_pred, labels=topics)
print("\nconfusion matrix of ReLUMLPClassifier (rows: true topic, columns: predicted)")
print("| | " + " | ".join(topics) + " |")
print("| --- |" + " ---: |" * len(topics))
for topic, row in zip(topics, cm):
    print(f"| {topic} | " + " | ".join(str(v) for v in row) + " |")

fig, ax = plt.subplots(figsize=(5, 4.5))
ConfusionMatrixDisplay(cm, display_labels=topics).plot(ax=ax, colorbar=False)
ax.set_title("ReLUMLPClassifier on TF-IDF features")
fig.tight_layout()
if out_dir is not None:
    fig.savefig(out_dir / "sparse_text_confusion.png", dpi=80)

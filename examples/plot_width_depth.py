"""
Width and depth
===============

How wide and how deep should a network be for scikit-learn's digits (1797 images of
8x8 pixels, standardised), and which activations keep training as the network gets
deeper? Three experiments: (a) one hidden layer of 16 to 1024 relu units and (b) one
to eight hidden layers of 64 relu units, each scored with ``cross_validate`` on
shuffled stratified folds (training and validation accuracy, fit time, mean ± std
over the folds); (c) networks of depth 2, 4 and 8 with logistic, tanh, relu,
leaky_relu, elu and selu units, trained with SGD and momentum on a held-out split:
the final training loss and accuracy, and the vanishing-gradient picture, i.e. the
gradient norm of each layer's weights that ``history_`` records (``grad_norm``: the
norm of the last minibatch's gradient of each epoch) at the first and at the last
epoch. Part (c) uses plain SGD because Adam divides each step by a running gradient
scale, which partly hides small gradients; logistic, tanh, relu, leaky_relu and elu
start from scikit-learn's initialisation (``weight_init="sklearn"``, Glorot uniform),
selu from its own (``"auto"``: LeCun normal), and ``alpha=0`` so that the recorded
gradients are the data term alone.

Every fit runs on one thread (``threadpoolctl.threadpool_limits(1)``), so the fit
times compare the work each shape costs rather than how a shared machine schedules
threads.

Run as a script (``python examples/plot_width_depth.py [OUTPUT_DIR]``) or cell by
cell in a notebook (``# %%`` cells). Figures are saved as PNG files only when
OUTPUT_DIR is given; otherwise they stay open. ``RELUMLP_EXAMPLE_QUICK=1`` runs fewer
widths, depths, folds and epochs (used by the test suite and the docs build).
"""
# %%
import os
import sys
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import StratifiedKFold, cross_validate, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from relumlp import ReLUMLPClassifier
from relumlp.plotting import plot_training_curves

# In a notebook, sys.argv holds the kernel's options ("-f ..."), not an output directory.
given = len(sys.argv) > 1 and not sys.argv[1].startswith("-")
out_dir = Path(sys.argv[1]) if given else None
if out_dir is not None:
    out_dir.mkdir(parents=True, exist_ok=True)
quick = os.environ.get("RELUMLP_EXAMPLE_QUICK") == "1"


def save(fig, name):
    """Write ``fig`` to OUTPUT_DIR/name when an output directory was given."""
    if out_dir is not None:
        fig.savefig(out_dir / name, dpi=80)


def mean_std(values, digits=3):
    return f"{np.mean(values):.{digits}f} ± {np.std(values):.{digits}f}"


X, y = load_digits(return_X_y=True)
if quick:
    widths, depths, n_folds, max_iter = (16, 64, 256), (1, 2, 4), 2, 15
    deep_depths, deep_epochs = (2, 8), 6
else:
    widths, depths = (16, 32, 64, 128, 256, 512, 1024), range(1, 9)
    n_folds, max_iter = 3, 40
    deep_depths, deep_epochs = (2, 4, 8), 30
depth_width = 64
activations = ("logistic", "tanh", "relu", "leaky_relu", "elu", "selu")
# leaky_relu's slope of 0.01 keeps it close to relu: dashed, so both lines show.
linestyle = {"leaky_relu": "--"}
cv = StratifiedKFold(n_folds, shuffle=True, random_state=0)


def cross_validated(hidden_layer_sizes):
    """Train / validation accuracy and fit time of each fold, for relu and Adam."""
    pipe = make_pipeline(StandardScaler(), ReLUMLPClassifier(
        hidden_layer_sizes, max_iter=max_iter, random_state=0))
    with warnings.catch_warnings(), threadpool_limits(1):
        # max_iter is kept small so the example runs in seconds: Adam stops before it
        # has fully converged on the narrowest networks.
        warnings.simplefilter("ignore", ConvergenceWarning)
        res = cross_validate(pipe, X, y, cv=cv, return_train_score=True)
    return {"train": res["train_score"], "validation": res["test_score"],
            "fit_time": res["fit_time"]}


def print_sweep(name, results):
    print(f"| {name} | training accuracy | validation accuracy | fit time (s) |")
    print("| ---: | ---: | ---: | ---: |")
    for key, r in results.items():
        print(f"| {key} | {mean_std(r['train'])} | {mean_std(r['validation'])} "
              f"| {mean_std(r['fit_time'])} |")


# %%
# (a) Width: one hidden layer of relu units.
width_results = {width: cross_validated((width,)) for width in widths}
print(f"Width, one hidden layer, {n_folds}-fold CV, {max_iter} epochs of Adam\n")
print_sweep("width", width_results)

val = {w: np.mean(r["validation"]) for w, r in width_results.items()}
best_width = max(val, key=val.get)
# The narrowest width whose mean is within one standard deviation of the best.
enough_width = min(w for w in widths if val[w] >= val[best_width]
                   - np.std(width_results[best_width]["validation"]))
gap = np.mean(width_results[widths[-1]]["train"]) - val[widths[-1]]
time_ratio = (np.mean(width_results[widths[-1]]["fit_time"])
              / np.mean(width_results[widths[0]]["fit_time"]))
findings = {"width": (
    f"validation accuracy goes from {val[widths[0]]:.3f} at width {widths[0]} to "
    f"{val[widths[-1]]:.3f} at width {widths[-1]}, best {val[best_width]:.3f} at width "
    f"{best_width}"
    + (f"; width {enough_width} is already within one std of it" if enough_width <
       best_width else "; no narrower width is within one std of it")
    + f". At width {widths[-1]} training accuracy "
    f"{'exceeds' if gap > 0 else 'is below'} validation accuracy by {abs(gap):.3f}, and "
    f"a fit takes {time_ratio:.0f}x as long as at width {widths[0]}.")}
print(f"\nFinding: {findings['width']}\n")

# %%
# (b) Depth: hidden layers of 64 relu units.
depth_results = {depth: cross_validated((depth_width,) * depth) for depth in depths}
print(f"Depth, {depth_width} units per layer, {n_folds}-fold CV, {max_iter} epochs of "
      "Adam\n")
print_sweep("depth", depth_results)

val = {d: np.mean(r["validation"]) for d, r in depth_results.items()}
best_depth = max(val, key=val.get)
first, last = min(depth_results), max(depth_results)
change = val[last] - val[first]
depth_time_ratio = (np.mean(depth_results[last]["fit_time"])
                    / np.mean(depth_results[first]["fit_time"]))
findings["depth"] = (
    f"the best depth at width {depth_width} is {best_depth} (validation accuracy "
    f"{val[best_depth]:.3f}); {last} layers "
    f"{'gain' if change > 0 else 'lose'} {abs(change):.3f} against {first} "
    f"({val[last]:.3f} vs {val[first]:.3f}), and a fit takes "
    f"{depth_time_ratio:.1f}x as long.")
print(f"\nFinding: {findings['depth']}\n")

# %%
fig, axes = plt.subplots(2, 2, figsize=(10, 6.5), sharex="col")
for col, (name, results) in enumerate([("width (units, one layer)", width_results),
                                       (f"depth (layers of {depth_width} units)",
                                        depth_results)]):
    keys = np.array(list(results))
    for split, marker in [("train", "o"), ("validation", "s")]:
        means = np.array([np.mean(r[split]) for r in results.values()])
        stds = np.array([np.std(r[split]) for r in results.values()])
        axes[0, col].plot(keys, means, marker=marker, label=split)
        axes[0, col].fill_between(keys, means - stds, means + stds, alpha=0.25)
    axes[0, col].set_ylabel("accuracy")
    axes[0, col].legend()
    axes[1, col].errorbar(keys, [np.mean(r["fit_time"]) for r in results.values()],
                          yerr=[np.std(r["fit_time"]) for r in results.values()],
                          marker="o", capsize=3)
    axes[1, col].set_ylabel("fit time (s)")
    axes[1, col].set_xlabel(name)
for ax in axes[:, 0]:
    ax.set_xscale("log", base=2)
axes[1, 0].set_yscale("log")
fig.suptitle(f"Digits, relu, Adam, {max_iter} epochs: mean ± std over {n_folds} folds")
fig.tight_layout()
save(fig, "width_depth_sweeps.png")

# %%
# (c) Depth x activation: SGD with momentum, where vanishing gradients show.
X_train, X_val, y_train, y_val = train_test_split(X, y, stratify=y, random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_val = scaler.transform(X_train), scaler.transform(X_val)

deep_models, deep_results = {}, {}
for depth in deep_depths:
    for activation in activations:
        model = ReLUMLPClassifier(
            (depth_width,) * depth, activation=activation, solver="sgd", momentum=0.9,
            learning_rate_init=0.01, alpha=0.0,
            weight_init="auto" if activation == "selu" else "sklearn",
            # Every network trains for the full budget, even when its loss is flat.
            max_iter=deep_epochs, n_iter_no_change=deep_epochs, random_state=0)
        with warnings.catch_warnings(), threadpool_limits(1):
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X_train, y_train)
        deep_models[depth, activation] = model
        deep_results[depth, activation] = {
            "weight_init": model.weight_init,
            "loss": float(model.loss_curve_[-1]),
            "train_accuracy": model.score(X_train, y_train),
            "val_accuracy": model.score(X_val, y_val),
            "grad_norm_first": np.array(model.history_[0]["grad_norm"]),
            "grad_norm_last": np.array(model.history_[-1]["grad_norm"]),
        }

deepest = max(deep_depths)
# Per activation, the gradient norm of each weight matrix (input layer first, output
# layer last) in the deepest network, after the first and after the last epoch.
grad_norms = {activation: {"first": deep_results[deepest, activation]["grad_norm_first"],
                           "last": deep_results[deepest, activation]["grad_norm_last"]}
              for activation in activations}

print(f"Depth x activation, {depth_width} units per layer, SGD (momentum 0.9, learning "
      f"rate 0.01), {deep_epochs} epochs, held-out split\n")
print("| depth | activation | weight_init | final training loss | training accuracy "
      "| validation accuracy | layer-1 grad norm, epoch 1 | layer-1 / output grad norm, "
      "epoch 1 | layer-1 grad norm, last epoch |")
print("| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
for (depth, activation), r in deep_results.items():
    g0, g1 = r["grad_norm_first"], r["grad_norm_last"]
    print(f"| {depth} | {activation} | {r['weight_init']} | {r['loss']:.3f} "
          f"| {r['train_accuracy']:.3f} | {r['val_accuracy']:.3f} | {g0[0]:.1e} "
          f"| {g0[0] / g0[-1]:.1e} | {g1[0]:.1e} |")

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for activation in activations:
    axes[0].plot(deep_depths, [deep_results[d, activation]["loss"] for d in deep_depths],
                 marker="o", linestyle=linestyle.get(activation, "-"), label=activation)
axes[0].set_xticks(deep_depths)
axes[0].set_xlabel(f"depth (layers of {depth_width} units)")
axes[0].set_ylabel(f"training loss after {deep_epochs} epochs")
axes[0].set_yscale("log")
axes[0].legend(loc="center right")
plot_training_curves([deep_models[deepest, a] for a in activations], ax=axes[1],
                     labels=list(activations))
for line in axes[1].get_lines():
    line.set_linestyle(linestyle.get(line.get_label(), "-"))
axes[1].legend()
axes[1].set_yscale("log")
axes[1].set_title(f"Depth {deepest}: training loss per epoch")
fig.tight_layout()
save(fig, "width_depth_activations.png")

fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
layers = np.arange(1, deepest + 2)
for ax, (when, title) in zip(axes, [("first", "after epoch 1"),
                                    ("last", f"after epoch {deep_epochs}")]):
    for activation in activations:
        ax.plot(layers, grad_norms[activation][when], marker="o",
                linestyle=linestyle.get(activation, "-"), label=activation)
    ax.set_yscale("log")
    ax.set_xticks(layers)
    ax.set_xlabel(f"weight layer (1 = input, {deepest + 1} = output)")
    ax.set_title(f"Depth {deepest}, {title}")
axes[0].set_ylabel("gradient norm of the layer's weights")
axes[0].legend()
fig.tight_layout()
save(fig, "width_depth_grad_norms.png")

# %%
# A network is stuck if its training loss stays within 10 % of chance level, ln(10).
chance_loss = np.log(len(np.unique(y)))
stalled = {}
for (depth, activation), r in deep_results.items():
    if r["loss"] > 0.9 * chance_loss:
        stalled.setdefault(activation, []).append(str(depth))
relu_first = grad_norms["relu"]["first"][0]
ratios = {a: g["first"][0] / relu_first for a, g in grad_norms.items() if a != "relu"}
vanished = [a for a, ratio in ratios.items() if ratio < 1e-2]
kept = [a for a in ratios if a not in vanished]
losses = {a: deep_results[deepest, a]["loss"] for a in activations}
findings["activation"] = (
    (f"after {deep_epochs} epochs of SGD, "
     + "; ".join(f"{a} at depth {d[0]}" if len(d) == 1 else
                 f"{a} at depths {', '.join(d[:-1])} and {d[-1]}"
                 for a, d in stalled.items())
     + f" barely trained (training loss within 10 % of chance level, {chance_loss:.3f})"
     if stalled else f"after {deep_epochs} epochs of SGD every network's training loss "
     f"is more than 10 % below chance level ({chance_loss:.3f})")
    + f". At depth {deepest}, after epoch 1, "
    + ("; ".join(f"{a}'s first-layer gradient norm is {ratios[a]:.0e} of relu's and "
                 f"{grad_norms[a]['first'][0] / grad_norms[a]['first'][-1]:.0e} of its "
                 "own output layer's (vanished)" for a in vanished)
       if vanished else "no first-layer gradient norm is below 1e-2 of relu's "
       "(none vanished)")
    + (f"; {', '.join(kept)} are {min(ratios[a] for a in kept):.2g}-"
       f"{max(ratios[a] for a in kept):.2g}x relu's (did not vanish)" if kept else "")
    + f". Final training loss at depth {deepest}: lowest {min(losses, key=losses.get)} "
    f"({min(losses.values()):.3f}), highest {max(losses, key=losses.get)} "
    f"({max(losses.values()):.3f}).")
print(f"\nFinding: {findings['activation']}")

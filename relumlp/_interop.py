"""Moving fitted models between relumlp and scikit-learn's MLP.

``to_sklearn`` gives a fitted ``MLPClassifier`` / ``MLPRegressor`` that predicts the
same numbers (same weights, same dtype); ``from_sklearn`` does the reverse and carries
the stochastic optimizer's state over, so training can go on where scikit-learn left
off. Only what both libraries have can move: scikit-learn's four activations, no
per-layer activations, no PReLU slopes.
"""
import numpy as np
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.utils.validation import check_is_fitted

from relumlp import _optimizers
from relumlp._activations import SKLEARN_ACTIVATIONS
from relumlp._state import SKLEARN, TrainingState
from relumlp._training import Checkpoint

SKLEARN_SOLVERS = ("lbfgs", "sgd", "adam")

# Parameters both libraries share (scikit-learn's MLP constructor minus 'loss',
# which only the regressor has).
_SHARED = ("hidden_layer_sizes", "activation", "solver", "alpha", "batch_size",
           "learning_rate", "learning_rate_init", "power_t", "max_iter", "shuffle",
           "random_state", "tol", "verbose", "warm_start", "momentum",
           "nesterovs_momentum", "early_stopping", "validation_fraction", "beta_1",
           "beta_2", "epsilon", "n_iter_no_change", "max_fun")


def _copy(value):
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _copy_fitted(source, target):
    """Copy the fitted attributes both libraries have (lists and arrays as copies)."""
    for name in SKLEARN:
        if hasattr(source, name):
            setattr(target, name, _copy(getattr(source, name)))


def to_sklearn(est):
    """Return a fitted scikit-learn MLP equivalent to the fitted relumlp model ``est``.

    Raises ``ValueError`` when the network uses what scikit-learn lacks (an activation
    other than identity/logistic/tanh/relu, or different activations per layer).
    Training-only options (``dropout``, ``alpha_l1``, ``max_grad_norm``,
    ``weight_init``, ``weight_decay``, ``learning_rate='cosine'`` and its
    ``warmup_iters``) have no scikit-learn counterpart and are dropped ('cosine' becomes
    'constant'): they do not change predictions, but further training in scikit-learn
    goes without them.
    """
    check_is_fitted(est)
    used = est._current_layout().used_options()
    if used:
        raise ValueError(f"scikit-learn's MLP has no {', '.join(used)}; this model cannot "
                         "be converted.")
    activation = est.activation
    if not isinstance(activation, str):
        names = set(est._activations(len(est.coefs_) - 1))
        if len(names) != 1:
            raise ValueError(
                f"scikit-learn's MLP has one activation for all layers; this model has "
                f"activation={activation!r}.")
        activation = names.pop()
    if activation not in SKLEARN_ACTIVATIONS:
        raise ValueError(
            f"scikit-learn's MLP has no activation {activation!r} (it has "
            f"{', '.join(SKLEARN_ACTIVATIONS)}); this model cannot be converted.")
    if est.solver not in SKLEARN_SOLVERS:
        raise ValueError(f"scikit-learn's MLP has no solver {est.solver!r} (it has "
                         f"{', '.join(SKLEARN_SOLVERS)}); this model cannot be converted.")
    params = {name: getattr(est, name) for name in _SHARED}
    if params["learning_rate"] == "cosine":  # relumlp's own schedule
        params["learning_rate"] = "constant"
    params["activation"] = activation
    if est._is_classifier:
        mlp = MLPClassifier(**params)
    else:
        mlp = MLPRegressor(loss=est.loss, **params)
    _copy_fitted(est, mlp)
    mlp.coefs_ = [c.copy() for c in est.coefs_]
    mlp.intercepts_ = [b.copy() for b in est.intercepts_]
    if getattr(est, "validation_scores_", None) is not None or est.solver == "lbfgs":
        mlp._best_coefs = [c.copy() for c in est.coefs_]
        mlp._best_intercepts = [b.copy() for b in est.intercepts_]
    optimizer = getattr(est, "_optimizer", None)
    if optimizer is not None:
        mlp._optimizer = _optimizer_to_sklearn(optimizer, mlp)
    return mlp


def from_sklearn(cls, mlp):
    """A fitted ``cls`` (ReLUMLPClassifier or ReLUMLPRegressor) equal to ``mlp``."""
    check_is_fitted(mlp)
    want = MLPClassifier if cls._is_classifier else MLPRegressor
    if not isinstance(mlp, want):
        raise TypeError(f"{cls.__name__}.from_sklearn needs a fitted {want.__name__}; "
                        f"got {type(mlp).__name__}.")
    params = {name: getattr(mlp, name) for name in _SHARED}
    if not cls._is_classifier:
        params["loss"] = mlp.loss
    # scikit-learn's initial weights are what this model has: keep its scheme for a
    # refit with the same random_state.
    est = cls(weight_init="sklearn", **params)
    _copy_fitted(mlp, est)
    est.coefs_ = [np.array(c) for c in mlp.coefs_]
    est.intercepts_ = [np.array(b) for b in mlp.intercepts_]
    est.prelu_slopes_ = [None] * (len(est.coefs_) - 1)
    layout = est._current_layout()
    flat = est._current_flat(layout)  # packs the weights into one buffer
    # What relumlp records beyond scikit-learn starts empty; early stopping's best
    # weights are the current ones.
    state = TrainingState.resume(est)
    state.validation_loss_curve_ = getattr(state, "validation_loss_curve_", None)
    state.best_validation_loss_ = None
    state._best_params = Checkpoint.of(flat)
    optimizer = getattr(mlp, "_optimizer", None)
    if optimizer is not None and est.solver in ("sgd", "adam"):
        state._optimizer = _optimizer_from_sklearn(optimizer, est, layout, flat.dtype)
    state.publish(est)
    return est


def _optimizer_to_sklearn(state, mlp):
    from sklearn.neural_network._stochastic_optimizers import AdamOptimizer, SGDOptimizer

    params = mlp.coefs_ + mlp.intercepts_
    shapes = [p.shape for p in params]
    if isinstance(state, _optimizers.AdamState):
        opt = AdamOptimizer(params, state.learning_rate_init, state.beta_1, state.beta_2,
                            state.epsilon)
        opt.t = state.t
        opt.ms = _split(state.ms, shapes)
        opt.vs = _split(state.vs, shapes)
    else:
        opt = SGDOptimizer(params, state.learning_rate_init, state.lr_schedule,
                           state.momentum, state.nesterov, state.power_t)
        opt.velocities = _split(state.velocity, shapes)
    opt.learning_rate = state.learning_rate
    return opt


def _optimizer_from_sklearn(opt, est, layout, dtype):
    state = _optimizers.make_optimizer(est, layout.n_params, dtype)
    n = sum(p.size for p in est.coefs_ + est.intercepts_)
    if isinstance(state, _optimizers.AdamState):
        state.t = opt.t
        state.ms[:n] = np.concatenate([np.ravel(m) for m in opt.ms])
        state.vs[:n] = np.concatenate([np.ravel(v) for v in opt.vs])
    else:
        state.velocity[:n] = np.concatenate([np.ravel(v) for v in opt.velocities])
    state.learning_rate = opt.learning_rate
    return state


def _split(flat, shapes):
    out, start = [], 0
    for shape in shapes:
        size = int(np.prod(shape))
        out.append(flat[start:start + size].reshape(shape).copy())
        start += size
    return out

"""Plain NumPy reference implementations that the kernels are tested against.

Everything follows scikit-learn's ``sklearn/neural_network/_base.py``,
``_multilayer_perceptron.py`` (``_forward_pass``, ``_backprop``) and
``_stochastic_optimizers.py``, computed in float64 whatever the input dtype, extended
with relumlp's additions: more hidden activations (derivatives as functions of z),
per-layer activations, PReLU slopes, an L1 penalty, gradient clipping and inverted
dropout with its splitmix64 masks.
"""
import numpy as np
import scipy.special

# Relative tolerances for comparing a kernel (run in `dtype`) with this float64 reference.
RTOL = {np.float32: 2e-5, np.float64: 1e-12}


def _as64(a):
    return np.asarray(a.toarray() if hasattr(a, "toarray") else a, dtype=np.float64)


def _logistic(z):
    # exp of a non-positive number only, so that nothing overflows.
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805


def _neg(z):
    # exp and expm1 only ever see non-positive numbers: nothing overflows.
    return np.minimum(z, 0)


def _normal_cdf(z):
    # erfc keeps full relative accuracy in the lower tail, where 1 + erf(z) cancels.
    return 0.5 * scipy.special.erfc(-z / np.sqrt(2))


def _normal_pdf(z):
    return np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi)


def _logistic_grad(z):
    return _logistic(z) * _logistic(-z)


# name -> (f(z, p), f'(z, p)), both as functions of the pre-activation z. p is the layer
# parameter: the negative slope of leaky_relu, the alpha of elu, or for prelu the slopes
# of the units (shape (n_units,), broadcast along the rows); other activations ignore it.
# Every formula is finite for any finite float64 z up to |z| ~ 1e150 and warns nothing.
HIDDEN = {
    "identity": (lambda z, p=0: z, lambda z, p=0: np.ones_like(z)),
    "logistic": (lambda z, p=0: _logistic(z), lambda z, p=0: _logistic_grad(z)),
    "tanh": (lambda z, p=0: np.tanh(z), lambda z, p=0: 1 - np.tanh(z) ** 2),
    "relu": (lambda z, p=0: np.maximum(z, 0), lambda z, p=0: (z > 0).astype(np.float64)),
    "leaky_relu": (lambda z, p: np.where(z > 0, z, p * z),
                   lambda z, p: np.where(z > 0, 1.0, p * np.ones_like(z))),
    "prelu": (lambda z, p: np.where(z > 0, z, p * z),
              lambda z, p: np.where(z > 0, 1.0, p * np.ones_like(z))),
    "elu": (lambda z, p: np.where(z > 0, z, p * np.expm1(_neg(z))),
            lambda z, p: np.where(z > 0, 1.0, p * np.exp(_neg(z)))),
    "selu": (lambda z, p=0: SELU_SCALE * np.where(z > 0, z, SELU_ALPHA * np.expm1(_neg(z))),
             lambda z, p=0: SELU_SCALE * np.where(z > 0, 1.0, SELU_ALPHA * np.exp(_neg(z)))),
    "gelu": (lambda z, p=0: z * _normal_cdf(z),
             lambda z, p=0: _normal_cdf(z) + z * _normal_pdf(z)),
    "silu": (lambda z, p=0: z * _logistic(z),
             lambda z, p=0: _logistic(z) + z * _logistic_grad(z)),
    "softplus": (lambda z, p=0: np.logaddexp(0, z), lambda z, p=0: _logistic(z)),
}
# Aliases of the public API.
HIDDEN["swish"] = HIDDEN["silu"]

OUTPUT = {
    "identity": lambda z: z,
    "logistic": _logistic,
    "softmax": _softmax,
    "exp": np.exp,
}


def _average(values, sw):
    """Weighted average over samples, one value per output (np.average, axis=0)."""
    sw = np.ones(values.shape[0]) if sw is None else np.asarray(sw, dtype=np.float64)
    return (values * sw[:, None]).sum(axis=0) / sw.sum()


def _xlogy(x, y):
    """x * log(y), and 0 where x == 0 (scipy.special.xlogy)."""
    safe = np.where(x == 0, 1.0, y)
    return np.where(x == 0, 0.0, x * np.log(safe))


def squared_error(Y, P, sw=None):
    Y, P = _as64(Y), _as64(P)
    # Summed over outputs (its gradient is P - Y); scikit-learn reports the mean over
    # outputs instead while following the same gradient (scikit-learn issue #8349).
    return 0.5 * _average((Y - P) ** 2, sw).sum()


def log_loss(Y, P, sw=None):
    # Clip at the epsilon of the predictions' dtype, as scikit-learn does.
    eps = np.finfo(P.dtype).eps
    Y, P = _as64(Y), np.clip(_as64(P), eps, 1 - eps)
    return -_average(_xlogy(Y, P), sw).sum()


def binary_log_loss(Y, P, sw=None):
    eps = np.finfo(P.dtype).eps
    Y, P = _as64(Y), np.clip(_as64(P), eps, 1 - eps)
    return -_average(_xlogy(Y, P) + _xlogy(1 - Y, 1 - P), sw).sum()


def poisson(Y, P, sw=None):
    Y, P = _as64(Y), _as64(P)
    # y log y - y log p: no ratio y / p, which over- or underflows at the extremes.
    with np.errstate(divide="ignore", invalid="ignore"):
        return _average(_xlogy(Y, Y) - _xlogy(Y, P) - Y + P, sw).sum()


LOSSES = {
    "squared_error": squared_error,
    "log_loss": log_loss,
    "binary_log_loss": binary_log_loss,
    "poisson": poisson,
}


def _hidden_layers(activation, n_hidden, act_params, slopes):
    """(name, p) per hidden layer: p is the PReLU slopes of a prelu layer, else act_params[l]."""
    names = [activation] * n_hidden if isinstance(activation, str) else list(activation)
    act_params = [0.0] * n_hidden if act_params is None else list(act_params)
    slopes = [None] * n_hidden if slopes is None else list(slopes)
    assert len(names) == len(act_params) == len(slopes) == n_hidden
    return [(name, _as64(s) if name == "prelu" else float(p))
            for name, p, s in zip(names, act_params, slopes)]


def forward_pass(coefs, intercepts, X, activation, out_activation, act_params=None,
                 slopes=None, masks=None):
    """Pre-activations Z_l and outputs A_l of every layer (A_0 = X).

    ``activation`` is one hidden activation name or one per hidden layer; ``act_params``
    gives each hidden layer's scalar parameter and ``slopes`` each prelu layer's slopes
    (None elsewhere). ``masks`` gives each hidden layer's inverted-dropout multipliers,
    an array of 0 and 1 / (1 - rate) with A's shape, or None: the output A_l of a hidden
    layer is then f(Z_l) * mask_l, which is what the next layer reads.
    """
    n_hidden = len(coefs) - 1
    layers = _hidden_layers(activation, n_hidden, act_params, slopes)
    masks = [None] * n_hidden if masks is None else list(masks)
    A = [_as64(X)]
    Z = []
    for l, (W, b) in enumerate(zip(coefs, intercepts)):
        Z.append(A[-1] @ _as64(W) + _as64(b))
        if l == n_hidden:
            A.append(OUTPUT[out_activation](Z[-1]))
        else:
            name, p = layers[l]
            out = HIDDEN[name][0](Z[-1], p)
            A.append(out if masks[l] is None else out * _as64(masks[l]))
    return Z, A


def backprop(coefs, intercepts, X, Y, sw, activation, out_activation, loss, alpha,
             act_params=None, slopes=None, l1=0.0, masks=None):
    """Objective and gradient of scikit-learn's ``_backprop``, extended, in float64.

    Extensions: per-layer activations with their parameters, PReLU slopes (learned,
    not penalised), an L1 penalty ``l1 * |W|_1 / sw.sum()`` on the weights only (with
    sign(0) = 0 in its gradient) and dropout with fixed masks (see ``forward_pass``).

    Returns ``(loss, coef_grads, intercept_grads, slope_grads)``; ``slope_grads[l]`` is
    None for a hidden layer without slopes.
    """
    Y = _as64(Y)
    sw = np.ones(Y.shape[0]) if sw is None else _as64(sw)
    sw_sum = sw.sum()
    if loss == "log_loss" and out_activation == "logistic":
        loss = "binary_log_loss"
    coefs = [_as64(W) for W in coefs]
    n_hidden = len(coefs) - 1
    layers = _hidden_layers(activation, n_hidden, act_params, slopes)
    masks = [None] * n_hidden if masks is None else list(masks)
    Z, A = forward_pass(coefs, intercepts, X, activation, out_activation, act_params,
                        slopes, masks)
    value = LOSSES[loss](Y, A[-1], sw)
    value += 0.5 * alpha * sum(np.dot(W.ravel(), W.ravel()) for W in coefs) / sw_sum
    value += l1 * sum(np.abs(W).sum() for W in coefs) / sw_sum

    D = (A[-1] - Y) * sw[:, None]
    coef_grads = [None] * len(coefs)
    intercept_grads = [None] * len(coefs)
    slope_grads = [None] * n_hidden
    for l in range(len(coefs) - 1, -1, -1):
        coef_grads[l] = (A[l].T @ D + alpha * coefs[l] + l1 * np.sign(coefs[l])) / sw_sum
        intercept_grads[l] = D.sum(axis=0) / sw_sum
        if l > 0:
            dA = D @ coefs[l].T  # dL/d(output of hidden layer l - 1)
            if masks[l - 1] is not None:
                dA = dA * _as64(masks[l - 1])
            name, p = layers[l - 1]
            if name == "prelu":
                slope_grads[l - 1] = (dA * np.minimum(Z[l - 1], 0)).sum(axis=0) / sw_sum
            D = dA * HIDDEN[name][1](Z[l - 1], p)
    return value, coef_grads, intercept_grads, slope_grads


def loss_and_grad(coefs, intercepts, X, Y, sw, activation, out_activation, loss, alpha,
                  **extensions):
    """scikit-learn's ``_backprop``: objective and its gradient, in float64.

    Returns ``(loss, coef_grads, intercept_grads)``; ``extensions`` go to ``backprop``.
    """
    return backprop(coefs, intercepts, X, Y, sw, activation, out_activation, loss, alpha,
                    **extensions)[:3]


def flatten(coefs, intercepts, slopes=()):
    """The flat parameter order of relumlp (scikit-learn's lbfgs order, then PReLU slopes):
    coefs, intercepts, then the slopes of each prelu layer (None entries skipped)."""
    arrays = list(coefs) + list(intercepts) + [s for s in slopes if s is not None]
    return np.concatenate([np.ravel(a) for a in arrays])


# --------------------------------------------------------------------------------------
# Dropout masks: inverted dropout keeps element (i, j) of a (n, m) block iff
# u(seed, stream, (row0 + i) * m + j) >= rate, u a splitmix64 hash mapped to [0, 1).

_U64 = np.uint64


def _splitmix64(x):
    # uint64 arrays wrap modulo 2**64 silently (NumPy scalars would warn).
    x = (x ^ (x >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> _U64(27))) * _U64(0x94D049BB133111EB)
    return x ^ (x >> _U64(31))


def dropout_uniform(seed, stream, index):
    """The uniform draw in [0, 1) of each element index, as an array."""
    seed = np.full(1, seed, dtype=_U64) + _U64(0x9E3779B97F4A7C15)
    stream = np.full(1, stream, dtype=_U64)
    h = _splitmix64(_splitmix64(_splitmix64(seed) ^ stream) ^ np.asarray(index, dtype=_U64))
    return (h >> _U64(11)).astype(np.float64) * 2.0**-53


def dropout_mask(shape, rate, seed, stream, row0=0):
    """Boolean keep-mask of an (n, m) block whose first row is global row ``row0``."""
    n, m = shape
    index = (row0 + np.arange(n, dtype=np.int64))[:, None] * m + np.arange(m)
    return dropout_uniform(seed, stream, index) >= rate


def dropout_multipliers(shape, rate, seed, stream, row0=0):
    """mask / (1 - rate): the factor inverted dropout applies to each output."""
    return dropout_mask(shape, rate, seed, stream, row0) * (1.0 / (1.0 - rate))


# --------------------------------------------------------------------------------------
# Gradient post-processing

def finalize_gradient(G, params, n_coefs, alpha, l1, sw_sum):
    """Raw gradient sums -> mean penalised gradient: the first ``n_coefs`` entries
    (the weights) get ``alpha * W + l1 * sign(W)``, then everything is divided by sw_sum."""
    G, params = _as64(G).copy(), _as64(params)
    W = params[:n_coefs]
    G[:n_coefs] += alpha * W + l1 * np.sign(W)
    return G / sw_sum


def clip_by_norm(G, max_norm):
    """``(G * min(1, max_norm / ||G||), ||G||)``."""
    G = _as64(G)
    norm = np.sqrt(np.dot(G, G))
    return (G * (max_norm / norm) if norm > max_norm else G.copy()), norm


def sgd_update(params, grads, velocity, learning_rate, momentum, nesterov):
    """scikit-learn's ``SGDOptimizer`` step; returns ``(params, velocity)``."""
    update = momentum * velocity - learning_rate * grads
    velocity = update
    if nesterov:
        update = momentum * velocity - learning_rate * grads
    return params + update, velocity


def adam_learning_rate(learning_rate_init, beta_1, beta_2, t):
    """Bias-corrected step size of step ``t`` (counted from 1)."""
    return learning_rate_init * np.sqrt(1 - beta_2**t) / (1 - beta_1**t)


def adam_update(params, grads, m, v, learning_rate, beta_1, beta_2, epsilon):
    """scikit-learn's ``AdamOptimizer`` step at the bias-corrected ``learning_rate``.

    Returns ``(params, m, v)``.
    """
    m = beta_1 * m + (1 - beta_1) * grads
    v = beta_2 * v + (1 - beta_2) * (grads**2)
    return params + -learning_rate * m / (np.sqrt(v) + epsilon), m, v

"""Decoupled weight decay (AdamW and its SGD form) and the cosine schedule with a linear
warm-up: kernels against NumPy written from PyTorch's rules and the closed form, and the
estimators' parameters end to end."""
import math

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from relumlp import ReLUMLPClassifier, ReLUMLPRegressor, _kernels

from _helpers import ignore_convergence


def adamw_torch_rule(p, g, m, v, step, lr, beta_1, beta_2, eps, weight_decay, decayed):
    """torch.optim.AdamW's update of step ``step`` (1-based), written out: decay, moments,
    then p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps)."""
    p = np.where(decayed, p * (1 - lr * weight_decay), p)
    m = beta_1 * m + (1 - beta_1) * g
    v = beta_2 * v + (1 - beta_2) * g * g
    bc1, bc2 = 1 - beta_1 ** step, 1 - beta_2 ** step
    return p - lr / bc1 * m / (np.sqrt(v) / math.sqrt(bc2) + eps), m, v


def _steps(opt, params, grads, n_coefs):
    """fused_step over the list of gradients, advancing opt.t as sgd_epoch does."""
    for g in grads:
        G = g.copy()
        _kernels.fused_step(params, G, opt, _kernels.Objective(loss=0, alpha=0.0, clip_eps=1e-7),
                            n_coefs, 1.0, 1)
        opt.t += 1
    return params


@pytest.mark.parametrize("epsilon", [1e-30, 1e-8])
def test_adamw_is_pytorchs_rule(epsilon):
    rng = np.random.default_rng(0)
    n, n_coefs, lr, wd = 40, 30, 1e-2, 0.05
    p0 = rng.standard_normal(n)
    grads = [rng.standard_normal(n) for _ in range(6)]
    m, v = np.zeros(n), np.zeros(n)
    opt = _kernels.Optimizer.adam(m, v, learning_rate=lr, beta_1=0.9, beta_2=0.999,
                                  epsilon=epsilon, t=0).with_schedule(weight_decay=wd)
    ours = _steps(opt, p0.copy(), grads, n_coefs)
    p, mr, vr = p0.copy(), np.zeros(n), np.zeros(n)
    decayed = np.arange(n) < n_coefs
    for step, g in enumerate(grads, 1):
        p, mr, vr = adamw_torch_rule(p, g, mr, vr, step, lr, 0.9, 0.999, epsilon, wd, decayed)
    np.testing.assert_array_equal(ours[n_coefs:] != p0[n_coefs:], True)
    if epsilon < 1e-20:
        # scikit-learn's Adam (which relumlp keeps) adds epsilon to sqrt(v), PyTorch to
        # sqrt(v / bc2): with epsilon negligible the two rules are the same.
        np.testing.assert_allclose(ours, p, rtol=1e-12, atol=1e-14)
    else:
        np.testing.assert_allclose(ours, p, rtol=1e-6)
    # Intercepts (past n_coefs) are not decayed: they equal plain Adam's.
    plain = _steps(_kernels.Optimizer.adam(np.zeros(n), np.zeros(n), learning_rate=lr,
                                           beta_1=0.9, beta_2=0.999, epsilon=epsilon, t=0),
                   p0.copy(), grads, n_coefs)
    np.testing.assert_array_equal(ours[n_coefs:], plain[n_coefs:])
    assert np.all(np.abs(ours[:n_coefs] - plain[:n_coefs]) > 0)


def test_adamw_against_torch_itself():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    n, lr, wd, eps = 25, 3e-3, 0.1, 1e-30
    p0, grads = rng.standard_normal(n), [rng.standard_normal(n) for _ in range(8)]
    w = torch.nn.Parameter(torch.from_numpy(p0.copy()))
    topt = torch.optim.AdamW([w], lr=lr, betas=(0.9, 0.999), eps=eps, weight_decay=wd)
    for g in grads:
        w.grad = torch.from_numpy(g.copy())
        topt.step()
    opt = _kernels.Optimizer.adam(np.zeros(n), np.zeros(n), learning_rate=lr, beta_1=0.9,
                                  beta_2=0.999, epsilon=eps, t=0).with_schedule(weight_decay=wd)
    ours = _steps(opt, p0.copy(), grads, n)
    np.testing.assert_allclose(ours, w.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_sgd_weight_decay_is_decoupled():
    rng = np.random.default_rng(2)
    n, n_coefs, lr, wd, mom = 20, 12, 0.1, 0.3, 0.9
    p0, grads = rng.standard_normal(n), [rng.standard_normal(n) for _ in range(4)]
    opt = _kernels.Optimizer.sgd(np.zeros(n), learning_rate=lr, momentum=mom,
                                 nesterov=False).with_schedule(weight_decay=wd)
    ours = _steps(opt, p0.copy(), grads, n_coefs)
    p, vel = p0.copy(), np.zeros(n)
    for g in grads:
        p = np.where(np.arange(n) < n_coefs, p * (1 - lr * wd), p)
        vel = mom * vel - lr * g
        p = p + vel
    np.testing.assert_allclose(ours, p, rtol=1e-14, atol=1e-15)


def cosine_closed_form(lr, step, warmup, total):
    if step < warmup:
        return lr * (step + 1) / warmup
    if total <= warmup:
        return 0.0
    return 0.5 * lr * (1 + math.cos(math.pi * min((step - warmup) / (total - warmup), 1)))


@pytest.mark.parametrize("warmup, total", [(0, 50), (7, 50), (10, 10), (3, 1)])
def test_cosine_rate_is_the_closed_form(warmup, total):
    rates = [_kernels.cosine_learning_rate(0.2, s, warmup, total) for s in range(total + 5)]
    expected = [cosine_closed_form(0.2, s, warmup, total) for s in range(total + 5)]
    np.testing.assert_allclose(rates, expected, rtol=1e-15, atol=1e-17)
    if warmup:
        assert rates[warmup - 1] == pytest.approx(0.2) and rates[0] == pytest.approx(0.2 / warmup)
    assert rates[-1] == 0.0 and min(rates) >= 0


def test_sgd_steps_follow_the_schedule():
    # Plain SGD (no momentum) moves each parameter by -lr_t * g: the rates read back.
    n, steps, warmup = 3, 9, 2
    opt = _kernels.Optimizer.sgd(np.zeros(n), learning_rate=0.5, momentum=0.0,
                                 nesterov=False).with_schedule(cosine=True, warmup_steps=warmup,
                                                               total_steps=steps)
    p = np.zeros(n)
    for s in range(steps):
        before = p.copy()
        _steps(opt, p, [np.ones(n)], 0)
        assert (before - p)[0] == pytest.approx(cosine_closed_form(0.5, s, warmup, steps),
                                                 rel=1e-15, abs=1e-17)


def _data(n=240, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 8))
    y = (X[:, 0] + X[:, 1] ** 2 > 1).astype(int) + (X[:, 2] > 0.5)
    return X, y


@ignore_convergence
@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_estimators_train_with_cosine_and_weight_decay(solver):
    X, y = _data()
    common = dict(hidden_layer_sizes=(16,), solver=solver, max_iter=12, batch_size=40,
                  learning_rate_init=0.05, random_state=0)
    plain = ReLUMLPClassifier(**common).fit(X, y)
    decayed = ReLUMLPClassifier(weight_decay=0.5, **common).fit(X, y)
    assert np.linalg.norm(decayed.coefs_[0]) < np.linalg.norm(plain.coefs_[0])
    cos = ReLUMLPClassifier(learning_rate="cosine", warmup_iters=2, **common).fit(X, y)
    steps = 12 * 6  # 240 rows / 40 per batch
    assert cos._optimizer.t == steps
    # The learning rate recorded per epoch is the last step's scheduled rate (adam:
    # bias-corrected, as scikit-learn reports Adam's).
    last = [cosine_closed_form(0.05, 6 * (e + 1) - 1, 12, steps) for e in range(12)]
    if solver == "sgd":
        np.testing.assert_allclose([h["learning_rate"] for h in cos.history_], last,
                                   rtol=1e-12, atol=1e-15)
    assert cos.history_[-1]["learning_rate"] == pytest.approx(0, abs=1e-3)
    assert cos.score(X, y) > 0.6


@ignore_convergence
def test_schedule_and_decay_do_not_depend_on_threads():
    X, y = _data(600)
    est = ReLUMLPRegressor(hidden_layer_sizes=(64, 32), learning_rate="cosine",
                           warmup_iters=1, weight_decay=0.01, max_iter=4, batch_size=64,
                           random_state=0)
    fits = []
    for n in (1, 2, 3):
        with threadpool_limits(n, user_api="openmp"):
            fits.append(est.fit(X, y.astype(float)).coefs_[0].copy())
    assert all(np.array_equal(fits[0], f) for f in fits[1:])


@ignore_convergence
def test_partial_fit_carries_the_schedule_on():
    X, y = _data()
    est = ReLUMLPClassifier(hidden_layer_sizes=(8,), learning_rate="cosine", max_iter=3,
                            batch_size=60, random_state=0)
    for k in range(1, 5):
        est.partial_fit(X, y, classes=np.unique(y))
        assert est._optimizer.t == 4 * k
    # After max_iter epochs' worth of steps the rate is 0: the weights stop moving.
    before = [c.copy() for c in est.coefs_]
    est.partial_fit(X, y)
    assert all(np.array_equal(a, b) for a, b in zip(before, est.coefs_))


def _smoothed_log_loss(model, X, Y, alpha):
    """The loss scikit-learn's MLP reports, in NumPy, for soft targets Y."""
    A = X
    for W, b in zip(model.coefs_[:-1], model.intercepts_[:-1]):
        A = np.maximum(A @ W + b, 0)
    Z = A @ model.coefs_[-1] + model.intercepts_[-1]
    eps = np.finfo(Z.dtype).eps
    if model.out_activation_ == "softmax":
        P = np.exp(Z - Z.max(1, keepdims=True))
        P = np.clip(P / P.sum(1, keepdims=True), eps, 1 - eps)
        data = -(Y * np.log(P)).sum() / len(X)
    else:
        P = np.clip(1 / (1 + np.exp(-Z)), eps, 1 - eps)
        data = -(Y * np.log(P) + (1 - Y) * np.log(1 - P)).sum() / len(X)
    return data + 0.5 * alpha * sum((W ** 2).sum() for W in model.coefs_) / len(X)


@ignore_convergence
@pytest.mark.parametrize("target", ["binary", "multiclass", "multilabel"])
def test_label_smoothing_trains_on_the_smoothed_loss(target):
    X, y = _data(90, seed=3)
    eps, alpha = 0.2, 1e-3
    if target == "binary":
        y = (y > 0).astype(int)
        Y = y[:, None] * (1 - eps) + eps / 2
    elif target == "multiclass":
        Y = np.eye(3)[y] * (1 - eps) + eps / 3
    else:
        y = np.stack([y > 0, y > 1, X[:, 3] > 0], axis=1).astype(int)
        Y = y * (1 - eps) + eps / 2
    # A learning rate of 1e-300 leaves the weights where they started: the loss of the
    # single full-batch epoch is the smoothed loss of the fitted weights.
    model = ReLUMLPClassifier(hidden_layer_sizes=(7,), solver="sgd", max_iter=1,
                              batch_size=90, shuffle=False, learning_rate_init=1e-300,
                              alpha=alpha, label_smoothing=eps, random_state=0).fit(X, y)
    assert model.loss_curve_[0] == pytest.approx(_smoothed_log_loss(model, X, Y, alpha),
                                                 rel=1e-12)
    plain = ReLUMLPClassifier(hidden_layer_sizes=(7,), solver="sgd", max_iter=1,
                              batch_size=90, shuffle=False, learning_rate_init=1e-300,
                              alpha=alpha, random_state=0).fit(X, y)
    Y0 = Y if eps == 0 else (Y - eps / (3 if target == "multiclass" else 2)) / (1 - eps)
    assert plain.loss_curve_[0] == pytest.approx(_smoothed_log_loss(plain, X, Y0, alpha),
                                                 rel=1e-12)
    # The gradient is P - Y for soft targets too: training with smoothing moves toward
    # them (a smoothed model is less confident on its training data).
    sharp = ReLUMLPClassifier(hidden_layer_sizes=(16,), max_iter=300, random_state=0).fit(X, y)
    smooth = ReLUMLPClassifier(hidden_layer_sizes=(16,), max_iter=300, label_smoothing=0.3,
                               random_state=0).fit(X, y)
    assert smooth.predict_proba(X).max() < sharp.predict_proba(X).max()


@pytest.mark.parametrize("out, k", [("softmax", 3), ("logistic", 1), ("logistic", 2)])
def test_smoothed_targets_gradient_matches_finite_differences(out, k):
    # With soft targets the output delta is still P - Y: the gradient of the smoothed
    # loss, checked against central differences of the loss the kernels report.
    from relumlp._params import NetworkLayout
    from relumlp._training import Trainer
    rng = np.random.default_rng(4)
    X = rng.standard_normal((15, 4))
    eps = 0.2
    hard = (np.eye(3)[rng.integers(0, 3, 15)] if out == "softmax"
            else (rng.random((15, k)) < 0.5).astype(float))
    Y = hard * (1 - eps) + eps / (3 if out == "softmax" else 2)
    layout = NetworkLayout([4, 5, Y.shape[1]], ["tanh"], out, [0.0], [0.0])
    flat = rng.uniform(-0.8, 0.8, layout.n_params)
    trainer = Trainer(layout, flat.copy(), X, Y, np.ones(15), "log_loss", 0.0)
    _, grads = trainer.loss_gradient(flat)
    grads = grads.copy()
    numerical = np.empty_like(flat)
    for j in range(flat.size):
        e = np.zeros_like(flat)
        e[j] = 1e-6
        numerical[j] = (trainer.loss_gradient(flat + e)[0]
                        - trainer.loss_gradient(flat - e)[0]) / 2e-6
    np.testing.assert_allclose(grads, numerical, rtol=1e-6, atol=1e-8)

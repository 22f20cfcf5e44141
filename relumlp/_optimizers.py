"""Stochastic optimizers: their hyperparameters, schedules and flat state buffers.

The update rules themselves are kernels (``_kernels._step_range``); an optimizer here
keeps what persists between epochs (moments, velocities, Adam's step count, the
learning rate of scikit-learn's schedules) and hands the kernels an
``_kernels.Optimizer`` view of it for each epoch. Semantics are scikit-learn's
``SGDOptimizer`` / ``AdamOptimizer``, plus what scikit-learn lacks: decoupled weight
decay (``weight_decay``: AdamW, and the same for SGD) and the per-step cosine schedule
with a linear warm-up (``learning_rate='cosine'``, ``warmup_iters``), whose step count
``t`` persists across epochs and ``partial_fit`` calls.
"""
import numpy as np

from relumlp import _kernels


class Schedule:
    """Decoupled weight decay and the cosine schedule, shared by both optimizers.

    With ``cosine``, the learning rate of step ``t`` (0-based, one per minibatch) is
    ``learning_rate_init * (t + 1) / W`` for the ``W = warmup_iters * steps`` warm-up
    steps, then ``learning_rate_init * (1 + cos(pi * (t - W) / (T - W))) / 2`` down to 0
    at ``T = max_iter * steps`` (``steps``: minibatches per epoch), and 0 after.
    """

    # Defaults for states pickled before these existed.
    weight_decay, cosine, warmup_iters, max_iter, t = 0.0, False, 0, 1, 0

    def _schedule_init(self, weight_decay, cosine, warmup_iters, max_iter):
        self.weight_decay = float(weight_decay)
        self.cosine = bool(cosine)
        self.warmup_iters = int(warmup_iters)
        self.max_iter = int(max_iter)
        self.t = 0

    def _scheduled(self, kernel, steps_per_epoch):
        return kernel.with_schedule(weight_decay=self.weight_decay, cosine=self.cosine,
                                    warmup_steps=self.warmup_iters * steps_per_epoch,
                                    total_steps=self.max_iter * steps_per_epoch, t=self.t)

    def _scheduled_rate(self, kernel):
        """The cosine rate of the last step the kernel took."""
        return _kernels.cosine_learning_rate(self.learning_rate_init, max(kernel.t - 1, 0),
                                             kernel.warmup_steps, kernel.total_steps)


class SGDState(Schedule):
    """Momentum SGD state over the flat buffer, with scikit-learn's schedules."""

    def __init__(self, n_params, dtype, learning_rate_init, lr_schedule, momentum,
                 nesterov, power_t, weight_decay=0.0, warmup_iters=0, max_iter=1):
        self.learning_rate_init = learning_rate_init
        self.learning_rate = float(learning_rate_init)
        self.lr_schedule = lr_schedule
        self.momentum = momentum
        self.nesterov = nesterov
        self.power_t = power_t
        self.velocity = np.zeros(n_params, dtype=dtype)
        self._schedule_init(weight_decay, lr_schedule == "cosine", warmup_iters, max_iter)

    def kernel(self, steps_per_epoch=1):
        """This epoch's rule and state, as the kernels take it."""
        lr = self.learning_rate_init if self.cosine else self.learning_rate
        kernel = _kernels.Optimizer.sgd(self.velocity, learning_rate=lr,
                                        momentum=self.momentum, nesterov=self.nesterov)
        return self._scheduled(kernel, steps_per_epoch)

    def epoch_done(self, kernel):
        """Take over the step count the epoch advanced (and the cosine rate reached)."""
        self.t = kernel.t
        if self.cosine:
            self.learning_rate = self._scheduled_rate(kernel)

    def iteration_ends(self, time_step):
        if self.lr_schedule == "invscaling":
            self.learning_rate = float(self.learning_rate_init) / (time_step + 1) ** self.power_t

    def trigger_stopping(self, msg, verbose):
        if self.lr_schedule != "adaptive":
            if verbose:
                print(msg + " Stopping.")
            return True
        if self.learning_rate <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self.learning_rate /= 5.0
        if verbose:
            print(msg + " Setting learning rate to %f" % self.learning_rate)
        return False


class AdamState(Schedule):
    """Adam state (moments and step count) over the flat buffer."""

    def __init__(self, n_params, dtype, learning_rate_init, beta_1, beta_2, epsilon,
                 weight_decay=0.0, cosine=False, warmup_iters=0, max_iter=1):
        self.learning_rate_init = learning_rate_init
        self.learning_rate = float(learning_rate_init)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.ms = np.zeros(n_params, dtype=dtype)
        self.vs = np.zeros(n_params, dtype=dtype)
        self._schedule_init(weight_decay, cosine, warmup_iters, max_iter)

    def kernel(self, steps_per_epoch=1):
        """This epoch's rule and state, as the kernels take it."""
        kernel = _kernels.Optimizer.adam(self.ms, self.vs, learning_rate=self.learning_rate_init,
                                         beta_1=self.beta_1, beta_2=self.beta_2,
                                         epsilon=self.epsilon, t=self.t)
        return self._scheduled(kernel, steps_per_epoch)

    def epoch_done(self, kernel):
        """Take over the step count the epoch advanced; the learning rate reported is the
        bias-corrected one the kernel used last."""
        self.t = kernel.t
        rate = self._scheduled_rate(kernel) if self.cosine else self.learning_rate_init
        self.learning_rate = _kernels.adam_learning_rate(rate, self.beta_1, self.beta_2,
                                                         self.t)

    def iteration_ends(self, time_step):
        pass

    def trigger_stopping(self, msg, verbose):
        if verbose:
            print(msg + " Stopping.")
        return True


def make_optimizer(est, n_params, dtype):
    """A fresh optimizer for ``est.solver`` ('sgd' or 'adam') over n_params parameters."""
    schedule = dict(weight_decay=est.weight_decay, warmup_iters=est.warmup_iters,
                    max_iter=est.max_iter)
    if est.solver == "sgd":
        return SGDState(n_params, dtype, est.learning_rate_init, est.learning_rate,
                        est.momentum, est.nesterovs_momentum, est.power_t, **schedule)
    return AdamState(n_params, dtype, est.learning_rate_init, est.beta_1, est.beta_2,
                     est.epsilon, cosine=est.learning_rate == "cosine", **schedule)

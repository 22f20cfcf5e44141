"""Stochastic optimizers: their hyperparameters, schedules and flat state buffers.

The update rules themselves are kernels (``_kernels._step_range``); an optimizer here
keeps what persists between epochs (moments, velocities, Adam's step count, the
learning rate of scikit-learn's schedules) and hands the kernels an
``_kernels.Optimizer`` view of it for each epoch. Semantics are scikit-learn's
``SGDOptimizer`` / ``AdamOptimizer``.
"""
import numpy as np

from relumlp import _kernels


class SGDState:
    """Momentum SGD state over the flat buffer, with scikit-learn's schedules."""

    def __init__(self, n_params, dtype, learning_rate_init, lr_schedule, momentum,
                 nesterov, power_t):
        self.learning_rate_init = learning_rate_init
        self.learning_rate = float(learning_rate_init)
        self.lr_schedule = lr_schedule
        self.momentum = momentum
        self.nesterov = nesterov
        self.power_t = power_t
        self.velocity = np.zeros(n_params, dtype=dtype)

    def kernel(self):
        """This epoch's rule and state, as the kernels take it."""
        return _kernels.Optimizer.sgd(self.velocity, learning_rate=self.learning_rate,
                                      momentum=self.momentum, nesterov=self.nesterov)

    def epoch_done(self, kernel):
        """Take over what the epoch's kernel advanced (nothing for SGD)."""

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


class AdamState:
    """Adam state (moments and step count) over the flat buffer."""

    def __init__(self, n_params, dtype, learning_rate_init, beta_1, beta_2, epsilon):
        self.learning_rate_init = learning_rate_init
        self.learning_rate = float(learning_rate_init)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.t = 0
        self.ms = np.zeros(n_params, dtype=dtype)
        self.vs = np.zeros(n_params, dtype=dtype)

    def kernel(self):
        """This epoch's rule and state, as the kernels take it."""
        return _kernels.Optimizer.adam(self.ms, self.vs, learning_rate=self.learning_rate_init,
                                       beta_1=self.beta_1, beta_2=self.beta_2,
                                       epsilon=self.epsilon, t=self.t)

    def epoch_done(self, kernel):
        """Take over the step count the epoch advanced; the learning rate reported is the
        bias-corrected one the kernel used last."""
        self.t = kernel.t
        self.learning_rate = _kernels.adam_learning_rate(self.learning_rate_init,
                                                         self.beta_1, self.beta_2, self.t)

    def iteration_ends(self, time_step):
        pass

    def trigger_stopping(self, msg, verbose):
        if verbose:
            print(msg + " Stopping.")
        return True


def make_optimizer(est, n_params, dtype):
    """A fresh optimizer for ``est.solver`` ('sgd' or 'adam') over n_params parameters."""
    if est.solver == "sgd":
        return SGDState(n_params, dtype, est.learning_rate_init, est.learning_rate,
                        est.momentum, est.nesterovs_momentum, est.power_t)
    return AdamState(n_params, dtype, est.learning_rate_init, est.beta_1, est.beta_2,
                     est.epsilon)

"""Training: the epoch loop, early stopping, schedules, lbfgs and the records of a fit.

``Trainer`` holds the data in kernel form and the workspaces of one ``fit`` call and
runs the passes (an epoch is a single ``_kernels.sgd_epoch`` call, GIL released).
``StochasticFit`` and ``LBFGSFit`` are the optimisation loops: each owns the fit's
``TrainingState`` and publishes it to the estimator, whose hyperparameters it only
reads. Weights are restored one way, from a ``Checkpoint``. The semantics (loss
definition, schedules, stopping rules, ``n_iter_`` / ``t_``) follow scikit-learn's
``BaseMultilayerPerceptron``.
"""
import signal
import threading
import time
import warnings

import numpy as np
import scipy.optimize
from sklearn.exceptions import ConvergenceWarning

from relumlp import _inference, _kernels
from relumlp._activations import loss_code
from relumlp._inference import as_input, forward
from relumlp._optimizers import AdamState, SGDState, make_optimizer  # noqa: F401 (pickles)
from relumlp._state import network_attributes
from relumlp._threads import TeamChoice, effective_n_threads, epoch_plan


class DivergedError(ValueError):
    """Training produced a non-finite loss or weights; the last finite weights are kept.

    A subclass of ``ValueError`` (what scikit-learn's MLP raises), raised by ``fit`` /
    ``partial_fit`` without early stopping. The model keeps the weights of the last
    finite epoch, usable for ``predict`` and ``warm_start``.

    Examples
    --------
    >>> import numpy as np
    >>> from relumlp import DivergedError, ReLUMLPRegressor
    >>> rng = np.random.RandomState(0)
    >>> X, y = 1e150 * rng.uniform(size=(20, 3)), rng.standard_normal(20)
    >>> reg = ReLUMLPRegressor(learning_rate_init=1e3, max_iter=5, random_state=0)
    >>> try:
    ...     with np.errstate(all="ignore"):
    ...         reg.fit(X, y)
    ... except DivergedError as exc:
    ...     print("diverged:", "learning_rate_init=1000.0" in str(exc))
    diverged: True
    >>> all(np.isfinite(c).all() for c in reg.coefs_)
    True
    """


class Checkpoint:
    """Weights saved to go back to: the one way relumlp restores weights (the start of a
    diverged or interrupted epoch, early stopping's best epoch, lbfgs's last finite
    iterate). ``save`` copies into the buffer of the previous save when it fits."""

    def __init__(self):
        self.flat = None

    @classmethod
    def of(cls, flat):
        checkpoint = cls()
        checkpoint.save(flat)
        return checkpoint

    def save(self, flat):
        """Copy ``flat`` (cast to the dtype of the first save)."""
        if self.flat is None or self.flat.shape != np.shape(flat):
            self.flat = np.array(flat)
        else:
            self.flat[...] = flat

    def restore(self, flat):
        """Write the saved weights into ``flat``."""
        flat[...] = self.flat


class EpochMark:
    """What one epoch changes, saved at its start so that an interrupted epoch can be
    rolled back: the weights, the optimizer's state, the dropout stream and the training
    state (its curves by length). The copies go into buffers allocated at the first
    save and reused every epoch."""

    def __init__(self):
        self.weights = Checkpoint()
        self.optimizer = {}
        self.open = False   # saved and not yet completed: restore() applies

    def save(self, trainer, state):
        self.weights.save(trainer.flat)
        self.stream = trainer.objective.dropout_stream
        opt = getattr(state, "_optimizer", None)
        for key, value in ({} if opt is None else vars(opt)).items():
            if isinstance(value, np.ndarray):
                self.optimizer.setdefault(key, Checkpoint()).save(value)
            else:
                self.optimizer[key] = value
        self.state = state.snapshot()
        self.open = True

    def restore(self, trainer, state):
        self.weights.restore(trainer.flat)
        trainer.objective.dropout_stream = self.stream
        state.restore(self.state)
        opt = getattr(state, "_optimizer", None)
        for key, value in ({} if opt is None else self.optimizer).items():
            if isinstance(value, Checkpoint):
                value.restore(getattr(opt, key))
            else:
                setattr(opt, key, value)


class Trainer:
    """Data in kernel form plus every buffer one ``fit`` needs, allocated once; the
    epoch and full-batch passes over them.

    Parameters
    ----------
    layout : NetworkLayout
    flat : ndarray
        The flat parameter buffer (updated in place).
    X : ndarray or sparse matrix
    Y : ndarray of shape (n_samples, n_outputs)
        Targets in the parameter dtype (one-hot / indicator for classifiers).
    sample_weight : ndarray of shape (n_samples,)
    loss : str
    alpha : float
        L2 strength.
    alpha_l1 : float, default=0.0
        L1 strength (subgradient).
    max_grad_norm : float or None, default=None
        Clip each minibatch gradient to this global norm (stochastic solvers).
    dropout_seed : int, default=0
        Seed of the dropout masks (used only when the layout has dropout).
    dropout_stream : int, default=0
        Dropout stream of the next minibatch (minibatches trained so far).
    """

    def __init__(self, layout, flat, X, Y, sample_weight, loss, alpha, alpha_l1=0.0,
                 max_grad_norm=None, dropout_seed=0, dropout_stream=0):
        self.layout = layout
        self.flat = flat
        self.dtype = flat.dtype
        self.X = as_input(X, self.dtype)
        self.Y = np.ascontiguousarray(Y, dtype=self.dtype)
        self.sw = np.ascontiguousarray(sample_weight, dtype=self.dtype)
        self.data = _kernels.Dataset(self.X, self.Y, self.sw)
        self.max_grad_norm = 0.0 if max_grad_norm is None else float(max_grad_norm)
        self.objective = _kernels.Objective(
            loss=loss_code(loss, layout.out_activation), alpha=float(alpha),
            l1=float(alpha_l1), clip_eps=float(np.finfo(self.dtype).eps),
            max_grad_norm=self.max_grad_norm, dropout_seed=int(dropout_seed),
            dropout_stream=int(dropout_stream))
        self.started = False        # True once the first epoch / iteration begins
        self.row_parts = 0          # set by StochasticFit from _threads.epoch_plan
        self.team = TeamChoice()    # threads for the row-split epochs, epoch by epoch
        self.n_threads = None   # set per call, inside the caller's BLAS limits
        self.ws = None

    @property
    def grads(self):
        return self.ws.grads

    def _allocate(self, batch_size):
        if self.ws is None or self.ws.rows != batch_size:
            self.ws = self.layout.workspace(batch_size, self.dtype, training=True,
                                            dense_batches=not self.X.sparse)

    def epoch(self, optimizer, idx, batch_size, count_units=False):
        """One pass over the rows ``idx`` (in that order); returns the summed loss.

        With ``count_units``, ``self.nonpos`` holds afterwards, per hidden unit, how many
        rows of the epoch had a pre-activation <= 0 (counted in the forward kernel).
        """
        self._allocate(batch_size)
        self.n_threads = effective_n_threads()
        if self.row_parts:
            self.n_threads = self.team.threads(min(self.n_threads, self.row_parts))
        count = count_units and self.layout.network.n_hidden_units > 0
        kernel = optimizer.kernel(steps_per_epoch=-(-idx.size // batch_size))
        started = time.perf_counter()
        acc = _kernels.sgd_epoch(self.flat, self.ws, self.data, idx, kernel, self.objective,
                                 self.n_threads, self.row_parts, count)
        if self.row_parts:
            wall = time.perf_counter() - started
            cpu = self.ws.thread_cpu[1:self.n_threads]
            self.team.record(self.n_threads, wall / max(idx.size, 1),
                             cpu.min() / wall if self.n_threads > 1 else 1.0)
        optimizer.epoch_done(kernel)
        self.nonpos = self.ws.unit_counts() if count else None
        return acc

    def unit_stats(self, n_rows):
        """Per hidden layer: dead fraction and mean sparsity of the last epoch.

        A unit is dead for the epoch if its pre-activation was <= 0 for every one of the
        ``n_rows`` rows; sparsity is the share of pre-activations <= 0.
        """
        dead, sparsity = [], []
        start = 0
        for width in self.layout.units[1:-1]:
            counts = self.nonpos[start:start + width]
            dead.append(float(np.mean(counts == n_rows)))
            sparsity.append(float(counts.sum() / (n_rows * width)))
            start += width
        return dead, sparsity

    def grad_norms(self):
        """Euclidean norm of each layer's weight gradient in the last minibatch step."""
        return [float(np.linalg.norm(self.grads[o:o + i * n]))
                for o, (i, n) in zip(self.layout.w_off, self.layout.coef_shapes)]

    def loss_gradient(self, flat=None):
        """Full-batch loss and gradient at ``flat`` (default: the current parameters).

        With dropout, the masks are those of the objective's ``dropout_stream``: a fixed,
        deterministic function of the parameters (what finite differences need).
        """
        n = self.Y.shape[0]
        # Batch norm normalizes over the whole batch: one chunk of every row.
        whole = self.layout.network.batch_normalized
        self._allocate(max(1, n if whole else min(n, _inference.CHUNK_ROWS)))
        self.n_threads = effective_n_threads()
        loss = _kernels.loss_gradient(self.flat if flat is None else flat, self.ws,
                                      self.data, self.objective, self.n_threads)
        return loss, self.grads


class _Fit:
    """What both optimisation loops share: the estimator (hyperparameters, scorer,
    callbacks; read only), the trainer and the training state it owns."""

    def __init__(self, est, trainer, state):
        self.est = est
        self.trainer = trainer
        self.state = state

    def run(self, *args, **kwargs):
        """Train; however the fit ends, the estimator gets its state."""
        try:
            self._run(*args, **kwargs)
        finally:
            self.state._dropout_step = self.trainer.objective.dropout_stream
            self.state.publish(self.est)

    def _network_attributes(self):
        """scikit-learn's callbacks' ``fitted_estimator``: a copy of the weights."""
        return network_attributes(self.trainer.layout, self.trainer.flat.copy())

    def _diverged(self, checkpoint, accumulated):
        """Restore the weights of ``checkpoint`` (the last finite ones) and raise.

        The message starts with scikit-learn's, so code matching it keeps working. The
        optimizer state (now non-finite) is dropped: a warm start begins a fresh one.
        """
        est, state = self.est, self.state
        checkpoint.restore(self.trainer.flat)
        if hasattr(state, "_optimizer"):
            del state._optimizer
        raise DivergedError(
            "Solver produced non-finite parameter weights. The input data may contain "
            f"large values and need to be preprocessed. The loss became {accumulated!r} in "
            f"epoch {state.n_iter_ + 1} with solver={est.solver!r} and learning_rate_init="
            f"{est.learning_rate_init!r}; the weights of the last finite epoch "
            f"({state.n_iter_}) were restored. Scale the data (e.g. StandardScaler), lower "
            "learning_rate_init or set max_grad_norm."
        )


class StochasticFit(_Fit):
    """scikit-learn's ``_fit_stochastic``, one kernel call per epoch.

    ``run(X, y, sample_weight, incremental, validation, y_labels, callback_ctx)``: ``X`` /
    ``y`` / ``sample_weight`` are the validated inputs (``y`` in the estimator's target
    encoding, used only for the early-stopping split and score; ``y_labels`` as the user
    gave them, for callbacks). Each epoch is a subtask of ``callback_ctx`` (scikit-learn's
    callback protocol) when given; a callback returning True from ``on_fit_task_end``
    stops training after that epoch. The first Ctrl-C stops after the running epoch; a
    second one interrupts at once and rolls back to the last completed epoch.
    """

    def _run(self, X, y, sample_weight, incremental, validation=None, y_labels=None,
             callback_ctx=None):
        est, trainer, state = self.est, self.trainer, self.state
        y_labels = y if y_labels is None else y_labels
        if not incremental or not hasattr(state, "_optimizer"):
            state._optimizer = make_optimizer(est, trainer.layout.n_params, trainer.dtype)
        optimizer = state._optimizer
        early_stopping = est.early_stopping
        n_total = trainer.Y.shape[0]
        Y_val = None  # validation targets in the network's output encoding
        if validation is not None:
            # A user-supplied validation set: no split, every row trains.
            X_val, y_val, Y_val = validation
            sw_val = None
            train_idx = np.arange(n_total, dtype=np.intp)
        elif early_stopping:
            train_idx, val_idx = self._validation_split(y, n_total)
            X_val = X[val_idx]
            Y_val = y_val = y[val_idx]
            sw_val = None if sample_weight is None else sample_weight[val_idx]
            if hasattr(est, "_label_binarizer"):
                y_val = est._label_binarizer.inverse_transform(y_val)
        else:
            train_idx = np.arange(n_total, dtype=np.intp)
            X_val = y_val = sw_val = None
        state.continue_stochastic(early_stopping, validation is not None, Y_val is not None,
                                  Checkpoint.of(trainer.flat))
        if Y_val is not None:
            Y_val = np.ascontiguousarray(np.asarray(Y_val).reshape(len(Y_val), -1),
                                         dtype=trainer.dtype)
            sw_val_k = np.ascontiguousarray(np.ones(len(Y_val)) if sw_val is None else sw_val,
                                            dtype=trainer.dtype)

        n_samples = train_idx.shape[0]
        sample_idx = np.arange(n_samples, dtype=np.intp)
        if est.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if est.batch_size > n_samples:
                warnings.warn(
                    "Got `batch_size` less than 1 or larger than sample size. It is going "
                    "to be clipped"
                )
            batch_size = int(np.clip(est.batch_size, 1, n_samples))

        context, trainer.row_parts = epoch_plan(trainer.layout, batch_size, trainer.X.sparse,
                                                trainer.max_grad_norm > 0)
        # What callbacks see as the training data: with an early-stopping split, the
        # training rows, extracted only if a callback asks for them (a copy of X).
        split = validation is None and early_stopping
        X_train = _Lazy(lambda: X[train_idx]) if split else X
        y_train = _Lazy(lambda: y_labels[train_idx]) if split else y_labels
        metadata = None if sample_weight is None else {"sample_weight": (
            sample_weight[train_idx] if split else sample_weight)}
        progress = Progress(1 if incremental else est.max_iter, est.verbose)
        state.n_iter_ = 0
        mark = EpochMark()
        state.publish(est)
        trainer.started = True
        with context, InterruptGuard() as interrupt:
            try:
                for _ in range(est.max_iter):
                    mark.save(trainer, state)
                    epoch_ctx = None
                    if callback_ctx is not None:
                        epoch_ctx = callback_ctx.subcontext(task_name="epoch")
                        epoch_ctx.call_on_fit_task_begin(
                            estimator=est, X=X_train, y=y_train, metadata=metadata,
                            reconstruction_attributes=self._network_attributes)
                    if est.shuffle:
                        # sklearn.utils.shuffle's draws (an arange shuffled in place),
                        # without its validation overhead.
                        perm = np.arange(n_samples, dtype=np.intp)
                        est._random_state.shuffle(perm)
                        sample_idx = sample_idx[perm]
                    tic = time.perf_counter()
                    accumulated = trainer.epoch(optimizer, train_idx[sample_idx], batch_size,
                                                count_units=est.record_history)
                    if not (np.isfinite(accumulated) and np.isfinite(trainer.flat).all()):
                        if not early_stopping:
                            self._diverged(mark.weights, accumulated)
                        # With early stopping, like scikit-learn: the epoch scores NaN, and
                        # the best (finite) weights are restored below. We stop right away.
                        mark.weights.restore(trainer.flat)
                        state._optimizer = make_optimizer(est, trainer.layout.n_params,
                                                          trainer.dtype)
                        state.n_iter_ += 1
                        state.loss_ = trainer.dtype.type(np.nan)
                        state.loss_curve_.append(state.loss_)
                        state.validation_scores_.append(np.nan)
                        warnings.warn(
                            f"Training diverged in epoch {state.n_iter_} (non-finite loss) "
                            f"with solver={est.solver!r} and learning_rate_init="
                            f"{est.learning_rate_init!r}; stopped and restored the best "
                            "validation weights. Lower learning_rate_init or scale the data.",
                            ConvergenceWarning,
                        )
                        break
                    state.n_iter_ += 1
                    state.loss_ = trainer.dtype.type(accumulated / n_samples)
                    state.t_ += n_samples
                    state.loss_curve_.append(state.loss_)
                    if est.verbose and est.verbose != 2:
                        print("Iteration %d, loss = %.8f" % (state.n_iter_, state.loss_))

                    val_loss = None
                    if Y_val is not None:
                        P = forward(trainer.layout, trainer.flat, X_val)
                        val_loss = _kernels.loss_value(P, Y_val, sw_val_k,
                                                       trainer.objective.loss,
                                                       trainer.objective.clip_eps)
                        state.validation_loss_curve_.append(val_loss)
                        if not early_stopping:  # monitoring only
                            state.validation_scores_.append(
                                est._score(X_val, y_val, sample_weight=sw_val))
                    self._update_no_improvement_count(early_stopping, X_val, y_val, sw_val,
                                                      val_loss)
                    if est.record_history:
                        dead, sparsity = trainer.unit_stats(n_samples)
                        state.history_.append({
                            "epoch": len(state.history_) + 1,
                            "loss": float(state.loss_),
                            "validation_score": (float(state.validation_scores_[-1])
                                                 if X_val is not None else None),
                            "validation_loss": val_loss,
                            "learning_rate": float(optimizer.learning_rate),
                            "time": time.perf_counter() - tic,
                            "dead_fraction": dead,
                            "sparsity": sparsity,
                            "grad_norm": trainer.grad_norms(),
                        })
                    optimizer.iteration_ends(state.t_)
                    progress.update(state.n_iter_, state.loss_, state.validation_scores_[-1]
                                    if X_val is not None else None)
                    mark.open = False  # the epoch is complete: nothing to roll back
                    state._dropout_step = trainer.objective.dropout_stream
                    state.publish(est)

                    stop = epoch_ctx is not None and epoch_ctx.call_on_fit_task_end(
                        estimator=est, X=X_train, y=y_train, metadata=metadata,
                        reconstruction_attributes=self._network_attributes)
                    if stop:
                        if est.verbose:
                            print("A callback requested to stop training. Stopping.")
                        break
                    if interrupt.requested:
                        raise KeyboardInterrupt

                    if state._no_improvement_count > est.n_iter_no_change:
                        if early_stopping:
                            msg = ("Validation score did not improve more than tol=%f for "
                                   "%d consecutive epochs." % (est.tol, est.n_iter_no_change))
                        else:
                            msg = ("Training loss did not improve more than tol=%f for %d "
                                   "consecutive epochs." % (est.tol, est.n_iter_no_change))
                        if optimizer.trigger_stopping(msg, est.verbose):
                            break
                        state._no_improvement_count = 0

                    if incremental:
                        break
                    if state.n_iter_ == est.max_iter:
                        progress.close()  # end the bar's line before the warning
                        warnings.warn(
                            "Stochastic Optimizer: Maximum iterations (%d) reached and "
                            "the optimization hasn't converged yet." % est.max_iter,
                            ConvergenceWarning,
                        )
            except KeyboardInterrupt:
                if mark.open:
                    # Interrupted inside an epoch: back to the last completed one.
                    mark.restore(trainer, state)
                warnings.warn(
                    f"Training interrupted by user. The model holds the weights of the last "
                    f"completed epoch (n_iter_={state.n_iter_}).", UserWarning)
            finally:
                progress.close()

        if early_stopping:
            state._best_params.restore(trainer.flat)

    def _validation_split(self, y, n_samples):
        from sklearn.model_selection import train_test_split

        est = self.est
        # Stratify on the binarised target as bools, like scikit-learn (its error
        # messages then name the classes the same way).
        stratify = y.astype(bool) if (est._is_classifier and est.n_outputs_ == 1) else None
        train_idx, val_idx = train_test_split(
            np.arange(n_samples, dtype=np.intp), random_state=est._random_state,
            test_size=est.validation_fraction, stratify=stratify,
        )
        if val_idx.shape[0] < 2:
            raise ValueError(
                "The validation set is too small. Increase 'validation_fraction' or the "
                "size of your dataset."
            )
        return train_idx, val_idx

    def _update_no_improvement_count(self, early_stopping, X_val, y_val, sw_val,
                                     val_loss=None):
        est, state = self.est, self.state
        if early_stopping:
            score = est._score(X_val, y_val, sample_weight=sw_val)
            state.validation_scores_.append(score)
            if est.verbose:
                print("Validation score: %f" % score)
            if est.early_stopping_metric == "loss":
                # Lower is better: improvement means val_loss < best - tol.
                best = state.best_validation_loss_
                best = np.inf if best is None else best
                if not val_loss < best - est.tol:
                    state._no_improvement_count += 1
                else:
                    state._no_improvement_count = 0
                if val_loss < best:
                    state.best_validation_loss_ = val_loss
                    state.best_validation_score_ = score
                    state._best_params = Checkpoint.of(self.trainer.flat)
                return
            if score < state.best_validation_score_ + est.tol:
                state._no_improvement_count += 1
            else:
                state._no_improvement_count = 0
            if score > state.best_validation_score_:
                state.best_validation_score_ = score
                state._best_params = Checkpoint.of(self.trainer.flat)
        else:
            if state.loss_curve_[-1] > state.best_loss_ - est.tol:
                state._no_improvement_count += 1
            else:
                state._no_improvement_count = 0
            if state.loss_curve_[-1] < state.best_loss_:
                state.best_loss_ = state.loss_curve_[-1]


class LBFGSFit(_Fit):
    """Minimise the full-batch objective with scipy's L-BFGS-B.

    ``run(X, y_labels, sample_weight, callback_ctx)``. Unlike scikit-learn, the
    parameters keep the input dtype (scipy's float64 iterate is cast into the flat
    buffer), ``loss_curve_`` records the loss at every iteration and ``verbose`` prints
    it. Each iteration is a subtask of ``callback_ctx`` (like ``LogisticRegression``'s
    lbfgs); a callback or a Ctrl-C stops the optimizer at the end of the running
    iteration.
    """

    def _run(self, X=None, y_labels=None, sample_weight=None, callback_ctx=None):
        est, trainer, state = self.est, self.trainer, self.state
        flat = trainer.flat

        def fun(x):
            flat[...] = x
            loss, grad = trainer.loss_gradient()
            return loss, grad.astype(np.float64)

        state.loss_curve_ = []
        last_finite = Checkpoint.of(flat)
        tic = [time.perf_counter()]
        progress = Progress(est.max_iter, est.verbose, unit="iteration")
        metadata = None if sample_weight is None else {"sample_weight": sample_weight}
        stopped = []  # why the optimizer was stopped early, if it was
        state.publish(est)

        def begin_iteration():
            if callback_ctx is None:
                return None
            ctx = callback_ctx.subcontext(task_name="lbfgs-iter")
            ctx.call_on_fit_task_begin(
                estimator=est, X=X, y=y_labels, metadata=metadata,
                reconstruction_attributes=self._network_attributes)
            return ctx

        iteration_ctx = [begin_iteration()]

        def callback(intermediate_result):
            if (np.isfinite(intermediate_result.fun)
                    and np.isfinite(intermediate_result.x).all()):
                last_finite.save(intermediate_result.x)
            state.loss_curve_.append(trainer.dtype.type(intermediate_result.fun))
            if est.record_history:
                now = time.perf_counter()
                state.history_.append({
                    "epoch": len(state.history_) + 1, "loss": float(intermediate_result.fun),
                    "validation_score": None, "validation_loss": None,
                    "learning_rate": None, "time": now - tic[0],
                    "dead_fraction": None, "sparsity": None, "grad_norm": None,
                })
                tic[0] = now
            if est.verbose and est.verbose != 2:
                print("Iteration %d, loss = %.8f" % (len(state.loss_curve_),
                                                     intermediate_result.fun))
            progress.update(len(state.loss_curve_), intermediate_result.fun)
            if iteration_ctx[0] is not None:
                flat[...] = intermediate_result.x  # what fitted_estimator must predict with
                state.publish(est)
                if iteration_ctx[0].call_on_fit_task_end(
                        estimator=est, X=X, y=y_labels, metadata=metadata,
                        reconstruction_attributes=self._network_attributes):
                    stopped.append("A callback requested to stop training.")
                iteration_ctx[0] = begin_iteration()
            if interrupt.requested:
                stopped.append("Training interrupted by user.")
            if stopped:
                raise StopIteration

        trainer.started = True
        with InterruptGuard() as interrupt:
            try:
                opt_res = scipy.optimize.minimize(
                    fun, flat.astype(np.float64), method="L-BFGS-B", jac=True,
                    callback=callback,
                    options={"maxfun": est.max_fun, "maxiter": est.max_iter,
                             "gtol": est.tol},
                )
            except KeyboardInterrupt:
                # A second Ctrl-C inside an iteration: keep the last completed iterate.
                x = last_finite.flat.astype(np.float64)
                opt_res = scipy.optimize.OptimizeResult(
                    x=x, fun=fun(x)[0], nit=len(state.loss_curve_), status=99,
                    message="interrupted")
                stopped.append("Training interrupted by user.")
            finally:
                progress.close()
                if iteration_ctx[0] is not None:
                    # The subtask begun after the last iteration never ran: end it empty.
                    iteration_ctx[0].call_on_fit_task_end(estimator=est)
        n_iter = min(opt_res.nit, est.max_iter)
        if not (np.isfinite(opt_res.fun) and np.isfinite(opt_res.x).all()):
            state.n_iter_ = n_iter
            self._diverged(last_finite, opt_res.fun)
        if stopped:
            if "interrupted" in stopped[0]:
                warnings.warn(f"Training interrupted by user. The model holds the weights "
                              f"of the last completed iteration (n_iter_={n_iter}).",
                              UserWarning)
            elif est.verbose:
                print(stopped[0] + " Stopping.")
        elif opt_res.status != 0:
            msg = ("lbfgs failed to converge after %d iteration(s) (status=%d):\n%s\n"
                   % (n_iter, opt_res.status, opt_res.message))
            if n_iter == est.max_iter:
                msg += ("\nIncrease the number of iterations to improve the convergence "
                        "(max_iter=%d)." % est.max_iter)
            msg += ("\nYou might also want to scale the data as shown in:\n"
                    "    https://scikit-learn.org/stable/modules/preprocessing.html")
            warnings.warn(msg, ConvergenceWarning, stacklevel=4)
        state.n_iter_ = n_iter
        state.loss_ = trainer.dtype.type(opt_res.fun)
        flat[...] = opt_res.x
        if trainer.layout.network.batch_normalized:
            # Full-batch training: the running statistics are the whole data's.
            trainer.loss_gradient(flat)
            _kernels.set_running_statistics(flat, trainer.ws)


class _Lazy:
    """A value computed on first call and kept: scikit-learn's callback hooks call
    callables passed as X / y, so data nobody asks for is never built."""

    def __init__(self, make):
        self._make = make
        self._value = None

    def __call__(self):
        if self._value is None:
            self._value = self._make()
        return self._value


class InterruptGuard:
    """During fit, the first Ctrl-C asks training to stop after the running epoch.

    Only in the main thread, and only when SIGINT has Python's default handler (a
    handler installed by the user is left alone). A second Ctrl-C raises
    ``KeyboardInterrupt`` at once, as usual.
    """

    def __init__(self):
        self.requested = False
        self._previous = None

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            try:
                self._previous = signal.signal(signal.SIGINT, self._handle)
            except ValueError:  # e.g. an embedded interpreter without signal support
                self._previous = None
        return self

    def __exit__(self, *exc_info):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


class Progress:
    """``verbose >= 2``: a progress bar over epochs (tqdm if installed, else plain text).

    ``verbose=2`` shows the bar alone; ``verbose >= 3`` the bar (tqdm only) and the
    per-epoch lines of ``verbose=1``.

    The plain fallback rewrites one line on stdout with ``\\r``; both show the loss and,
    when there is one, the validation score.
    """

    def __init__(self, total, verbose, unit="epoch"):
        self.total = total
        self.unit = unit
        self.bar = None
        self.active = bool(verbose) and verbose >= 2
        self.done = 0
        if not self.active:
            return
        try:
            from tqdm.auto import tqdm
        except ImportError:
            # The plain bar rewrites its line: only alone, not between verbose lines.
            self.active = verbose == 2
            return
        self.bar = tqdm(total=total, unit=unit, desc="relumlp fit", leave=True)

    def update(self, n_done, loss, score=None):
        if not self.active:
            return
        info = f"loss={float(loss):.6g}" + (
            "" if score is None else f", validation score={float(score):.4f}")
        if self.bar is not None:
            self.bar.set_postfix_str(info, refresh=False)
            self.bar.update(n_done - self.done)
        else:
            width = 30
            filled = int(width * min(n_done, self.total) / max(self.total, 1))
            print(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.unit} "
                  f"{n_done}/{self.total} {info}", end="", flush=True)
        self.done = n_done

    def close(self):
        if not self.active:
            return
        if self.bar is not None:
            self.bar.close()
        elif self.done:
            print(flush=True)
        self.active = False

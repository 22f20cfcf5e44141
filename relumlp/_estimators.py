"""Public estimators: ReLUMLPClassifier and ReLUMLPRegressor.

Parameters, validation, fitted attributes and scikit-learn tags live here; training is
delegated to ``_training`` and every numeric pass to the Cython kernels. Parameter names
and semantics are those of scikit-learn's ``MLPClassifier`` / ``MLPRegressor``.
"""
from __future__ import annotations

import warnings
from numbers import Integral, Real
from operator import is_
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    RegressorMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.callback import CallbackSupportMixin
from sklearn.metrics import accuracy_score, r2_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state, column_or_1d
from sklearn.utils._param_validation import (
    Interval,
    InvalidParameterError,
    Options,
    StrOptions,
)
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import (
    _check_partial_fit_first_call,
    type_of_target,
    unique_labels,
)
from sklearn.utils.validation import (
    _check_feature_names_in,
    _check_sample_weight,
    check_array,
    check_is_fitted,
    check_X_y,
    validate_data,
)

from relumlp import _inference, _training

if TYPE_CHECKING:  # annotations only: no import cost at run time
    from numpy.typing import ArrayLike
    from typing_extensions import Self  # typing.Self from Python 3.11
    from sklearn.neural_network import MLPClassifier, MLPRegressor
from relumlp._activations import HIDDEN_ACTIVATIONS, WEIGHT_INITS
from relumlp._params import NORMALIZATIONS, PARAMETERS, NetworkLayout, init_params
from relumlp._state import DERIVED, TrainingState, network_attributes
from relumlp._version import __version__

_STOCHASTIC_SOLVERS = ("sgd", "adam")


class InconsistentVersionWarning(UserWarning):
    """A model pickled by another relumlp version was loaded.

    Examples
    --------
    >>> import pickle, warnings
    >>> from relumlp import InconsistentVersionWarning, ReLUMLPRegressor
    >>> state = ReLUMLPRegressor().__getstate__()
    >>> state["_relumlp_version"] = "0.0.1"
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     model = ReLUMLPRegressor.__new__(ReLUMLPRegressor)
    ...     model.__setstate__(state)
    >>> caught[0].category is InconsistentVersionWarning
    True
    """


def _check_fitted(est):
    """check_is_fitted, without its generic attribute scan once coefs_ exists."""
    if "coefs_" not in est.__dict__:
        check_is_fitted(est)


# scikit-learn's indexing_dtype: the dtype of LabelBinarizer's multilabel predictions.
_INDEX_DTYPE = np.asarray(0).dtype


def _inverse_binarize(binarizer, Y):
    """``binarizer.inverse_transform(Y)`` for the network's output ``Y``: the same
    values and dtype, without the generic (array API, sparse) machinery that costs
    more than a one-row forward pass.

    For a binarizer with scikit-learn's labels 0 and 1 (threshold 0.5), as the
    classifier fits, and a dense float ``Y``: 'multiclass' gives the class of the
    first maximum of each row, 'binary' (one column) ``classes_[Y > 0.5]``, or the
    only class if there is one, 'multilabel-indicator' the indicator ``Y > 0.5`` as
    integers. Anything else is left to ``inverse_transform``.
    """
    classes = getattr(binarizer, "classes_", None)
    if (type(Y) is np.ndarray and type(classes) is np.ndarray
            and binarizer.neg_label == 0 and binarizer.pos_label == 1
            and getattr(binarizer, "sparse_input_", True) is False):
        y_type = binarizer.y_type_
        if y_type == "multiclass" and Y.ndim == 2 and Y.shape[1] == len(classes):
            return classes[Y.argmax(axis=1)]
        if y_type == "binary" and Y.ndim == 1:
            if len(classes) == 1:
                return np.repeat(classes[0], len(Y))
            return classes[(Y > 0.5).astype(_INDEX_DTYPE)]
        if y_type == "multilabel-indicator" and Y.ndim == 2 and Y.shape[1] == len(classes):
            return (Y > 0.5).astype(_INDEX_DTYPE)
    return binarizer.inverse_transform(Y)


class _BaseReLUMLP(CallbackSupportMixin, TransformerMixin, BaseEstimator):
    """Shared machinery of the two estimators. Not for direct use."""

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(HIDDEN_ACTIVATIONS)), tuple, list],
        "solver": [StrOptions({"lbfgs", "sgd", "adam"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive", "cosine"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), Options(Real, {np.inf})],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "negative_slope": [Interval(Real, 0, None, closed="left")],
        "elu_alpha": [Interval(Real, 0, None, closed="left")],
        "weight_init": [StrOptions(set(WEIGHT_INITS))],
        "alpha_l1": [Interval(Real, 0, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left"), tuple, list],
        "max_grad_norm": [Interval(Real, 0, None, closed="neither"), None],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "normalization": [StrOptions(set(NORMALIZATIONS)), tuple, list, None],
        "normalization_eps": [Interval(Real, 0, None, closed="neither")],
        "normalization_momentum": [Interval(Real, 0, 1, closed="both")],
        "warmup_iters": [Interval(Integral, 0, None, closed="left")],
        "record_history": ["boolean"],
        "early_stopping_metric": [StrOptions({"score", "loss"})],
    }

    _is_classifier = False

    # ------------------------------------------------------------------ validation
    def _hidden_layer_sizes(self):
        sizes = self.hidden_layer_sizes
        if not hasattr(sizes, "__iter__"):
            sizes = [sizes]
        sizes = list(sizes)
        for s in sizes:
            if not isinstance(s, Integral) or isinstance(s, bool) or s <= 0:
                raise InvalidParameterError(
                    f"hidden_layer_sizes must contain positive integers, got {self.hidden_layer_sizes!r}."
                )
        return [int(s) for s in sizes]

    def _per_layer(self, name, n_hidden):
        """A scalar-or-sequence parameter as one value per hidden layer."""
        value = getattr(self, name)
        if isinstance(value, (str, Real)):
            return [value] * n_hidden
        value = list(value)
        if len(value) != n_hidden:
            raise InvalidParameterError(
                f"{name} has {len(value)} entries but there are {n_hidden} hidden layers "
                f"(hidden_layer_sizes={self.hidden_layer_sizes!r}); pass one value or one "
                "per hidden layer."
            )
        return value

    def _activations(self, n_hidden):
        names = self._per_layer("activation", n_hidden)
        for a in names:
            # isinstance first: an unhashable entry (a list) must not escape as a bare
            # "unhashable type" TypeError that does not name the parameter.
            if not isinstance(a, str) or a not in HIDDEN_ACTIVATIONS:
                raise InvalidParameterError(
                    f"activation {a!r} is not one of {sorted(HIDDEN_ACTIVATIONS)}."
                )
        return names

    def _normalizations(self, n_hidden):
        value = self.normalization
        norms = [None] * n_hidden if value is None else self._per_layer("normalization",
                                                                          n_hidden)
        for v in norms:
            if v is not None and v not in NORMALIZATIONS:
                raise InvalidParameterError(
                    f"normalization entries must be None or one of {sorted(NORMALIZATIONS)}, "
                    f"got {self.normalization!r}.")
        return norms

    def _dropout_rates(self, n_hidden):
        rates = self._per_layer("dropout", n_hidden)
        for r in rates:
            if not isinstance(r, Real) or not 0 <= r < 1:
                raise InvalidParameterError(
                    f"dropout rates must be in [0, 1), got {self.dropout!r}.")
        return [float(r) for r in rates]

    def _check_params(self, incremental):
        """Rules that involve more than one parameter."""
        # scikit-learn's _fit_context skips parameter validation in partial_fit once the
        # model is fitted, so set_params(bad) + partial_fit would train with the bad
        # value. Re-validate when a parameter object changed since the last validation:
        # an identity check per call instead of a full validation (RESULTS.md, "Figures
        # behind the code's comments").
        current = [getattr(self, name) for name in self._parameter_constraints]
        validated = getattr(self, "_validated_params", None)
        if incremental and (validated is None or len(validated) != len(current)
                            or any(a is not b for a, b in zip(current, validated))):
            self._validate_params()
        n_hidden = len(self._hidden_layer_sizes())
        self._activations(n_hidden)
        if any(self._dropout_rates(n_hidden)) and self.solver == "lbfgs":
            raise ValueError(
                "dropout needs a stochastic solver ('adam' or 'sgd'); solver='lbfgs' "
                "minimises a deterministic full-batch objective."
            )
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        if self.solver == "lbfgs" and self.early_stopping:
            warnings.warn(
                "early_stopping=True has no effect with solver='lbfgs', which uses the "
                "whole training set; use solver='adam' or 'sgd' to hold out a validation "
                "set.",
                UserWarning,
            )
        self._validated_params = current  # only once every check above has passed

    def _layout(self, units, out_activation):
        n_hidden = len(units) - 2
        names = self._activations(n_hidden)
        params = [getattr(self, HIDDEN_ACTIVATIONS[a].param) if HIDDEN_ACTIVATIONS[a].param
                  else 0.0 for a in names]
        return NetworkLayout(units, names, out_activation, params,
                             self._dropout_rates(n_hidden),
                             normalization=self._normalizations(n_hidden),
                             normalization_eps=self.normalization_eps,
                             normalization_momentum=self.normalization_momentum)

    # ------------------------------------------------------------------ fitting
    # Kept across the rollback of a failed fit: the callback machinery's own state.
    _CALLBACK_STATE = ("_callback_fit_ctx", "_skl_callbacks_to_teardown")

    def _fit(self, X, y, sample_weight=None, incremental=False, X_val=None, y_val=None,
             prepare=None):
        """Validate, then train. An error before training starts (bad parameter, bad
        data, sample weights, validation set or split, or in ``prepare``, called
        first) leaves every attribute as it was, so a fitted model stays fitted and an
        unfitted one unfitted."""
        saved = self.__dict__.copy()
        progress = {}
        try:
            if prepare is not None:
                prepare()
            return self._fit_unguarded(X, y, sample_weight, incremental, X_val, y_val,
                                       progress)
        except BaseException:
            trainer = progress.get("trainer")
            if trainer is None or not trainer.started:
                keep = {k: self.__dict__[k] for k in self._CALLBACK_STATE
                        if k in self.__dict__}
                self.__dict__.clear()
                self.__dict__.update(saved)
                self.__dict__.update(keep)
            raise

    def _fit_unguarded(self, X, y, sample_weight, incremental, X_val, y_val, progress):
        hidden = self._hidden_layer_sizes()
        self._check_params(incremental)
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)

        X, y, y_labels = self._validate_input(X, y, incremental, reset=first_pass)
        sample_weight = self._sample_weight(sample_weight, X, y_labels, incremental)
        if y.ndim == 1:
            y = y.reshape((-1, 1))
        n_samples, n_features = X.shape
        n_outputs = y.shape[1]
        layout = self._layout([n_features] + hidden + [n_outputs],
                              self._out_activation(n_outputs))

        self._random_state = check_random_state(self.random_state)
        stochastic = self.solver in _STOCHASTIC_SOLVERS
        if first_pass:
            flat = init_params(layout, self.weight_init, self._random_state, X.dtype,
                               self.negative_slope,
                               sklearn_logistic=isinstance(self.activation, str)
                               and self.activation == "logistic")
            self.n_layers_ = layout.n_layers + 1
            self.out_activation_ = layout.out_activation
            state = TrainingState.new(stochastic, self.early_stopping,
                                      _training.Checkpoint.of(flat))
        else:
            if [c.shape for c in self.coefs_] != layout.coef_shapes:
                raise ValueError(
                    "The fitted network has layer shapes "
                    f"{[c.shape for c in self.coefs_]}, but hidden_layer_sizes={hidden} and "
                    f"the data need {layout.coef_shapes}; refit with warm_start=False."
                )
            flat = layout.pack(self._parameters(), self.coefs_[0].dtype)
            state = TrainingState.resume(self)
        self._set_flat(layout, flat)
        self.n_outputs_ = n_outputs

        sw = np.ones(n_samples, dtype=flat.dtype) if sample_weight is None else sample_weight
        # Drawn only when needed, so that networks without dropout consume the random
        # state exactly as scikit-learn does.
        seed = self._random_state.randint(2**31 - 1) if any(layout.dropout) else 0
        trainer = _training.Trainer(layout, flat, X, y, sw, self.loss, self.alpha,
                                    self.alpha_l1, self.max_grad_norm, seed,
                                    dropout_stream=state._dropout_step)
        progress["trainer"] = trainer
        validation = self._validation_set(X_val, y_val, flat.dtype)
        state.publish(self)
        # scikit-learn's callbacks (set_callbacks): the fit is the root task, each epoch
        # (lbfgs: each iteration, plus the empty one scipy's callback protocol leaves) a
        # subtask.
        callback_ctx = self._init_callback_context(
            max_subtasks=(1 if incremental else self.max_iter) if stochastic
            else self.max_iter + 1)
        metadata = None if sample_weight is None else {"sample_weight": sample_weight}
        callback_ctx.call_on_fit_task_begin(estimator=self, X=X, y=y_labels,
                                            metadata=metadata)
        if stochastic:
            _training.StochasticFit(self, trainer, state).run(
                X, y, sample_weight, incremental, validation, y_labels=y_labels,
                callback_ctx=callback_ctx)
        else:
            _training.LBFGSFit(self, trainer, state).run(X, y_labels, sample_weight,
                                                         callback_ctx)

        if not np.isfinite(flat).all():
            raise ValueError(
                "Solver produced non-finite parameter weights. The input data may contain "
                "large values and need to be preprocessed."
            )
        callback_ctx.call_on_fit_task_end(estimator=self, X=X, y=y_labels,
                                          metadata=metadata, reconstruction_attributes={})
        return self

    def _validation_set(self, X_val, y_val, dtype):
        """(X_val, y_val as labels, y_val in the output encoding), or None."""
        if X_val is None and y_val is None:
            return None
        if X_val is None or y_val is None:
            raise ValueError("X_val and y_val must be given together.")
        if self.solver not in _STOCHASTIC_SOLVERS:
            warnings.warn("X_val / y_val are used by solver='adam' and 'sgd' only; "
                          f"solver={self.solver!r} ignores them.", UserWarning)
            return None
        # Errors name X_val / y_val (not "X" / "y"), and every check runs here, before
        # training: a bad validation set must not fail after an epoch.
        X_checked = check_array(X_val, accept_sparse=["csr", "csc"],
                                dtype=(np.float64, np.float32), ensure_min_samples=0,
                                input_name="X_val", estimator=self)
        try:  # feature count and names, against the training data
            validate_data(self, X_val, skip_check_array=True, reset=False)
        except ValueError as e:
            raise ValueError(f"X_val does not match the training data: {e}") from e
        X_val = X_checked
        y_val = check_array(y_val, ensure_2d=False, dtype=None, ensure_min_samples=0,
                            input_name="y_val", estimator=self)
        if y_val.ndim == 2 and y_val.shape[1] == 1:
            y_val = column_or_1d(y_val)
        if len(y_val) != X_val.shape[0] or X_val.shape[0] == 0:
            raise ValueError(
                f"X_val has {X_val.shape[0]} rows and y_val {len(y_val)}; they must match "
                "and not be empty."
            )
        if self._is_classifier:
            try:
                unknown = np.setdiff1d(unique_labels(y_val), self.classes_)
                if len(unknown):
                    raise ValueError(f"y_val has classes not seen in y: {unknown}.")
                encoded = self._smooth_targets(self._label_binarizer.transform(y_val))
            except ValueError as e:
                if "y_val" in str(e):
                    raise
                raise ValueError(f"y_val does not match the training targets: {e}") from e
        else:
            if y_val.dtype.kind in "USO":
                try:
                    y_val = y_val.astype(np.float64)
                except (TypeError, ValueError) as e:
                    raise ValueError(
                        f"y_val must be numeric for {type(self).__name__}: {e}") from e
                check_array(y_val, ensure_2d=False, input_name="y_val", estimator=self)
            n_out = 1 if y_val.ndim == 1 else y_val.shape[1]
            # n_outputs_ is the current fit's (_fit sets it before calling us).
            if n_out != self.n_outputs_:
                raise ValueError(
                    f"y_val has {n_out} output column(s) but y has {self.n_outputs_}.")
            encoded = y_val.astype(dtype)
        return X_val, y_val, encoded

    def _set_flat(self, layout, flat):
        """Make ``flat`` the network: the parameters (coefs_, ...) view it."""
        self.__dict__.update(network_attributes(layout, flat))

    def _sample_weight(self, sample_weight, X, y_labels, incremental):
        if sample_weight is None:
            return None
        sample_weight = _check_sample_weight(sample_weight, X, dtype=X.dtype, ensure_non_negative=True)
        return sample_weight

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None,
            X_val: ArrayLike | None = None, y_val: ArrayLike | None = None) -> Self:
        """Fit the model to data matrix X and target(s) y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data. float32 input trains in float32.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The target values (class labels in classification, real numbers in
            regression).
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.
        X_val, y_val : array-like, default=None
            A validation set (stochastic solvers). Each epoch records its score in
            ``validation_scores_`` and its loss in ``validation_loss_curve_`` (and in
            ``history_``); with ``early_stopping=True`` it replaces the internal
            ``validation_fraction`` split, so every row of X trains. Inside a
            ``Pipeline`` or ``GridSearchCV``, route it with
            ``set_fit_request(X_val=True, y_val=True)`` (scikit-learn's metadata
            routing); note that a pipeline does not transform it.

        Returns
        -------
        self : object
            The fitted estimator.

        Notes
        -----
        Training reports through scikit-learn's callbacks (``set_callbacks`` with
        e.g. ``sklearn.callback.ScoringMonitor`` or ``ProgressBar``; each epoch, or
        lbfgs iteration, is a task) and through ``verbose`` (1: a line per epoch, 2: a
        progress bar). A non-finite loss stops ``fit`` with
        :class:`relumlp.DivergedError` (a ``ValueError``) and the weights of the last
        finite epoch; with early stopping it warns instead and keeps the best
        weights. Ctrl-C stops after the running epoch with a warning, leaving the
        model of the last completed epoch. An error before training starts (bad
        parameters or data) leaves a fitted model unchanged.

        Examples
        --------
        >>> import warnings
        >>> from sklearn.datasets import load_iris
        >>> from relumlp import ReLUMLPClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> warnings.simplefilter("ignore")  # ConvergenceWarning of the short fit
        >>> clf = ReLUMLPClassifier((8,), max_iter=5, random_state=0)
        >>> clf.fit(X, y).n_iter_
        5
        >>> # A validation set of your own: every row of X trains, (X_val, y_val) is scored.
        >>> clf = clf.fit(X[::2], y[::2], X_val=X[1::2], y_val=y[1::2])
        >>> len(clf.validation_scores_) == len(clf.validation_loss_curve_) == clf.n_iter_
        True
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False,
                         X_val=X_val, y_val=y_val)

    def transform(self, X: ArrayLike, layer: int = -1) -> np.ndarray:
        """Activations of a hidden layer: the fitted network as a feature extractor.

        Makes the estimator usable as a step of a ``Pipeline`` (MLP features followed
        by another model); ``get_feature_names_out`` names the units
        ``layer{k}_unit{j}``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Input data.
        layer : int, default=-1
            Hidden layer (0 is the first, -1 the last).

        Returns
        -------
        H : ndarray of shape (n_samples, n_units)
            The layer's activations, in the model's dtype (no dropout).

        Examples
        --------
        >>> import warnings
        >>> from sklearn.datasets import load_iris
        >>> from relumlp import ReLUMLPClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     clf = ReLUMLPClassifier((8, 4), max_iter=5, random_state=0).fit(X, y)
        >>> clf.transform(X).shape, clf.transform(X, layer=0).shape
        ((150, 4), (150, 8))
        """
        _check_fitted(self)
        if len(self.coefs_) < 2:
            raise ValueError("transform needs at least one hidden layer; "
                             f"hidden_layer_sizes={self.hidden_layer_sizes!r}.")
        from relumlp.diagnostics import hidden_activations

        return hidden_activations(self, X, layer=layer)

    @property
    def _n_features_out(self):
        """Units of the last hidden layer (the output of ``transform``)."""
        return self.coefs_[-1].shape[0]

    def get_feature_names_out(self, input_features: ArrayLike | None = None,
                              layer: int = -1) -> np.ndarray:
        """Names of the hidden units that ``transform`` returns: ``layer{k}_unit{j}``.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Only checked against ``feature_names_in_`` (scikit-learn's convention);
            the output names do not depend on them.
        layer : int, default=-1
            Hidden layer, as in ``transform`` (0 is the first, -1 the last).

        Returns
        -------
        feature_names_out : ndarray of str objects
            ``layer{k}_unit{j}`` for each unit ``j`` of hidden layer ``k`` (``k``
            counted from 0).

        Examples
        --------
        >>> import warnings
        >>> from sklearn.datasets import load_iris
        >>> from relumlp import ReLUMLPClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     clf = ReLUMLPClassifier((8, 3), max_iter=5, random_state=0).fit(X, y)
        >>> list(clf.get_feature_names_out())
        ['layer1_unit0', 'layer1_unit1', 'layer1_unit2']
        """
        _check_fitted(self)
        _check_feature_names_in(self, input_features, generate_names=False)
        n_hidden = len(self.coefs_) - 1
        if not isinstance(layer, (int, np.integer)) or not -n_hidden <= layer < n_hidden:
            raise ValueError(f"layer must be an int in [{-n_hidden}, {n_hidden}), got "
                             f"{layer!r}.")
        k = int(layer) % n_hidden
        return np.asarray([f"layer{k}_unit{j}" for j in range(self.coefs_[k].shape[1])],
                          dtype=object)

    def to_sklearn(self) -> MLPClassifier | MLPRegressor:
        """An equivalent fitted scikit-learn ``MLPClassifier`` / ``MLPRegressor``.

        Same weights (copied), parameters and fitted attributes, so its predictions
        match this model's; the stochastic optimizer's state comes along, so
        ``partial_fit`` continues in scikit-learn. Needs an activation scikit-learn
        has (identity, logistic, tanh, relu) for every layer. ``dropout``,
        ``alpha_l1``, ``max_grad_norm`` only shape training and are not carried over.

        Returns
        -------
        mlp : MLPClassifier or MLPRegressor
            The fitted scikit-learn estimator.

        Examples
        --------
        >>> import warnings
        >>> import numpy as np
        >>> from sklearn.datasets import load_iris
        >>> from relumlp import ReLUMLPClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     clf = ReLUMLPClassifier((8,), max_iter=5, random_state=0).fit(X, y)
        >>> mlp = clf.to_sklearn()
        >>> type(mlp).__name__, np.allclose(mlp.predict_proba(X), clf.predict_proba(X))
        ('MLPClassifier', True)
        """
        from relumlp._interop import to_sklearn

        return to_sklearn(self)

    def to_onnx(self, *, dtype: type = np.float32, opset: int | None = None,
                name: str | None = None) -> Any:
        """Export the fitted network as an ONNX graph (needs ``relumlp[onnx]``).

        See :func:`relumlp.to_onnx` for the graph's inputs and outputs.

        Parameters
        ----------
        dtype : {np.float32, np.float64}, default=np.float32
            Element type of the graph's input, weights and outputs.
        opset : int, default=None
            ONNX opset; None picks a default the installed onnx supports.
        name : str, default=None
            Graph name; defaults to the estimator's class name.

        Returns
        -------
        model : onnx.ModelProto
            The graph, ready for ``onnxruntime.InferenceSession(model.SerializeToString())``.

        Examples
        --------
        >>> import warnings
        >>> import numpy as np
        >>> import onnxruntime
        >>> from sklearn.datasets import load_iris
        >>> from relumlp import ReLUMLPClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> X = X.astype(np.float32)
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     clf = ReLUMLPClassifier((8,), activation="gelu", max_iter=5,
        ...                             random_state=0).fit(X, y)
        >>> session = onnxruntime.InferenceSession(clf.to_onnx().SerializeToString(),
        ...                                        providers=["CPUExecutionProvider"])
        >>> label, proba = session.run(["label", "probabilities"], {"X": X})
        >>> np.allclose(proba, clf.predict_proba(X), atol=1e-5)
        True
        """
        from relumlp._onnx import to_onnx

        return to_onnx(self, dtype=dtype, opset=opset, name=name)

    @classmethod
    def from_sklearn(cls, mlp: MLPClassifier | MLPRegressor) -> Self:
        """A fitted relumlp model equal to a fitted scikit-learn MLP.

        Weights, parameters and fitted attributes are copied, and the state of
        scikit-learn's stochastic optimizer (Adam moments, SGD velocities) is carried
        over: ``partial_fit`` or ``fit`` with ``warm_start=True`` continues training
        where scikit-learn stopped. ``weight_init`` is set to ``'sklearn'``, so a
        refit with the same ``random_state`` starts from scikit-learn's weights.

        Parameters
        ----------
        mlp : MLPClassifier or MLPRegressor
            A fitted scikit-learn MLP (a classifier for ``ReLUMLPClassifier``, a
            regressor for ``ReLUMLPRegressor``).

        Returns
        -------
        model : ReLUMLPClassifier or ReLUMLPRegressor
            The fitted relumlp model.

        Examples
        --------
        >>> import warnings
        >>> import numpy as np
        >>> from sklearn.datasets import load_iris
        >>> from sklearn.neural_network import MLPClassifier
        >>> from relumlp import ReLUMLPClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     mlp = MLPClassifier((8,), max_iter=5, random_state=0).fit(X, y)
        >>> clf = ReLUMLPClassifier.from_sklearn(mlp)
        >>> np.allclose(clf.predict_proba(X), mlp.predict_proba(X))
        True
        >>> clf = clf.partial_fit(X, y)  # training goes on in relumlp
        """
        from relumlp._interop import from_sklearn

        return from_sklearn(cls, mlp)

    def history_frame(self) -> Any:
        """``history_`` as a pandas DataFrame, one row per epoch.

        Per-layer lists become columns ``dead_fraction_0``, ``sparsity_0``,
        ``grad_norm_0``, ... (layer 0 is the first hidden layer).

        Returns
        -------
        frame : pandas.DataFrame
            One row per epoch (``epoch`` is a column), one column per scalar record
            and per layer of the list records.

        Raises
        ------
        ImportError
            If pandas is not installed (``history_`` itself is plain lists).

        Examples
        --------
        >>> import warnings
        >>> from sklearn.datasets import load_iris
        >>> from relumlp import ReLUMLPClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     clf = ReLUMLPClassifier((8,), max_iter=3, random_state=0).fit(X, y)
        >>> frame = clf.history_frame()
        >>> len(frame), "dead_fraction_0" in frame.columns
        (3, True)
        """
        _check_fitted(self)
        import pandas as pd

        rows = []
        for record in self.history_:
            row = {k: v for k, v in record.items() if not isinstance(v, list)}
            for key in ("dead_fraction", "sparsity", "grad_norm"):
                for i, value in enumerate(record.get(key) or []):
                    row[f"{key}_{i}"] = value
            rows.append(row)
        return pd.DataFrame(rows)

    def _loss_grad_lbfgs(self, packed_coef_inter, X, y, sample_weight=None, *buffers):
        """Full-batch loss and gradient at a packed parameter vector.

        scikit-learn's private signature (its gradient tests call it; the trailing
        workspace arguments are accepted and ignored). ``y`` is in the network's output
        encoding (one-hot / indicator for classifiers).
        """
        layout = self._current_layout()
        dtype = self.coefs_[0].dtype
        flat = np.ascontiguousarray(packed_coef_inter, dtype=dtype)
        y = np.asarray(y, dtype=dtype)
        y = y.reshape(-1, 1) if y.ndim == 1 else y
        sw = np.ones(y.shape[0], dtype) if sample_weight is None else sample_weight
        trainer = _training.Trainer(layout, flat.copy(), X, y, sw, self.loss, self.alpha,
                                    self.alpha_l1)
        loss, grad = trainer.loss_gradient()
        return loss, grad.copy()

    def _check_solver(self):
        if self.solver not in _STOCHASTIC_SOLVERS:
            raise AttributeError(
                "partial_fit is only available for stochastic optimizers. "
                f"{self.solver} is not stochastic."
            )
        return True

    # ------------------------------------------------------------------ prediction
    def _forward_pass_fast(self, X, check_input=True):
        """The network's output for X, validated as ``validate_data(reset=False)`` does
        unless ``check_input`` is False.

        A plain float ndarray (2-D, float32 or float64, the fitted feature count, a
        model fitted without feature names, so none to compare) skips validate_data,
        whose generic conversion machinery dominates the latency of predicting a few
        rows. Its finiteness is left to the prediction kernels, which find NaN and
        infinity in the first layer's product instead of reading X once more
        (RESULTS.md, "Finiteness inside the kernels"); if they find any,
        validate_data runs and raises scikit-learn's message. Anything else (other
        types and dtypes, lists, sparse matrices, DataFrames, a wrong shape) goes
        through validate_data.
        """
        on_nonfinite = None
        if check_input:
            if (type(X) is np.ndarray and X.ndim == 2 and X.dtype.kind == "f"
                    and X.dtype.itemsize in (4, 8) and X.shape[0] > 0
                    and X.shape[1] == self.n_features_in_
                    and "feature_names_in_" not in self.__dict__):
                on_nonfinite = self._validate_predict_input
            else:
                X = self._validate_predict_input(X)
        layout, flat = self._network()
        return _inference.forward(layout, flat, X, on_nonfinite=on_nonfinite)

    def _validate_predict_input(self, X):
        """validate_data(reset=False): scikit-learn's checks and messages."""
        return validate_data(self, X, accept_sparse=["csr", "csc"],
                             dtype=(np.float64, np.float32), reset=False)

    def _network(self):
        """``(layout, flat)``: the network's layout and the flat buffer behind coefs_,
        intercepts_ and prelu_slopes_ (repacked if they were replaced).

        Fast path, once per prediction: every entry is the very object _set_flat handed
        out (``_views``), so the layout and buffer it set still describe them.
        """
        d = self.__dict__
        views = d.get("_views")
        if views is not None:
            ours = tuple(a for name in PARAMETERS for a in (d.get(name) or ()))
            if len(ours) == len(views) and all(map(is_, ours, views)):
                return d["_layout_"], d["_flat"]
        layout = self._current_layout()
        return layout, self._current_flat(layout)

    def _current_layout(self):
        layout = getattr(self, "_layout_", None)
        shapes = [c.shape for c in self.coefs_]
        if layout is None or layout.coef_shapes != shapes:
            units = [shapes[0][0]] + [s[1] for s in shapes]
            layout = self._layout(units, self.out_activation_)
        return layout

    def _parameters(self):
        """The per-layer parameter groups (``_params.PARAMETERS``) the estimator holds."""
        return [getattr(self, name, None) for name in PARAMETERS]

    def _current_flat(self, layout):
        """The flat buffer behind coefs_ / intercepts_ / prelu_slopes_; repacked if they
        were replaced."""
        flat = getattr(self, "_flat", None)
        if flat is not None and flat.size == layout.n_params:
            groups = self._parameters()
            # Fast path: the very objects _set_flat handed out (None included).
            given = getattr(self, "_views", ())
            every = [a for group in groups for a in group or []]
            if len(given) == len(every) and all(map(is_, every, given)):
                return flat
            ours = [a for a in every if a is not None]
            views = [v for part in layout.views(flat) for v in part if v is not None]
            if len(ours) == len(views) and all(
                a.shape == b.shape and a.dtype == b.dtype
                and a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
                for a, b in zip(ours, views)
            ):
                return flat
        flat = layout.pack(self._parameters(), self.coefs_[0].dtype)
        self._set_flat(layout, flat)
        return flat

    def __getstate__(self):
        state = super().__getstate__()
        for name in DERIVED:  # rebuilt from the parameters (_params.PARAMETERS)
            state.pop(name, None)
        state["_relumlp_version"] = __version__
        return state

    def __setstate__(self, state):
        pickled = state.pop("_relumlp_version", None)
        if pickled != __version__:
            warnings.warn(
                f"Trying to unpickle {type(self).__name__} from relumlp version "
                f"{pickled or 'unknown'} when using version {__version__}. This might "
                "lead to breaking code or invalid results. Use at your own risk.",
                InconsistentVersionWarning,
            )
        super().__setstate__(state)
        # Pickle stores each view as its own array: rebuild the shared flat buffer.
        if "coefs_" in state:
            self._flat = None
            self._current_flat(self._current_layout())

    def _score_with_function(self, X, y, sample_weight, score_function):
        y_pred = self._predict(X, check_input=False)
        if np.issubdtype(y_pred.dtype, np.floating) and not np.isfinite(y_pred).all():
            return np.nan
        return score_function(y, y_pred, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.target_tags.multi_output = True
        return tags


class ReLUMLPClassifier(ClassifierMixin, _BaseReLUMLP):
    """Multi-layer perceptron classifier with Cython/OpenMP kernels.

    A drop-in replacement for :class:`sklearn.neural_network.MLPClassifier`: the same
    parameters, fitted attributes and training semantics, with each epoch running as
    one call into compiled code. Optimises the log-loss with lbfgs, SGD or Adam.

    Parameters
    ----------
    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
        The ith element is the number of units in the ith hidden layer.
    activation : str or tuple of str, default='relu'
        Activation of the hidden layers, or one name per hidden layer: 'relu',
        'leaky_relu', 'prelu', 'elu', 'selu', 'gelu', 'silu' (alias 'swish'),
        'softplus', 'logistic', 'tanh' or 'identity'. See Notes for the formulas.
    solver : {'lbfgs', 'sgd', 'adam'}, default='adam'
        Weight optimisation solver.
    alpha : float, default=0.0001
        Strength of the L2 penalty, ``0.5 * alpha * ||W||^2 / sum(sample_weight)`` per
        batch, as in scikit-learn.
    batch_size : int or 'auto', default='auto'
        Minibatch size of the stochastic solvers; 'auto' is ``min(200, n_samples)``.
    learning_rate : {'constant', 'invscaling', 'adaptive', 'cosine'}, default='constant'
        Learning-rate schedule. 'constant', 'invscaling' and 'adaptive' are
        scikit-learn's, for ``solver='sgd'`` only (Adam keeps ``learning_rate_init``).
        'cosine' (sgd and adam) changes the rate at every minibatch: a linear warm-up
        over ``warmup_iters`` epochs from ``learning_rate_init / W`` to
        ``learning_rate_init`` (``W`` warm-up steps), then a cosine decay to 0 at the end
        of ``max_iter`` epochs, ``learning_rate_init * (1 + cos(pi * p)) / 2`` with ``p``
        the share of the remaining steps taken. With early stopping the schedule still
        spans ``max_iter`` epochs; after them the rate stays 0. The step count carries
        over ``partial_fit`` calls and ``warm_start``.
    learning_rate_init : float, default=0.001
        Initial learning rate (sgd and adam).
    power_t : float, default=0.5
        Exponent of the 'invscaling' schedule.
    max_iter : int, default=200
        Maximum number of epochs (stochastic solvers) or iterations (lbfgs).
    shuffle : bool, default=True
        Whether to shuffle samples in each epoch.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, shuffling and the early-stopping split.
    tol : float, default=1e-4
        Tolerance of the stopping rules.
    verbose : bool or int, default=False
        ``1`` (or True): print the loss at every iteration, like scikit-learn.
        ``2``: a progress bar instead (tqdm's if tqdm is installed, a plain text bar
        otherwise). ``3`` or more: both, the bar only if tqdm is installed.
    warm_start : bool, default=False
        Reuse the previous solution as initialisation.
    momentum : float, default=0.9
        Momentum of ``solver='sgd'``.
    nesterovs_momentum : bool, default=True
        Use Nesterov's momentum (sgd with momentum > 0).
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data (stratified) and stop when the
        validation accuracy stops improving; the best weights are restored.
    validation_fraction : float, default=0.1
        Share of the training data held out for early stopping.
    beta_1, beta_2 : float, default=0.9, 0.999
        Adam's moment decay rates.
    epsilon : float, default=1e-8
        Adam's numerical-stability constant.
    n_iter_no_change : int, default=10
        Epochs without ``tol`` improvement before stopping (stochastic solvers).
    max_fun : int, default=15000
        Maximum number of loss evaluations of lbfgs.
    negative_slope : float, default=0.01
        Slope ``s`` of 'leaky_relu' for z < 0, and the initial slope of every
        'prelu' unit.
    elu_alpha : float, default=1.0
        The ``alpha`` of 'elu'.
    weight_init : {'auto', 'sklearn', 'he_uniform', 'he_normal', 'glorot_uniform', \
            'glorot_normal', 'lecun_normal'}, default='auto'
        Weight initialisation. 'auto' is scikit-learn's initialisation, random draws
        included, when every hidden activation is one of scikit-learn's ('relu',
        'tanh', 'logistic', 'identity'): the default model is then scikit-learn's MLP,
        the same weights for the same ``random_state``. With any other activation
        (the rest of the ReLU family, selu), 'auto' chooses per layer from the
        activation the weights feed: He uniform for the ReLU family (with the gain of
        the leak for leaky_relu / prelu), Glorot uniform for tanh, logistic, identity
        and the output layer, LeCun normal for selu; intercepts start at 0. 'sklearn'
        is scikit-learn's scheme for any activation; the other names apply one scheme
        to every layer.
    alpha_l1 : float, default=0.0
        Strength of an L1 penalty on the weights, ``alpha_l1 * |W|_1`` scaled like
        ``alpha`` (divided by the batch's summed sample weight). Implemented as a
        subgradient (``sign(W)``, 0 at 0), so it works with every solver; weights
        become small, not exactly zero.
    dropout : float or tuple of float, default=0.0
        Inverted dropout rate of the hidden layers (one rate, or one per hidden
        layer), applied during training with the stochastic solvers only; predictions
        use the whole network. Masks come from a counter-based generator seeded by
        ``random_state``: reproducible and independent of the thread count.
    max_grad_norm : float, default=None
        Clip each minibatch gradient (all parameters together) to this Euclidean norm
        before the optimizer step. None disables clipping; lbfgs ignores it.
    normalization : {None, 'batch', 'layer'} or tuple, default=None
        Normalization of the hidden layers, one value for all or one per hidden layer:
        linear -> normalization -> activation, then a learned scale (initially 1) and
        offset (initially 0) per unit, updated by the optimizer and not penalised by
        ``alpha`` / ``alpha_l1`` (fitted: ``normalization_scales_``,
        ``normalization_offsets_``). 'layer' normalizes each row over the layer's units
        (mean 0, biased variance 1, plus ``normalization_eps``), the same in training
        and prediction. 'batch' normalizes each unit over the minibatch in training
        (mean and biased variance, weighted by ``sample_weight`` as the loss is, so a
        row of weight 2 counts as that row twice) and with running statistics in
        prediction (fitted: ``running_means_``, ``running_vars_``, updated after every
        minibatch with ``normalization_momentum``, the running variance from the
        unbiased batch variance, as PyTorch's ``BatchNorm1d``);
        lbfgs normalizes over the full batch and sets the running statistics to the
        whole data's. In the row-split epoch each part sums its rows and the parts' sums
        are combined in part order, so the weights stay the same on any number of
        threads. Dead-unit counts and ``history_`` see the normalized pre-activation.
    normalization_eps : float, default=1e-5
        Added to the variance of a normalized layer.
    normalization_momentum : float, default=0.1
        Weight of each minibatch in batch norm's running statistics (PyTorch's
        convention: ``running = (1 - momentum) * running + momentum * batch``).
    weight_decay : float, default=0.0
        Decoupled weight decay (sgd and adam): before each update the weights (not the
        intercepts or PReLU slopes) are scaled by ``1 - lr * weight_decay``, ``lr`` the
        step's learning rate (for adam the uncorrected, scheduled one), as PyTorch's
        ``AdamW``. Independent of ``alpha``, scikit-learn's L2 penalty added to the
        gradient (which Adam rescales); ignored by lbfgs.
    warmup_iters : int, default=0
        Epochs of linear learning-rate warm-up of ``learning_rate='cosine'``.
    record_history : bool, default=True
        Record ``history_``: per epoch the loss, validation score, learning rate,
        wall time and, per hidden layer, the dead-unit fraction, the sparsity and the
        gradient norm. The unit counts ride on the forward kernel's bias pass.
    early_stopping_metric : {'score', 'loss'}, default='score'
        What early stopping monitors on the validation set: the score (accuracy /
        R^2, as scikit-learn) or the loss (lower is better, by at least ``tol``). The
        best weights by that metric are restored; ``best_validation_loss_`` records
        the best loss.
    class_weight : dict, 'balanced' or None, default=None
        Weights of the classes, multiplied into ``sample_weight``. 'balanced' uses
        ``n_samples / (n_classes * np.bincount(y))``; it is not available in
        ``partial_fit``, where the class frequencies are not known in advance.
    label_smoothing : float in [0, 1), default=0.0
        Train on smoothed targets: ``(1 - label_smoothing) * onehot + label_smoothing /
        n_classes`` for a softmax output (multiclass), ``y * (1 - label_smoothing) +
        label_smoothing / 2`` for a logistic one (binary, multilabel), as PyTorch's
        ``CrossEntropyLoss(label_smoothing=...)`` does for the former. The reported
        losses (``loss_``, ``loss_curve_``, the validation loss) are the smoothed
        ones; scores and predictions are unaffected.

    Attributes
    ----------
    classes_ : ndarray or list of ndarray
        Class labels.
    loss_ : float
        The current loss.
    best_loss_ : float or None
        Minimum training loss (None with early stopping).
    loss_curve_ : list of float
        Loss at the end of each epoch (each lbfgs iteration with ``solver='lbfgs'``).
    validation_scores_ : list of float or None
        Validation accuracy per epoch with early stopping.
    best_validation_score_ : float or None
        Best validation accuracy with early stopping.
    t_ : int
        Number of training samples seen by the stochastic solver.
    coefs_ : list of ndarray
        Weight matrices, in the dtype of the training data.
    intercepts_ : list of ndarray
        Bias vectors.
    validation_loss_curve_ : list of float
        Loss on the validation set per epoch, when there is one (``X_val`` given or
        ``early_stopping=True``).
    history_ : list of dict
        One record per epoch (per iteration for lbfgs), kept across warm starts:
        ``epoch``, ``loss``, ``validation_score`` and ``validation_loss`` (None
        without a validation set),
        ``learning_rate``, ``time`` (seconds), and lists with one value per hidden
        layer: ``dead_fraction`` (units whose pre-activation was <= 0 for every sample
        of the epoch), ``sparsity`` (share of pre-activations <= 0), and one per layer:
        ``grad_norm`` (per layer, the norm of the weight gradient of the epoch's last
        minibatch, L1/L2 penalty terms included: set ``alpha=0`` to see the data term
        alone, e.g. for vanishing gradients). The
        unit statistics are None for lbfgs. ``history_frame()`` gives a DataFrame.
    prelu_slopes_ : list of (ndarray or None)
        Learned slopes of each hidden layer whose activation is 'prelu' (None for the
        other layers). Updated by the optimizer and not penalised by ``alpha``.
    normalization_scales_, normalization_offsets_ : list of (ndarray or None)
        The learned scale and offset of each normalized hidden layer (None for the
        other layers).
    running_means_, running_vars_ : list of (ndarray or None)
        Batch norm's running statistics of each batch-normalized hidden layer (None
        for the other layers).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of str
        Feature names seen during fit, when X has them.
    n_iter_ : int
        Number of iterations the solver ran.
    n_layers_ : int
        Number of layers, input and output included.
    n_outputs_ : int
        Number of output units.
    out_activation_ : str
        Output activation: 'logistic' (binary, multilabel) or 'softmax'.

    See Also
    --------
    ReLUMLPRegressor : The regressor.
    sklearn.neural_network.MLPClassifier : scikit-learn's implementation.

    Notes
    -----
    Activations: relu ``max(0, z)``; leaky_relu ``z if z > 0 else s z``; prelu the
    same with a learned ``s`` per unit; elu ``z if z > 0 else alpha (e^z - 1)``; selu
    ``lambda elu(z)`` with ``alpha = 1.6733, lambda = 1.0507``; gelu ``z Phi(z)`` (exact,
    with erf); silu / swish ``z sigma(z)``; softplus ``log(1 + e^z)``, computed without
    overflow. A unit is *dead* on some data when its pre-activation is <= 0 for every
    sample.

    The loss of a batch ``B`` is ``sum_{i in B} w_i l(y_i, p_i) / sum_{i in B} w_i +
    0.5 * alpha * ||W||^2 / sum_{i in B} w_i`` where ``l`` is the log-loss; the
    reported ``loss_`` averages the batch losses weighted by batch size.

    How ``fit`` reports progress and handles divergence, interruption and bad input:
    see the Notes of ``fit``.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from relumlp import ReLUMLPClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = ReLUMLPClassifier(hidden_layer_sizes=(20,), solver="lbfgs",
    ...                         max_iter=500, random_state=0).fit(X, y)
    >>> clf.score(X, y) > 0.95
    True
    """

    _parameter_constraints: dict = {
        **_BaseReLUMLP._parameter_constraints,
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "label_smoothing": [Interval(Real, 0, 1, closed="left")],
    }
    _is_classifier = True

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        negative_slope=0.01,
        elu_alpha=1.0,
        weight_init="auto",
        alpha_l1=0.0,
        dropout=0.0,
        max_grad_norm=None,
        normalization=None,
        normalization_eps=1e-5,
        normalization_momentum=0.1,
        weight_decay=0.0,
        warmup_iters=0,
        record_history=True,
        early_stopping_metric="score",
        class_weight=None,
        label_smoothing=0.0,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.negative_slope = negative_slope
        self.elu_alpha = elu_alpha
        self.weight_init = weight_init
        self.alpha_l1 = alpha_l1
        self.dropout = dropout
        self.max_grad_norm = max_grad_norm
        self.weight_decay = weight_decay
        self.warmup_iters = warmup_iters
        self.normalization = normalization
        self.normalization_eps = normalization_eps
        self.normalization_momentum = normalization_momentum
        self.record_history = record_history
        self.early_stopping_metric = early_stopping_metric
        self.class_weight = class_weight
        self.label_smoothing = label_smoothing

    loss = "log_loss"

    def _out_activation(self, n_outputs):
        if self._label_binarizer.y_type_ == "multiclass":
            return "softmax"
        return "logistic"

    def _validate_input(self, X, y, incremental, reset):
        # Check the arrays first: validate_data(reset=True) resets feature_names_in_ /
        # n_features_in_ before it looks at X, so a failed fit would change them.
        X_checked, y = check_X_y(X, y, accept_sparse=["csr", "csc"], multi_output=True,
                                 dtype=(np.float64, np.float32), estimator=self)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        binarizer = None
        if (not hasattr(self, "classes_")) or (not self.warm_start and not incremental):
            binarizer = LabelBinarizer().fit(y)
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes as in "
                        f"the previous call to fit. Previously got {self.classes_}, `y` has "
                        f"{classes}"
                    )
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(
                    f"`y` has classes not in `self.classes_`. `self.classes_` has "
                    f"{self.classes_}. 'y' has {classes}."
                )
        validate_data(self, X, y, skip_check_array=True, reset=reset)  # names / count
        X = X_checked
        if binarizer is not None:
            self._label_binarizer = binarizer
            self.classes_ = binarizer.classes_
        y_labels = y
        y = self._smooth_targets(self._label_binarizer.transform(y).astype(X.dtype))
        return X, y, y_labels

    def _smooth_targets(self, Y):
        """Y in the output encoding, with ``label_smoothing`` applied."""
        eps = self.label_smoothing
        if not eps:
            return Y
        k = Y.shape[1] if self._label_binarizer.y_type_ == "multiclass" else 2
        return (Y * (1 - eps) + eps / k).astype(Y.dtype, copy=False)

    def _sample_weight(self, sample_weight, X, y_labels, incremental):
        sample_weight = super()._sample_weight(sample_weight, X, y_labels, incremental)
        if self.class_weight is None:
            return sample_weight
        if incremental and self.class_weight == "balanced":
            raise ValueError(
                "class_weight 'balanced' is not supported for partial_fit: the class "
                "frequencies of the whole stream are unknown. Pass a dict of weights "
                "computed from the full training set instead."
            )
        cw = compute_sample_weight(self.class_weight, y_labels).astype(X.dtype)
        return cw if sample_weight is None else sample_weight * cw

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predict using the multi-layer perceptron classifier.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_classes)
            The predicted classes.

        Examples
        --------
        >>> import warnings
        >>> from sklearn.datasets import load_iris
        >>> from relumlp import ReLUMLPClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> warnings.simplefilter("ignore")  # ConvergenceWarning of the short fit
        >>> clf = ReLUMLPClassifier((8,), max_iter=5, random_state=0).fit(X, y)
        >>> clf.predict(X[:3]).shape
        (3,)
        """
        _check_fitted(self)
        return self._predict(X)

    def _predict(self, X, check_input=True):
        y_pred = self._forward_pass_fast(X, check_input=check_input)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        return _inverse_binarize(self._label_binarizer, y_pred)

    def _score(self, X, y, sample_weight=None):
        return self._score_with_function(X, y, sample_weight, accuracy_score)

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None,
                    classes: ArrayLike | None = None) -> Self:
        """Update the model with a single epoch over the given data.

        Available for ``solver='sgd'`` and ``'adam'`` only.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,) or (n_samples, n_classes)
            The target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.
        classes : array of shape (n_classes,), default=None
            All classes of the stream; required on the first call.

        Returns
        -------
        self : object
            The updated estimator.

        Examples
        --------
        >>> import warnings
        >>> from sklearn.datasets import load_iris
        >>> from relumlp import ReLUMLPClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> warnings.simplefilter("ignore")  # ConvergenceWarning of the short fit
        >>> clf = ReLUMLPClassifier((8,), random_state=0)
        >>> clf = clf.partial_fit(X[:50], y[:50], classes=[0, 1, 2])  # classes: first call
        >>> clf = clf.partial_fit(X[50:], y[50:])
        >>> clf.t_, clf.classes_.tolist()  # samples seen, classes
        (150, [0, 1, 2])
        """
        def set_classes():
            if _check_partial_fit_first_call(self, classes):
                self._label_binarizer = LabelBinarizer()
                if type_of_target(y).startswith("multilabel"):
                    self._label_binarizer.fit(y)
                else:
                    self._label_binarizer.fit(classes)

        return self._fit(X, y, sample_weight=sample_weight, incremental=True,
                         prepare=set_classes)

    def predict_log_proba(self, X: ArrayLike) -> np.ndarray:
        """Return the log of probability estimates.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        log_y_prob : ndarray of shape (n_samples, n_classes)
            ``log(predict_proba(X))``.

        Examples
        --------
        >>> import warnings
        >>> from sklearn.datasets import load_iris
        >>> from relumlp import ReLUMLPClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> warnings.simplefilter("ignore")  # ConvergenceWarning of the short fit
        >>> import numpy as np
        >>> clf = ReLUMLPClassifier((8,), max_iter=5, random_state=0).fit(X, y)
        >>> np.allclose(np.exp(clf.predict_log_proba(X[:2])), clf.predict_proba(X[:2]))
        True
        """
        y_prob = self.predict_proba(X)
        if np.count_nonzero(y_prob) == y_prob.size:  # no log(0): skip errstate's cost
            return np.log(y_prob, out=y_prob)
        with np.errstate(divide="ignore"):
            return np.log(y_prob, out=y_prob)

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Probability estimates.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y_prob : ndarray of shape (n_samples, n_classes)
            Probability of each class, ordered as in ``classes_``, in the model's dtype.

        Examples
        --------
        >>> import warnings
        >>> from sklearn.datasets import load_iris
        >>> from relumlp import ReLUMLPClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> warnings.simplefilter("ignore")  # ConvergenceWarning of the short fit
        >>> clf = ReLUMLPClassifier((8,), max_iter=5, random_state=0).fit(X, y)
        >>> proba = clf.predict_proba(X[:2])
        >>> proba.shape, bool((abs(proba.sum(axis=1) - 1) < 1e-12).all())
        ((2, 3), True)
        """
        _check_fitted(self)
        y_pred = self._forward_pass_fast(X)
        if self.n_outputs_ != 1:
            return y_pred
        # np.vstack([1 - p, p]).T, as scikit-learn returns it, without vstack's cost.
        y_pred = y_pred.ravel()
        y_prob = np.empty((2, len(y_pred)), dtype=y_pred.dtype)
        np.subtract(1, y_pred, out=y_prob[0])
        y_prob[1] = y_pred
        return y_prob.T

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class ReLUMLPRegressor(RegressorMixin, _BaseReLUMLP):
    """Multi-layer perceptron regressor with Cython/OpenMP kernels.

    A drop-in replacement for :class:`sklearn.neural_network.MLPRegressor`: the same
    parameters, fitted attributes and training semantics, with each epoch running as
    one call into compiled code.

    Parameters
    ----------
    loss : {'squared_error', 'poisson'}, default='squared_error'
        The loss. 'poisson' uses an exp output and half the Poisson deviance; it
        requires non-negative targets (scikit-learn silently produces NaN losses on
        negative targets; relumlp raises ``ValueError``).
    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
        The ith element is the number of units in the ith hidden layer.
    activation : str or tuple of str, default='relu'
        Activation of the hidden layers, or one name per hidden layer: 'relu',
        'leaky_relu', 'prelu', 'elu', 'selu', 'gelu', 'silu' (alias 'swish'),
        'softplus', 'logistic', 'tanh' or 'identity'. See Notes for the formulas.
    solver : {'lbfgs', 'sgd', 'adam'}, default='adam'
        Weight optimisation solver.
    alpha : float, default=0.0001
        Strength of the L2 penalty.
    batch_size : int or 'auto', default='auto'
        Minibatch size; 'auto' is ``min(200, n_samples)``.
    learning_rate : {'constant', 'invscaling', 'adaptive', 'cosine'}, default='constant'
        Learning-rate schedule. 'constant', 'invscaling' and 'adaptive' are
        scikit-learn's, for ``solver='sgd'`` only (Adam keeps ``learning_rate_init``).
        'cosine' (sgd and adam) changes the rate at every minibatch: a linear warm-up
        over ``warmup_iters`` epochs from ``learning_rate_init / W`` to
        ``learning_rate_init`` (``W`` warm-up steps), then a cosine decay to 0 at the end
        of ``max_iter`` epochs, ``learning_rate_init * (1 + cos(pi * p)) / 2`` with ``p``
        the share of the remaining steps taken. With early stopping the schedule still
        spans ``max_iter`` epochs; after them the rate stays 0. The step count carries
        over ``partial_fit`` calls and ``warm_start``.
    learning_rate_init : float, default=0.001
        Initial learning rate.
    power_t : float, default=0.5
        Exponent of the 'invscaling' schedule.
    max_iter : int, default=200
        Maximum number of epochs or lbfgs iterations.
    shuffle : bool, default=True
        Whether to shuffle samples in each epoch.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, shuffling and the early-stopping split.
    tol : float, default=1e-4
        Tolerance of the stopping rules.
    verbose : bool or int, default=False
        ``1`` (or True): print the loss at every iteration, like scikit-learn.
        ``2``: a progress bar instead (tqdm's if tqdm is installed, a plain text bar
        otherwise). ``3`` or more: both, the bar only if tqdm is installed.
    warm_start : bool, default=False
        Reuse the previous solution as initialisation.
    momentum : float, default=0.9
        Momentum of ``solver='sgd'``.
    nesterovs_momentum : bool, default=True
        Use Nesterov's momentum.
    early_stopping : bool, default=False
        Stop when the R^2 on a held-out ``validation_fraction`` stops improving; the
        best weights are restored.
    validation_fraction : float, default=0.1
        Share of the data held out for early stopping.
    beta_1, beta_2 : float, default=0.9, 0.999
        Adam's moment decay rates.
    epsilon : float, default=1e-8
        Adam's numerical-stability constant.
    n_iter_no_change : int, default=10
        Epochs without ``tol`` improvement before stopping.
    max_fun : int, default=15000
        Maximum number of loss evaluations of lbfgs.
    negative_slope : float, default=0.01
        Slope ``s`` of 'leaky_relu' for z < 0, and the initial slope of every
        'prelu' unit.
    elu_alpha : float, default=1.0
        The ``alpha`` of 'elu'.
    weight_init : {'auto', 'sklearn', 'he_uniform', 'he_normal', 'glorot_uniform', \
            'glorot_normal', 'lecun_normal'}, default='auto'
        Weight initialisation. 'auto' is scikit-learn's initialisation, random draws
        included, when every hidden activation is one of scikit-learn's ('relu',
        'tanh', 'logistic', 'identity'): the default model is then scikit-learn's MLP,
        the same weights for the same ``random_state``. With any other activation
        (the rest of the ReLU family, selu), 'auto' chooses per layer from the
        activation the weights feed: He uniform for the ReLU family (with the gain of
        the leak for leaky_relu / prelu), Glorot uniform for tanh, logistic, identity
        and the output layer, LeCun normal for selu; intercepts start at 0. 'sklearn'
        is scikit-learn's scheme for any activation; the other names apply one scheme
        to every layer.
    alpha_l1 : float, default=0.0
        Strength of an L1 penalty on the weights, ``alpha_l1 * |W|_1`` scaled like
        ``alpha`` (divided by the batch's summed sample weight). Implemented as a
        subgradient (``sign(W)``, 0 at 0), so it works with every solver; weights
        become small, not exactly zero.
    dropout : float or tuple of float, default=0.0
        Inverted dropout rate of the hidden layers (one rate, or one per hidden
        layer), applied during training with the stochastic solvers only; predictions
        use the whole network. Masks come from a counter-based generator seeded by
        ``random_state``: reproducible and independent of the thread count.
    max_grad_norm : float, default=None
        Clip each minibatch gradient (all parameters together) to this Euclidean norm
        before the optimizer step. None disables clipping; lbfgs ignores it.
    normalization : {None, 'batch', 'layer'} or tuple, default=None
        Normalization of the hidden layers, one value for all or one per hidden layer:
        linear -> normalization -> activation, then a learned scale (initially 1) and
        offset (initially 0) per unit, updated by the optimizer and not penalised by
        ``alpha`` / ``alpha_l1`` (fitted: ``normalization_scales_``,
        ``normalization_offsets_``). 'layer' normalizes each row over the layer's units
        (mean 0, biased variance 1, plus ``normalization_eps``), the same in training
        and prediction. 'batch' normalizes each unit over the minibatch in training
        (mean and biased variance, weighted by ``sample_weight`` as the loss is, so a
        row of weight 2 counts as that row twice) and with running statistics in
        prediction (fitted: ``running_means_``, ``running_vars_``, updated after every
        minibatch with ``normalization_momentum``, the running variance from the
        unbiased batch variance, as PyTorch's ``BatchNorm1d``);
        lbfgs normalizes over the full batch and sets the running statistics to the
        whole data's. In the row-split epoch each part sums its rows and the parts' sums
        are combined in part order, so the weights stay the same on any number of
        threads. Dead-unit counts and ``history_`` see the normalized pre-activation.
    normalization_eps : float, default=1e-5
        Added to the variance of a normalized layer.
    normalization_momentum : float, default=0.1
        Weight of each minibatch in batch norm's running statistics (PyTorch's
        convention: ``running = (1 - momentum) * running + momentum * batch``).
    weight_decay : float, default=0.0
        Decoupled weight decay (sgd and adam): before each update the weights (not the
        intercepts or PReLU slopes) are scaled by ``1 - lr * weight_decay``, ``lr`` the
        step's learning rate (for adam the uncorrected, scheduled one), as PyTorch's
        ``AdamW``. Independent of ``alpha``, scikit-learn's L2 penalty added to the
        gradient (which Adam rescales); ignored by lbfgs.
    warmup_iters : int, default=0
        Epochs of linear learning-rate warm-up of ``learning_rate='cosine'``.
    record_history : bool, default=True
        Record ``history_``: per epoch the loss, validation score, learning rate,
        wall time and, per hidden layer, the dead-unit fraction, the sparsity and the
        gradient norm. The unit counts ride on the forward kernel's bias pass.
    early_stopping_metric : {'score', 'loss'}, default='score'
        What early stopping monitors on the validation set: the score (accuracy /
        R^2, as scikit-learn) or the loss (lower is better, by at least ``tol``). The
        best weights by that metric are restored; ``best_validation_loss_`` records
        the best loss.

    Attributes
    ----------
    loss_ : float
        The current loss.
    best_loss_ : float or None
        Minimum training loss (None with early stopping).
    loss_curve_ : list of float
        Loss per epoch (per iteration with lbfgs).
    validation_scores_ : list of float or None
        Validation R^2 per epoch with early stopping.
    best_validation_score_ : float or None
        Best validation R^2 with early stopping.
    t_ : int
        Number of training samples seen by the stochastic solver.
    coefs_ : list of ndarray
        Weight matrices, in the dtype of the training data.
    intercepts_ : list of ndarray
        Bias vectors.
    validation_loss_curve_ : list of float
        Loss on the validation set per epoch, when there is one (``X_val`` given or
        ``early_stopping=True``).
    history_ : list of dict
        One record per epoch (per iteration for lbfgs), kept across warm starts:
        ``epoch``, ``loss``, ``validation_score`` and ``validation_loss`` (None
        without a validation set),
        ``learning_rate``, ``time`` (seconds), and lists with one value per hidden
        layer: ``dead_fraction`` (units whose pre-activation was <= 0 for every sample
        of the epoch), ``sparsity`` (share of pre-activations <= 0), and one per layer:
        ``grad_norm`` (per layer, the norm of the weight gradient of the epoch's last
        minibatch, L1/L2 penalty terms included: set ``alpha=0`` to see the data term
        alone, e.g. for vanishing gradients). The
        unit statistics are None for lbfgs. ``history_frame()`` gives a DataFrame.
    prelu_slopes_ : list of (ndarray or None)
        Learned slopes of each hidden layer whose activation is 'prelu' (None for the
        other layers). Updated by the optimizer and not penalised by ``alpha``.
    normalization_scales_, normalization_offsets_ : list of (ndarray or None)
        The learned scale and offset of each normalized hidden layer (None for the
        other layers).
    running_means_, running_vars_ : list of (ndarray or None)
        Batch norm's running statistics of each batch-normalized hidden layer (None
        for the other layers).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of str
        Feature names seen during fit, when X has them.
    n_iter_ : int
        Number of iterations the solver ran.
    n_layers_ : int
        Number of layers, input and output included.
    n_outputs_ : int
        Number of outputs.
    out_activation_ : str
        'identity' (squared error) or 'exp' (Poisson).

    See Also
    --------
    ReLUMLPClassifier : The classifier.
    sklearn.neural_network.MLPRegressor : scikit-learn's implementation.

    Notes
    -----
    Activations: relu ``max(0, z)``; leaky_relu ``z if z > 0 else s z``; prelu the
    same with a learned ``s`` per unit; elu ``z if z > 0 else alpha (e^z - 1)``; selu
    ``lambda elu(z)`` with ``alpha = 1.6733, lambda = 1.0507``; gelu ``z Phi(z)`` (exact,
    with erf); silu / swish ``z sigma(z)``; softplus ``log(1 + e^z)``, computed without
    overflow. A unit is *dead* on some data when its pre-activation is <= 0 for every
    sample.

    With ``loss='squared_error'`` the batch loss is
    ``0.5 * sum_k sum_i w_i (y_ik - p_ik)^2 / sum_i w_i`` plus the penalties. For one
    output this is scikit-learn's loss. For several outputs scikit-learn reports the
    mean over outputs but follows the gradient of the sum (scikit-learn issue #8349),
    so its ``loss_curve_`` and lbfgs objective disagree with its own gradient; relumlp
    reports the sum, whose gradient it follows, and trains the same weights.

    How ``fit`` reports progress and handles divergence, interruption and bad input:
    see the Notes of ``fit``.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn.preprocessing import StandardScaler
    >>> from relumlp import ReLUMLPRegressor
    >>> X, y = load_diabetes(return_X_y=True)
    >>> X = StandardScaler().fit_transform(X)
    >>> reg = ReLUMLPRegressor(hidden_layer_sizes=(32,), solver="lbfgs",
    ...                        max_iter=300, random_state=0).fit(X, y / 100)
    >>> reg.score(X, y / 100) > 0.5
    True
    """

    _parameter_constraints: dict = {
        **_BaseReLUMLP._parameter_constraints,
        "loss": [StrOptions({"squared_error", "poisson"})],
    }

    def __init__(
        self,
        loss="squared_error",
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        negative_slope=0.01,
        elu_alpha=1.0,
        weight_init="auto",
        alpha_l1=0.0,
        dropout=0.0,
        max_grad_norm=None,
        normalization=None,
        normalization_eps=1e-5,
        normalization_momentum=0.1,
        weight_decay=0.0,
        warmup_iters=0,
        record_history=True,
        early_stopping_metric="score",
    ):
        self.loss = loss
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.negative_slope = negative_slope
        self.elu_alpha = elu_alpha
        self.weight_init = weight_init
        self.alpha_l1 = alpha_l1
        self.dropout = dropout
        self.max_grad_norm = max_grad_norm
        self.weight_decay = weight_decay
        self.warmup_iters = warmup_iters
        self.normalization = normalization
        self.normalization_eps = normalization_eps
        self.normalization_momentum = normalization_momentum
        self.record_history = record_history
        self.early_stopping_metric = early_stopping_metric

    def _out_activation(self, n_outputs):
        return "exp" if self.loss == "poisson" else "identity"

    def _validate_input(self, X, y, incremental, reset):
        y_kind = None if sp.issparse(y) else np.asarray(y).dtype.kind
        if y_kind in ("U", "S", "O"):
            try:
                if y_kind != "O":  # strings are class labels, even "1.5"
                    raise ValueError(f"got string targets of dtype {np.asarray(y).dtype}")
                np.asarray(y, dtype=np.float64)
            except (TypeError, ValueError) as e:
                raise ValueError(
                    f"{type(self).__name__} needs numeric targets y ({e}); for class "
                    "labels use ReLUMLPClassifier."
                ) from e
        # Check the arrays first: validate_data(reset=True) resets feature_names_in_ /
        # n_features_in_ before it looks at X, so a failed fit would change them.
        X_checked, y = check_X_y(X, y, accept_sparse=["csr", "csc"], multi_output=True,
                                 y_numeric=True, dtype=(np.float64, np.float32),
                                 estimator=self)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if self.loss == "poisson" and np.any(y < 0):
            raise ValueError(
                "loss='poisson' requires non-negative y (counts or rates); got "
                f"min(y)={np.min(y)!r}."
            )
        validate_data(self, X, y, skip_check_array=True, reset=reset)  # names / count
        X = X_checked
        return X, y.astype(X.dtype, copy=False), None

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predict using the multi-layer perceptron model.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The predicted values, in the model's dtype.

        Examples
        --------
        >>> import warnings
        >>> from sklearn.datasets import load_diabetes
        >>> from relumlp import ReLUMLPRegressor
        >>> X, y = load_diabetes(return_X_y=True)
        >>> warnings.simplefilter("ignore")  # ConvergenceWarning of the short fit
        >>> reg = ReLUMLPRegressor(hidden_layer_sizes=(16,), max_iter=5, random_state=0).fit(X, y)
        >>> reg.predict(X[:3]).shape
        (3,)
        """
        _check_fitted(self)
        return self._predict(X)

    def _predict(self, X, check_input=True):
        y_pred = self._forward_pass_fast(X, check_input=check_input)
        if y_pred.shape[1] == 1:
            return y_pred.ravel()
        return y_pred

    def _score(self, X, y, sample_weight=None):
        return self._score_with_function(X, y, sample_weight, r2_score)

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X: ArrayLike, y: ArrayLike,
                    sample_weight: ArrayLike | None = None) -> Self:
        """Update the model with a single epoch over the given data.

        Available for ``solver='sgd'`` and ``'adam'`` only (scikit-learn's regressor
        offers it for lbfgs too and then runs a full lbfgs fit).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        self : object
            The updated estimator.

        Examples
        --------
        >>> import warnings
        >>> from sklearn.datasets import load_diabetes
        >>> from relumlp import ReLUMLPRegressor
        >>> X, y = load_diabetes(return_X_y=True)
        >>> warnings.simplefilter("ignore")  # ConvergenceWarning of the short fit
        >>> reg = ReLUMLPRegressor(hidden_layer_sizes=(16,), random_state=0)
        >>> for start in range(0, len(X), 100):  # a stream of batches
        ...     reg = reg.partial_fit(X[start:start + 100], y[start:start + 100])
        >>> reg.t_  # samples seen
        442
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

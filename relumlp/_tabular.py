"""A recipe for tabular data: preprocessing and a relumlp estimator in one Pipeline.

``make_tabular_classifier`` / ``make_tabular_regressor`` build a scikit-learn
``Pipeline``: numeric columns imputed (median), robustly scaled and smoothly clipped
(``RobustScaleSmoothClip``), categorical columns imputed (most frequent) and one-hot
encoded, then a ``ReLUMLPClassifier`` / ``ReLUMLPRegressor`` with the recipe's
parameters. The recipe's ingredients follow Holzmüller et al., "Better by Default:
Strong Pre-Tuned MLPs and Boosted Trees on Tabular Data" (2024): robust scaling with
smooth clipping, one-hot categoricals, parametric activations, decoupled weight decay, a
cosine schedule with warm-up, label smoothing, dropout and the best epoch of a
validation split. Its numbers are a first version, to be tuned on a benchmark of real
tables (``benchmarks/``) and reported in RESULTS.md.
"""
from numbers import Real

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin, _fit_context
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor, make_column_selector
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted, validate_data

from relumlp._estimators import ReLUMLPClassifier, ReLUMLPRegressor


class RobustScaleSmoothClip(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Robust scaling followed by a smooth clip of outliers.

    Each column is centred on its median and divided by a robust scale: the
    interquartile range divided by 1.349 (the standard deviation of a normal
    distribution), or, for a column whose quartiles coincide, the mean absolute
    deviation from the median (times sqrt(pi / 2)), or 1 for a constant column. The
    scaled value ``z`` is then clipped smoothly, ``z / sqrt(1 + (z / clip) ** 2)``: the
    identity near 0, bounded by ``clip`` in magnitude, so that a few extreme values do
    not dominate a network's first layer.

    Parameters
    ----------
    clip : float, default=3.0
        The bound of the smooth clip (values far beyond it map close to +-clip).

    Attributes
    ----------
    center_ : ndarray of shape (n_features,)
        The median of each column.
    scale_ : ndarray of shape (n_features,)
        The robust scale of each column.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of str
        Feature names seen during fit, when X has them.

    Examples
    --------
    >>> import numpy as np
    >>> from relumlp import RobustScaleSmoothClip
    >>> X = np.array([[1.0], [2.0], [3.0], [4.0], [1000.0]])
    >>> Xt = RobustScaleSmoothClip().fit_transform(X)
    >>> bool(np.abs(Xt).max() < 3)
    True
    """

    _parameter_constraints: dict = {"clip": [Interval(Real, 0, None, closed="neither")]}

    def __init__(self, clip=3.0):
        self.clip = clip

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn each column's median and robust scale.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The data; NaN values are ignored (impute them before this transformer to
            feed a network).
        y : None
            Ignored.

        Returns
        -------
        self : object
            The fitted transformer.
        """
        X = validate_data(self, X, dtype=[np.float64, np.float32],
                          ensure_all_finite="allow-nan")
        with np.errstate(all="ignore"):
            q25, center, q75 = np.nanpercentile(X, [25, 50, 75], axis=0)
            iqr_scale = (q75 - q25) / 1.349
            mad_scale = np.nanmean(np.abs(X - center), axis=0) * np.sqrt(np.pi / 2)
        scale = np.where(iqr_scale > 0, iqr_scale, mad_scale)
        scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
        self.center_ = np.where(np.isfinite(center), center, 0.0)
        self.scale_ = scale
        return self

    def transform(self, X):
        """Scale and smoothly clip X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The data.

        Returns
        -------
        X_t : ndarray of shape (n_samples, n_features)
            ``z / sqrt(1 + (z / clip) ** 2)`` with ``z = (X - center_) / scale_``.
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False,
                          ensure_all_finite="allow-nan")
        z = (X - self.center_.astype(X.dtype)) / self.scale_.astype(X.dtype)
        return z / np.sqrt(1 + (z / X.dtype.type(self.clip)) ** 2)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


# The recipe's estimator parameters (a first version: see the module docstring).
_RECIPE = dict(hidden_layer_sizes=(256, 256, 256), activation="prelu", solver="adam",
               learning_rate="cosine", warmup_iters=2, learning_rate_init=0.002,
               weight_decay=0.02, dropout=0.15, batch_size="auto", max_iter=100,
               early_stopping=True, validation_fraction=0.2, n_iter_no_change=100,
               early_stopping_metric="loss", alpha=0.0)


def _numeric_columns(X):
    """A DataFrame's numeric columns; every column of an array."""
    if hasattr(X, "dtypes"):
        return make_column_selector(dtype_include=np.number)(X)
    return list(range(X.shape[1]))


def _other_columns(X):
    """A DataFrame's non-numeric columns (categories, strings); none of an array."""
    if hasattr(X, "dtypes"):
        return make_column_selector(dtype_exclude=np.number)(X)
    return []


def _preprocessor(clip):
    numeric = Pipeline([("impute", SimpleImputer(strategy="median")),
                        ("scale", RobustScaleSmoothClip(clip=clip))])
    categorical = Pipeline([("impute", SimpleImputer(strategy="most_frequent")),
                            ("onehot", OneHotEncoder(handle_unknown="ignore",
                                                     sparse_output=False))])
    return ColumnTransformer(
        [("numeric", numeric, _numeric_columns),
         ("categorical", categorical, _other_columns)],
        sparse_threshold=0.0, verbose_feature_names_out=False)


def make_tabular_classifier(*, clip=3.0, **overrides):
    """A preprocessing + ``ReLUMLPClassifier`` Pipeline with the tabular recipe.

    Numeric columns (a DataFrame's numeric dtypes; every column of an array) are imputed
    with their median and scaled by ``RobustScaleSmoothClip``; the other columns of a
    DataFrame are imputed with their most frequent value and one-hot encoded (unknown
    categories at prediction: all zeros). The network: three hidden layers of 256 PReLU
    units, AdamW (``weight_decay=0.02``) with a cosine schedule after two warm-up epochs,
    dropout 0.15, label smoothing 0.1, 100 epochs with the best epoch on a 20 %
    validation split (by loss) restored.

    Parameters
    ----------
    clip : float, default=3.0
        The smooth clip of the scaled numeric columns.
    **overrides : dict
        ``ReLUMLPClassifier`` parameters that replace the recipe's (for example
        ``random_state=0``, ``max_iter=200``).

    Returns
    -------
    pipeline : sklearn.pipeline.Pipeline
        Steps ``"preprocess"`` (a ``ColumnTransformer``) and ``"mlp"``; usable in
        ``cross_validate`` and ``GridSearchCV`` (``mlp__alpha``, ...), picklable.

    Examples
    --------
    >>> import warnings
    >>> from sklearn.datasets import load_wine
    >>> from relumlp import make_tabular_classifier
    >>> X, y = load_wine(return_X_y=True, as_frame=True)
    >>> warnings.simplefilter("ignore")  # ConvergenceWarning of the short fit
    >>> model = make_tabular_classifier(max_iter=5, random_state=0).fit(X, y)
    >>> model.predict(X.iloc[:3]).shape
    (3,)
    """
    params = {**_RECIPE, "label_smoothing": 0.1, **overrides}
    return Pipeline([("preprocess", _preprocessor(clip)),
                     ("mlp", ReLUMLPClassifier(**params))])


def make_tabular_regressor(*, clip=3.0, **overrides):
    """A preprocessing + ``ReLUMLPRegressor`` Pipeline with the tabular recipe.

    The preprocessing and network are ``make_tabular_classifier``'s, without label
    smoothing. The Pipeline is wrapped in a ``TransformedTargetRegressor`` that
    standardises the target (each output column to mean 0, variance 1) for training and
    maps predictions back: the recipe's learning rate, weight decay and initialisation
    assume a target of unit scale, and a log price or a count in the thousands would
    otherwise train slowly or not at all.

    Parameters
    ----------
    clip : float, default=3.0
        The smooth clip of the scaled numeric columns.
    **overrides : dict
        ``ReLUMLPRegressor`` parameters that replace the recipe's.

    Returns
    -------
    model : sklearn.compose.TransformedTargetRegressor
        ``regressor`` is the Pipeline, steps ``"preprocess"`` and ``"mlp"`` (grid
        search names: ``regressor__mlp__alpha``, ...); ``transformer`` a
        ``StandardScaler``. After fitting, ``regressor_`` is the fitted Pipeline.

    Examples
    --------
    >>> import warnings
    >>> from sklearn.datasets import load_diabetes
    >>> from relumlp import make_tabular_regressor
    >>> X, y = load_diabetes(return_X_y=True)
    >>> warnings.simplefilter("ignore")  # ConvergenceWarning of the short fit
    >>> model = make_tabular_regressor(max_iter=5, random_state=0).fit(X, y)
    >>> model.predict(X[:3]).shape
    (3,)
    """
    params = {**_RECIPE, **overrides}
    pipeline = Pipeline([("preprocess", _preprocessor(clip)),
                         ("mlp", ReLUMLPRegressor(**params))])
    return TransformedTargetRegressor(regressor=pipeline, transformer=StandardScaler(),
                                      check_inverse=False)

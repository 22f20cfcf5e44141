"""The fitted state of an estimator, declared once.

``FITTED`` lists every attribute that ``fit`` / ``partial_fit`` leave on an estimator:
which group sets it (input validation, the network, training), whether scikit-learn's
MLP has it with the same meaning (interop copies those), whether it is a per-epoch
record (a list that grows by one per epoch and is cut back on rollback), and whether it
is derived from the others (rebuilt after unpickling instead of stored). Initialisation
and warm start (``TrainingState``), rollback (``TrainingState.snapshot``), interop,
pickling and scikit-learn's callbacks (``network_attributes``) all read this table.
"""
from typing import NamedTuple

import numpy as np

from relumlp._params import PARAMETERS


class Fitted(NamedTuple):
    name: str
    group: str             # "data", "network" or "training"
    sklearn: bool = False  # scikit-learn's MLP has it, with the same meaning
    curve: bool = False    # one entry per epoch: rollback cuts it back
    derived: bool = False  # rebuilt from the others (not pickled)


FITTED = (
    # Set by input validation.
    Fitted("n_features_in_", "data", sklearn=True),
    Fitted("feature_names_in_", "data", sklearn=True),
    Fitted("classes_", "data", sklearn=True),
    Fitted("_label_binarizer", "data", sklearn=True),
    # The network: its shape and the flat parameter buffer with its per-layer views.
    Fitted("n_outputs_", "network", sklearn=True),
    Fitted("n_layers_", "network", sklearn=True),
    Fitted("out_activation_", "network", sklearn=True),
    *(Fitted(name, "network") for name in PARAMETERS),   # views into _flat
    Fitted("_layout_", "network"),
    Fitted("_flat", "network", derived=True),
    Fitted("_views", "network", derived=True),
    # Training: what the optimisation has done so far (TrainingState).
    Fitted("n_iter_", "training", sklearn=True),
    Fitted("t_", "training", sklearn=True),
    Fitted("loss_", "training", sklearn=True),
    Fitted("loss_curve_", "training", sklearn=True, curve=True),
    Fitted("best_loss_", "training", sklearn=True),
    Fitted("validation_scores_", "training", sklearn=True, curve=True),
    Fitted("best_validation_score_", "training", sklearn=True),
    Fitted("validation_loss_curve_", "training", curve=True),
    Fitted("best_validation_loss_", "training"),
    Fitted("history_", "training", curve=True),
    Fitted("_no_improvement_count", "training", sklearn=True),
    Fitted("_best_params", "training"),    # Checkpoint of the best validation epoch
    Fitted("_optimizer", "training"),      # _optimizers.SGDState / AdamState
    Fitted("_dropout_step", "training"),   # dropout stream of the next minibatch
)

TRAINING = tuple(f.name for f in FITTED if f.group == "training")
CURVES = tuple(f.name for f in FITTED if f.curve)
SKLEARN = tuple(f.name for f in FITTED if f.sklearn)
DERIVED = tuple(f.name for f in FITTED if f.derived)


class TrainingState:
    """The training group of the fitted state, owned by the training loop while it runs.

    An attribute that a fit does not have is absent, as on scikit-learn's MLP (lbfgs
    has no ``best_loss_``). Curves are the estimator's own lists (appends show at once);
    everything else reaches the estimator through ``publish``.
    """

    @classmethod
    def new(cls, stochastic, early_stopping, best):
        """The state of a first fit, as scikit-learn's ``_initialize`` leaves it.

        ``best`` is the Checkpoint of the initial weights (what early stopping restores
        if no epoch improves)."""
        state = cls()
        state.n_iter_ = 0
        state.t_ = 0
        state.validation_loss_curve_ = None
        state.best_validation_loss_ = None
        state.history_ = []
        state._best_params = best
        state._dropout_step = 0
        if stochastic:
            state.loss_curve_ = []
            state._no_improvement_count = 0
            if early_stopping:
                state.validation_scores_ = []
                state.best_validation_score_ = -np.inf
                state.best_loss_ = None
            else:
                state.best_loss_ = np.inf
                state.validation_scores_ = None
                state.best_validation_score_ = None
        return state

    @classmethod
    def resume(cls, est):
        """The state a fitted estimator holds (warm start, partial_fit)."""
        state = cls()
        for name in TRAINING:
            if name in est.__dict__:
                setattr(state, name, est.__dict__[name])
        if getattr(state, "history_", None) is None:
            state.history_ = []
        if not hasattr(state, "_dropout_step"):
            state._dropout_step = 0
        return state

    def continue_stochastic(self, early_stopping, validation_set, scored, best):
        """Start the bookkeeping that this fit's settings need and an earlier fit of the
        estimator may not have started (a warm start may switch early stopping on or
        off; scikit-learn then crashes on ``best_loss_ = None``). ``validation_set``:
        the user gave one; ``scored``: a validation set is scored every epoch."""
        if early_stopping and getattr(self, "validation_scores_", None) is None:
            self.validation_scores_, self.best_validation_score_ = [], -np.inf
            self._best_params = best
        if not early_stopping and getattr(self, "best_loss_", None) is None:
            self.best_loss_ = np.inf
        if not hasattr(self, "_no_improvement_count"):
            self._no_improvement_count = 0
        if validation_set and getattr(self, "validation_scores_", None) is None:
            self.validation_scores_ = []
        if scored and getattr(self, "validation_loss_curve_", None) is None:
            self.validation_loss_curve_ = []
        if getattr(self, "loss_curve_", None) is None:
            self.loss_curve_ = []

    def publish(self, est):
        """Make the estimator's training attributes those of this state."""
        for name in TRAINING:
            if name not in vars(self):
                est.__dict__.pop(name, None)
        est.__dict__.update(vars(self))

    def snapshot(self):
        """What an epoch may change: curve lengths and the other values."""
        return {name: len(value) if name in CURVES and value is not None else value
                for name, value in vars(self).items()}

    def restore(self, snapshot):
        """Back to a snapshot: curves cut back to their length then, values reset."""
        for name in list(vars(self)):
            if name not in snapshot:
                delattr(self, name)
        for name, value in snapshot.items():
            current = getattr(self, name, None)
            if name in CURVES and current is not None and value is not None:
                del current[value:]
            else:
                setattr(self, name, value)


def network_attributes(layout, flat):
    """The network group for ``flat`` (its per-layer views): what makes a shallow copy
    of an estimator predict with these weights."""
    groups = layout.views(flat)
    # _views: every entry of the groups, None included, in order: predictions check by
    # identity that the estimator still holds exactly these (_network).
    return {"_flat": flat, "_layout_": layout, **dict(zip(PARAMETERS, groups)),
            "_views": tuple(v for group in groups for v in group)}

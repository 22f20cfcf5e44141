"""Activation names (the public API) mapped to the kernels' integer codes.

Each hidden activation declares whether its derivative needs the pre-activation ``z``
(then the forward pass keeps Z next to A) or only the output ``a``.
"""
from typing import NamedTuple

from relumlp._kernels import Activation, Loss


class HiddenActivation(NamedTuple):
    code: int
    needs_z: bool


HIDDEN_ACTIVATIONS = {
    "identity": HiddenActivation(Activation.IDENTITY, False),
    "logistic": HiddenActivation(Activation.LOGISTIC, False),
    "tanh": HiddenActivation(Activation.TANH, False),
    "relu": HiddenActivation(Activation.RELU, False),
}

OUTPUT_ACTIVATIONS = {
    "identity": Activation.IDENTITY,
    "logistic": Activation.LOGISTIC,
    "softmax": Activation.SOFTMAX,
    "exp": Activation.EXP,
}

LOSSES = {
    "squared_error": Loss.SQUARED_ERROR,
    "log_loss": Loss.LOG_LOSS,
    "binary_log_loss": Loss.BINARY_LOG_LOSS,
    "poisson": Loss.POISSON,
}


def loss_code(loss, out_activation):
    """Kernel loss code; log-loss with a logistic output is the binary log-loss."""
    if loss == "log_loss" and out_activation == "logistic":
        return LOSSES["binary_log_loss"]
    return LOSSES[loss]

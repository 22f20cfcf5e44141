"""Activation names (the public API) mapped to the kernels' integer codes.

Each hidden activation declares whether its derivative needs the pre-activation ``z``
(then the forward pass keeps Z next to A), which scalar parameter it takes, and which
initialisation ``weight_init='auto'`` gives the weights that feed it.
"""
from typing import NamedTuple

from relumlp._kernels import Activation, Loss


class HiddenActivation(NamedTuple):
    code: int
    needs_z: bool      # f' computed from z (else from a = f(z) alone)
    param: str         # estimator parameter giving the scalar p of f(z, p), or ""
    init: str          # weight_init='auto' scheme for the weights feeding this layer


HIDDEN_ACTIVATIONS = {
    "identity": HiddenActivation(Activation.IDENTITY, False, "", "glorot_uniform"),
    "logistic": HiddenActivation(Activation.LOGISTIC, False, "", "glorot_uniform"),
    "tanh": HiddenActivation(Activation.TANH, False, "", "glorot_uniform"),
    "relu": HiddenActivation(Activation.RELU, False, "", "he_uniform"),
    "leaky_relu": HiddenActivation(Activation.LEAKY_RELU, False, "negative_slope", "he_uniform"),
    "prelu": HiddenActivation(Activation.PRELU, True, "negative_slope", "he_uniform"),
    "elu": HiddenActivation(Activation.ELU, False, "elu_alpha", "he_uniform"),
    "selu": HiddenActivation(Activation.SELU, False, "", "lecun_normal"),
    "gelu": HiddenActivation(Activation.GELU, True, "", "he_uniform"),
    "silu": HiddenActivation(Activation.SILU, True, "", "he_uniform"),
    "swish": HiddenActivation(Activation.SILU, True, "", "he_uniform"),
    "softplus": HiddenActivation(Activation.SOFTPLUS, True, "", "he_uniform"),
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

# scikit-learn's MLP activations: with only these, weight_init='auto' is scikit-learn's
# initialisation (the same weights for the same random_state).
SKLEARN_ACTIVATIONS = ("identity", "logistic", "tanh", "relu")

WEIGHT_INITS = ("auto", "sklearn", "he_uniform", "he_normal", "glorot_uniform",
                "glorot_normal", "lecun_normal")


def loss_code(loss, out_activation):
    """Kernel loss code; log-loss with a logistic output is the binary log-loss."""
    if loss == "log_loss" and out_activation == "logistic":
        return LOSSES["binary_log_loss"]
    return LOSSES[loss]

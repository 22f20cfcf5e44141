"""Network state: one flat parameter buffer with per-layer views, and its workspaces.

The flat buffer holds every weight matrix (row-major, layer by layer) followed by every
intercept vector, the order scikit-learn's MLP uses for lbfgs. ``coefs_`` and
``intercepts_`` are NumPy views into it; gradients and optimizer state are flat buffers
of the same length. All buffers are C-contiguous and owned by this module's callers.
"""
import numpy as np

from relumlp._activations import HIDDEN_ACTIVATIONS, OUTPUT_ACTIVATIONS


class NetworkLayout:
    """Geometry of an MLP: layer widths, activations and offsets into flat buffers.

    Parameters
    ----------
    layer_units : list of int
        ``[n_features, *hidden_layer_sizes, n_outputs]``.
    activations : list of str
        One hidden activation name per hidden layer.
    out_activation : str
        Output activation name.
    """

    def __init__(self, layer_units, activations, out_activation):
        self.units = [int(u) for u in layer_units]
        self.n_layers = len(self.units) - 1
        self.activations = list(activations)
        self.out_activation = out_activation
        fan = list(zip(self.units[:-1], self.units[1:]))
        self.coef_shapes = fan
        sizes = [i * o for i, o in fan]
        self.w_off = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
        self.n_coefs = int(sum(sizes))
        self.b_off = (self.n_coefs
                      + np.concatenate([[0], np.cumsum(self.units[1:])[:-1]])).astype(np.intp)
        self.n_params = self.n_coefs + int(sum(self.units[1:]))
        codes = [HIDDEN_ACTIVATIONS[a].code for a in self.activations]
        self.act_codes = codes + [OUTPUT_ACTIVATIONS[out_activation]]
        self.needs_z = [HIDDEN_ACTIVATIONS[a].needs_z for a in self.activations]

    @property
    def n_outputs(self):
        return self.units[-1]

    def layout_array(self, rows):
        """The int layout the kernels read, with workspace offsets for ``rows`` rows.

        Returns
        -------
        layout : ndarray of intp
        acts_size, deltas_size : int
            Elements needed by the activation and delta workspaces.
        """
        L = self.n_layers
        z_off, a_off, d_off = [], [], []
        cur = 0
        for width, needs_z in zip(self.units[1:-1], self.needs_z):
            z_off.append(cur)
            if needs_z:
                cur += rows * width
            a_off.append(cur)
            cur += rows * width
        z_off.append(0)
        a_off.append(0)
        d_cur = 0
        for width in self.units[1:]:
            d_off.append(d_cur)
            d_cur += rows * width
        layout = np.concatenate(
            [[L, self.n_coefs, self.n_params], self.units, self.w_off, self.b_off,
             self.act_codes, z_off, a_off, d_off]
        ).astype(np.intp)
        return layout, max(cur, 1), max(d_cur, 1)

    def views(self, flat):
        """Per-layer ``coefs`` and ``intercepts`` views into the flat buffer."""
        coefs = [
            flat[o:o + i * n].reshape(i, n) for o, (i, n) in zip(self.w_off, self.coef_shapes)
        ]
        intercepts = [flat[o:o + n] for o, n in zip(self.b_off, self.units[1:])]
        return coefs, intercepts

    def pack(self, coefs, intercepts, dtype):
        """A new flat buffer holding copies of ``coefs`` and ``intercepts``."""
        flat = np.empty(self.n_params, dtype=dtype)
        c_views, i_views = self.views(flat)
        for dst, src in zip(c_views + i_views, list(coefs) + list(intercepts)):
            if np.shape(src) != dst.shape:
                raise ValueError(
                    f"A parameter array has shape {np.shape(src)}, expected {dst.shape}; "
                    "coefs_ and intercepts_ must match hidden_layer_sizes and the data."
                )
            dst[...] = src
        return flat


def init_sklearn(layout, random_state, dtype):
    """scikit-learn's Glorot-uniform initialisation, with its exact random draws.

    For each layer, weights then intercepts are drawn from U(-b, b) with
    ``b = sqrt(factor / (fan_in + fan_out))``, ``factor = 2`` for logistic hidden units
    and 6 otherwise, in float64 and then cast, as ``MLPClassifier`` does.
    """
    coefs, intercepts = [], []
    factor = 2.0 if layout.activations and layout.activations[0] == "logistic" else 6.0
    for fan_in, fan_out in layout.coef_shapes:
        bound = np.sqrt(factor / (fan_in + fan_out))
        coefs.append(random_state.uniform(-bound, bound, (fan_in, fan_out)))
        intercepts.append(random_state.uniform(-bound, bound, fan_out))
    return layout.pack(coefs, intercepts, dtype)

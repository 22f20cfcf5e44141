"""Network state: one flat parameter buffer with per-layer views, and its workspaces.

The flat buffer holds every weight matrix (row-major, layer by layer), then every
intercept vector (the order scikit-learn's MLP uses for lbfgs), then the learned PReLU
slopes, then per normalized layer its scales and offsets (and, for batch norm, its
running means and variances: in the buffer so that they are saved, checkpointed and
restored with the rest, with a zero gradient, so that the optimizer leaves them alone). ``coefs_``, ``intercepts_``,
``prelu_slopes_``, ``normalization_scales_`` and ``normalization_offsets_`` are NumPy
views into it;
gradients and optimizer state are flat buffers of the same length. Only the weights
(the first ``n_coefs`` entries) are penalised. All buffers are C-contiguous.
"""
import threading

import numpy as np

from relumlp import _kernels
from relumlp._activations import (
    HIDDEN_ACTIVATIONS,
    OUTPUT_ACTIVATIONS,
    SKLEARN_ACTIVATIONS,
)

# The learned per-layer parameters, in the order of the flat buffer and of
# NetworkLayout.views: the fitted attributes that view the buffer.
PARAMETERS = ("coefs_", "intercepts_", "prelu_slopes_", "normalization_scales_",
              "normalization_offsets_", "running_means_", "running_vars_")
# Normalizations a hidden layer can have (None: none), by kernel code.
NORMALIZATIONS = {"layer": 1, "batch": 2}


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
    act_params : list of float, default=None
        The scalar parameter of each hidden activation (leaky slope, ELU alpha).
    dropout : list of float, default=None
        Dropout rate of each hidden layer.
    options : dict, default=None
        Further per-layer operations of the hidden layers: name -> one value per hidden
        layer (None where the layer does without). ONNX export and ``to_sklearn``
        refuse a network that uses any (``used_options``) until they learn it.
    normalization : list of (str or None), default=None
        Per hidden layer: 'layer' or 'batch' (normalization of the pre-activation, with
        a learned scale and offset per unit) or None.
    normalization_eps : float, default=1e-5
        The epsilon added to the variance.
    normalization_momentum : float, default=0.1
        Batch norm's running statistics: ``(1 - momentum) * running + momentum * batch``.
    """

    def __init__(self, layer_units, activations, out_activation, act_params=None,
                 dropout=None, options=None, normalization=None, normalization_eps=1e-5,
                 normalization_momentum=0.1):
        self.units = [int(u) for u in layer_units]
        self.n_layers = len(self.units) - 1
        n_hidden = self.n_layers - 1
        self.activations = list(activations)
        self.out_activation = out_activation
        self.act_params = [float(p) for p in (act_params or [0.0] * n_hidden)]
        self.dropout = [float(r) for r in (dropout or [0.0] * n_hidden)]
        self.options = {name: list(values) for name, values in (options or {}).items()}
        self.coef_shapes = list(zip(self.units[:-1], self.units[1:]))
        sizes = [i * o for i, o in self.coef_shapes]
        self.w_off = _offsets(sizes, 0)
        self.n_coefs = int(sum(sizes))
        self.b_off = _offsets(self.units[1:], self.n_coefs)
        start = self.n_coefs + int(sum(self.units[1:]))
        self.s_off = []
        for width, name in zip(self.units[1:-1], self.activations):
            if name == "prelu":
                self.s_off.append(start)
                start += width
            else:
                self.s_off.append(-1)
        self.s_off.append(-1)
        self.normalization = list(normalization or [None] * n_hidden)
        self.normalization_eps = float(normalization_eps)
        self.normalization_momentum = float(normalization_momentum)
        self.n_off = []
        for width, norm in zip(self.units[1:-1], self.normalization):
            if norm is None:
                self.n_off.append(-1)
            elif norm in NORMALIZATIONS:
                self.n_off.append(start)
                # scales, offsets (batch norm: then running means and variances)
                start += (4 if norm == "batch" else 2) * width
            else:
                raise ValueError(f"unknown normalization {norm!r}")
        self.n_off.append(-1)
        self.n_params = start
        # Plain ints: what the kernels read, and what any persistence format can store.
        self.act_codes = [int(HIDDEN_ACTIVATIONS[a].code) for a in self.activations]
        self.act_codes.append(int(OUTPUT_ACTIVATIONS[out_activation]))
        self.needs_z = [HIDDEN_ACTIVATIONS[a].needs_z for a in self.activations]

    @property
    def n_outputs(self):
        return self.units[-1]

    @property
    def normalized(self):
        """Whether some hidden layer is normalized."""
        return any(o >= 0 for o in self.__dict__.get("n_off", ()))

    def used_options(self):
        """Names of the ``options`` (and of ``normalization``) some hidden layer uses."""
        used = [name for name, values in self.options.items()
                if any(v is not None for v in values)]
        return sorted(used + (["normalization"] if self.normalized else []))

    @property
    def network(self):
        """The kernels' typed view of this layout (``_kernels.Network``), built once."""
        network = self.__dict__.get("_network")
        if network is None:
            network = self.__dict__["_network"] = _kernels.Network(
                units=self.units, act=self.act_codes, w_off=self.w_off, b_off=self.b_off,
                n_coefs=self.n_coefs, n_params=self.n_params, s_off=self.s_off[:-1],
                act_param=self.act_params, needs_z=self.needs_z, dropout=self.dropout,
                n_off=self.__dict__.get("n_off", [-1] * self.n_layers)[:-1],
                norm_eps=[self.__dict__.get("normalization_eps", 1e-5)] * (self.n_layers - 1),
                norm_kind=[NORMALIZATIONS.get(k, 0) if k else 0
                           for k in self.__dict__.get("normalization", [None] * (self.n_layers - 1))],
                norm_momentum=self.__dict__.get("normalization_momentum", 0.1),
                **self.options)
        return network

    def workspace(self, rows, dtype, training=False, dense_batches=False, keep_z=False):
        """A new ``_kernels.Workspace`` for passes over up to ``rows`` rows."""
        return _kernels.Workspace(self.network, rows, dtype, training=training,
                                  dense_batches=dense_batches, keep_z=keep_z)

    def few_rows_workspace(self, dtype):
        """A prediction workspace for ``_kernels.SMALL_ROWS_MAX`` rows, kept per thread:
        predicting one row then allocates nothing but its output."""
        try:  # the one-row path: one lookup
            return self._local.by_dtype[dtype]
        except (AttributeError, KeyError):
            pass
        local = self.__dict__.get("_local")
        if local is None:
            local = self.__dict__.setdefault("_local", threading.local())
        if not hasattr(local, "by_dtype"):  # first call in this thread
            local.by_dtype = {}
        ws = local.by_dtype[dtype] = self.workspace(_kernels.SMALL_ROWS_MAX, dtype)
        return ws

    def __getstate__(self):
        # The kernels' view and the per-thread workspaces are rebuilt on demand.
        return {k: v for k, v in self.__dict__.items() if k not in ("_network", "_local")}

    def views(self, flat):
        """Per-layer views into ``flat``, one list per name of ``PARAMETERS`` (in that
        order): ``coefs``, ``intercepts`` and PReLU ``slopes``.

        ``slopes``, ``scales``, ``offsets``, ``running_means`` and ``running_vars`` have
        one entry per hidden layer: a view where the layer has them (PReLU;
        normalization; batch normalization), else None.
        """
        coefs = [flat[o:o + i * n].reshape(i, n)
                 for o, (i, n) in zip(self.w_off, self.coef_shapes)]
        intercepts = [flat[o:o + n] for o, n in zip(self.b_off, self.units[1:])]
        slopes = [None if o < 0 else flat[o:o + n]
                  for o, n in zip(self.s_off[:-1], self.units[1:-1])]
        n_off = self.__dict__.get("n_off", [-1] * self.n_layers)[:-1]
        scales = [None if o < 0 else flat[o:o + n] for o, n in zip(n_off, self.units[1:-1])]
        offsets = [None if o < 0 else flat[o + n:o + 2 * n]
                   for o, n in zip(n_off, self.units[1:-1])]
        kinds = self.__dict__.get("normalization", [None] * len(n_off))
        means = [flat[o + 2 * n:o + 3 * n] if k == "batch" else None
                 for o, n, k in zip(n_off, self.units[1:-1], kinds)]
        variances = [flat[o + 3 * n:o + 4 * n] if k == "batch" else None
                     for o, n, k in zip(n_off, self.units[1:-1], kinds)]
        return coefs, intercepts, slopes, scales, offsets, means, variances

    def pack(self, groups, dtype):
        """A new flat buffer holding copies of ``groups``: per name of ``PARAMETERS``, the
        list of per-layer arrays (None where the layer has none, or for a whole group
        the network does not use)."""
        flat = aligned_empty(self.n_params, dtype)
        for name, dsts, srcs in zip(PARAMETERS, self.views(flat), groups):
            srcs = [None] * len(dsts) if srcs is None else list(srcs)
            if len(srcs) != len(dsts):
                raise ValueError(f"{name} has {len(srcs)} layers, expected {len(dsts)}; "
                                 f"{', '.join(PARAMETERS)} must match the network.")
            for dst, src in zip(dsts, srcs):
                if dst is None:
                    continue
                if src is None or np.shape(src) != dst.shape:
                    raise ValueError(
                        f"A parameter array has shape {np.shape(src)}, expected "
                        f"{dst.shape}; {', '.join(PARAMETERS)} must match the network."
                    )
                dst[...] = src
        return flat


def _offsets(sizes, start):
    return [int(start + s) for s in np.concatenate([[0], np.cumsum(sizes)[:-1]])] \
        if len(sizes) else []


# The flat buffer starts on a cache line (NumPy guarantees 16 bytes): otherwise every
# AVX-512 load of a weight row straddles two lines, and the few-rows forward pass of a
# 784-256-128 float32 network took 17.5 us instead of 11 on a Xeon (RESULTS.md).
CACHE_LINE = 64


def aligned_empty(n, dtype, alignment=CACHE_LINE):
    """An uninitialised 1-D array of n items of dtype whose data starts on a multiple of
    ``alignment`` bytes."""
    dtype = np.dtype(dtype)
    raw = np.empty(n * dtype.itemsize + alignment, dtype=np.uint8)
    start = -raw.ctypes.data % alignment
    return raw[start:start + n * dtype.itemsize].view(dtype)


def init_params(layout, scheme, random_state, dtype, negative_slope=0.01,
                sklearn_logistic=False):
    """Initial flat parameters.

    Parameters
    ----------
    layout : NetworkLayout
    scheme : str
        'sklearn' reproduces scikit-learn's scheme and random draws exactly: per layer,
        weights then intercepts from U(-b, b), ``b = sqrt(f / (fan_in + fan_out))``,
        ``f = 2`` for ``activation='logistic'`` and 6 otherwise. 'auto' is 'sklearn' when
        every hidden activation is one of scikit-learn's (relu, tanh, logistic,
        identity), so that the default model is scikit-learn's; otherwise it picks per
        layer from the activation the weights feed (He for the ReLU family, Glorot for
        tanh/logistic/identity and the output layer, LeCun normal for selu). The other
        names apply one scheme to every layer; their intercepts start at 0.
    random_state : numpy.random.RandomState
    dtype : numpy dtype
    negative_slope : float, default=0.01
        Initial PReLU slope, and the leak that He's gain accounts for.
    sklearn_logistic : bool, default=False
        For 'sklearn': use its factor 2 (scikit-learn's ``activation == 'logistic'``,
        which applies even without hidden layers).
    """
    coefs, intercepts = [], []
    if scheme == "auto" and all(a in SKLEARN_ACTIVATIONS for a in layout.activations):
        scheme = "sklearn"
    if scheme == "sklearn":
        factor = 2.0 if sklearn_logistic else 6.0
        for fan_in, fan_out in layout.coef_shapes:
            bound = np.sqrt(factor / (fan_in + fan_out))
            coefs.append(random_state.uniform(-bound, bound, (fan_in, fan_out)))
            intercepts.append(random_state.uniform(-bound, bound, fan_out))
    else:
        feeds = layout.activations + [None]
        for (fan_in, fan_out), act in zip(layout.coef_shapes, feeds):
            name = scheme
            if scheme == "auto":
                name = "glorot_uniform" if act is None else HIDDEN_ACTIVATIONS[act].init
            # He's gain for a leak s: 2 / (1 + s^2).
            leak = negative_slope if act in ("leaky_relu", "prelu") else 0.0
            he_var = 2.0 / ((1.0 + leak**2) * fan_in)
            if name == "he_uniform":
                w = random_state.uniform(-1, 1, (fan_in, fan_out)) * np.sqrt(3 * he_var)
            elif name == "he_normal":
                w = random_state.normal(0, np.sqrt(he_var), (fan_in, fan_out))
            elif name == "glorot_uniform":
                bound = np.sqrt(6.0 / (fan_in + fan_out))
                w = random_state.uniform(-bound, bound, (fan_in, fan_out))
            elif name == "glorot_normal":
                w = random_state.normal(0, np.sqrt(2.0 / (fan_in + fan_out)), (fan_in, fan_out))
            elif name == "lecun_normal":
                w = random_state.normal(0, np.sqrt(1.0 / fan_in), (fan_in, fan_out))
            else:
                raise ValueError(f"Unknown weight_init {scheme!r}.")
            coefs.append(w)
            intercepts.append(np.zeros(fan_out))
    slopes = [None if o < 0 else np.full(n, negative_slope)
              for o, n in zip(layout.s_off[:-1], layout.units[1:-1])]
    n_off = layout.n_off[:-1]
    scales = [None if o < 0 else np.ones(n) for o, n in zip(n_off, layout.units[1:-1])]
    offsets = [None if o < 0 else np.zeros(n) for o, n in zip(n_off, layout.units[1:-1])]
    batch = [k == "batch" for k in layout.normalization]
    means = [np.zeros(n) if b else None for b, n in zip(batch, layout.units[1:-1])]
    variances = [np.ones(n) if b else None for b, n in zip(batch, layout.units[1:-1])]
    return layout.pack((coefs, intercepts, slopes, scales, offsets, means, variances), dtype)

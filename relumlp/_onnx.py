"""ONNX export of fitted relumlp estimators, for inference without Python.

The graph is assembled node by node with ``onnx.helper`` from the fitted ``coefs_``,
``intercepts_`` and ``prelu_slopes_``; it reproduces ``_inference.forward`` (the kernels'
prediction pass, where dropout is off and the weights are used as stored, since training
uses inverted dropout). Install the optional dependency with ``pip install relumlp[onnx]``.
"""
import numpy as np
from sklearn.utils.validation import check_is_fitted

from relumlp._version import __version__

# SELU constants of the kernels (relumlp/_kernels.pyx).
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946

# Default opset: 21 (onnxruntime >= 1.20) has every operator used here, Gelu included;
# capped by what the installed onnx package knows. Opset 13 is the oldest accepted.
DEFAULT_OPSET = 21
MIN_OPSET = 13


def _import_onnx():
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError as e:  # pragma: no cover - exercised only without onnx
        raise ImportError(
            "ONNX export needs the 'onnx' package; install it with "
            "`pip install relumlp[onnx]` (or `pip install onnx`)."
        ) from e
    return onnx, TensorProto, helper, numpy_helper


class _Graph:
    """Nodes and initializers of the graph under construction, with unique names."""

    def __init__(self, helper, numpy_helper, dtype):
        self.helper = helper
        self.numpy_helper = numpy_helper
        self.dtype = np.dtype(dtype)
        self.nodes = []
        self.initializers = []
        self._names = set()

    def _unique(self, hint):
        name, i = hint, 1
        while name in self._names:
            name, i = f"{hint}_{i}", i + 1
        self._names.add(name)
        return name

    def const(self, value, hint, dtype=None):
        """An initializer holding ``value`` (in the graph's float dtype by default)."""
        arr = np.asarray(value, dtype=self.dtype if dtype is None else dtype)
        name = self._unique(hint)
        self.initializers.append(self.numpy_helper.from_array(arr, name))
        return name

    def tensor(self, tensor_proto):
        """Add a ready-made TensorProto as an initializer; return its name."""
        self._names.add(tensor_proto.name)
        self.initializers.append(tensor_proto)
        return tensor_proto.name

    def op(self, op_type, inputs, hint, output=None, **attrs):
        """Append one node; return the name of its (single) output."""
        out = output if output is not None else self._unique(hint)
        if output is not None:
            self._names.add(output)
        self.nodes.append(self.helper.make_node(
            op_type, list(inputs), [out], name=self._unique(f"{hint}_{op_type}"), **attrs))
        return out


def _where_positive(g, z, negative, hint):
    """``z if z > 0 else negative`` (elementwise)."""
    zero = g.const(0.0, f"{hint}_zero")
    pos = g.op("Greater", [z, zero], f"{hint}_pos")
    return g.op("Where", [pos, z, negative], hint)


def _elu_formula(g, z, alpha, hint):
    """``z if z > 0 else alpha (e^z - 1)``; exp of min(z, 0) so that it never overflows."""
    zero = g.const(0.0, f"{hint}_zero")
    one = g.const(1.0, f"{hint}_one")
    e = g.op("Exp", [g.op("Min", [z, zero], f"{hint}_neg")], f"{hint}_exp")
    neg = g.op("Mul", [g.const(alpha, f"{hint}_alpha"), g.op("Sub", [e, one], f"{hint}_em1")],
               f"{hint}_scaled")
    return _where_positive(g, z, neg, hint)


def _gelu_formula(g, z, hint):
    """``0.5 z (1 + erf(z / sqrt 2))``; float64 graphs evaluate erf in float32."""
    u = g.op("Mul", [z, g.const(1.0 / np.sqrt(2.0), f"{hint}_inv_sqrt2")], f"{hint}_u")
    if g.dtype == np.float64:
        # onnxruntime's CPU provider has no float64 Erf (nor Gelu) kernel.
        from onnx import TensorProto

        u32 = g.op("Cast", [u], f"{hint}_u32", to=TensorProto.FLOAT)
        erf = g.op("Cast", [g.op("Erf", [u32], f"{hint}_erf32")], f"{hint}_erf",
                   to=TensorProto.DOUBLE)
    else:
        erf = g.op("Erf", [u], f"{hint}_erf")
    one_plus = g.op("Add", [erf, g.const(1.0, f"{hint}_one")], f"{hint}_1perf")
    half_z = g.op("Mul", [z, g.const(0.5, f"{hint}_half")], f"{hint}_halfz")
    return g.op("Mul", [half_z, one_plus], hint)


def _hidden_activation(g, name, z, param, slopes, opset, hint):
    """Output name of activation ``name`` applied to tensor ``z``.

    float32 graphs use the dedicated ONNX operators. onnxruntime's CPU provider
    implements LeakyRelu, PRelu, Elu, Selu, Softplus, Erf and Gelu for float32 only, so
    float64 graphs spell those out with elementary operators.
    """
    native = g.dtype == np.float32
    if name == "identity":
        return z
    if name == "logistic":
        return g.op("Sigmoid", [z], hint)
    if name == "tanh":
        return g.op("Tanh", [z], hint)
    if name == "relu":
        return g.op("Relu", [z], hint)
    if name in ("leaky_relu", "prelu"):
        if name == "prelu":
            if slopes is None:
                raise ValueError(f"Layer {hint!r} is 'prelu' but prelu_slopes_ has no "
                                 "slopes for it.")
            slope = g.const(slopes, f"{hint}_slopes")
        elif native:
            return g.op("LeakyRelu", [z], hint, alpha=float(param))
        else:
            slope = g.const(param, f"{hint}_slope")
        if native:
            return g.op("PRelu", [z, slope], hint)
        return _where_positive(g, z, g.op("Mul", [z, slope], f"{hint}_leak"), hint)
    if name == "elu":
        if native:
            return g.op("Elu", [z], hint, alpha=float(param))
        return _elu_formula(g, z, float(param), hint)
    if name == "selu":
        if native:
            return g.op("Selu", [z], hint, alpha=SELU_ALPHA, gamma=SELU_SCALE)
        elu = _elu_formula(g, z, SELU_ALPHA, f"{hint}_elu")
        return g.op("Mul", [elu, g.const(SELU_SCALE, f"{hint}_scale")], hint)
    if name == "gelu":
        if native and opset >= 20:
            return g.op("Gelu", [z], hint, approximate="none")
        return _gelu_formula(g, z, hint)
    if name in ("silu", "swish"):
        return g.op("Mul", [z, g.op("Sigmoid", [z], f"{hint}_sigmoid")], hint)
    if name == "softplus":
        if native:
            return g.op("Softplus", [z], hint)
        # max(z, 0) + log(1 + e^-|z|), as the kernel computes it (log1p spelled out).
        e = g.op("Exp", [g.op("Neg", [g.op("Abs", [z], f"{hint}_abs")], f"{hint}_nabs")],
                 f"{hint}_exp")
        log = g.op("Log", [g.op("Add", [e, g.const(1.0, f"{hint}_one")], f"{hint}_1pe")],
                   f"{hint}_log")
        return g.op("Add", [g.op("Relu", [z], f"{hint}_relu"), log], hint)
    raise ValueError(f"Cannot export hidden activation {name!r}.")


def _output_activation(g, name, z, output=None):
    if name == "identity":
        return g.op("Identity", [z], "out", output=output)
    if name == "logistic":
        return g.op("Sigmoid", [z], "out", output=output)
    if name == "softmax":
        return g.op("Softmax", [z], "out", output=output, axis=1)
    if name == "exp":
        return g.op("Exp", [z], "out", output=output)
    raise ValueError(f"Cannot export output activation {name!r}.")


def _classes_tensor(g, TensorProto, classes):
    """``classes_`` as a constant tensor, and its ONNX element type."""
    classes = np.asarray(classes)
    kind = classes.dtype.kind
    if kind in "iu":
        arr, elem = classes.astype(np.int64), TensorProto.INT64
    elif kind == "b":
        arr, elem = classes, TensorProto.BOOL
    elif kind == "f":
        arr, elem = classes.astype(np.float64), TensorProto.DOUBLE
    elif kind in "USO" and all(isinstance(c, (str, bytes, np.str_, np.bytes_))
                               for c in classes):
        values = [c if isinstance(c, bytes) else str(c).encode("utf-8") for c in classes]
        return (g.helper.make_tensor("classes", TensorProto.STRING, [len(values)], values),
                TensorProto.STRING)
    else:
        raise TypeError(
            f"Cannot export class labels of dtype {classes.dtype} to ONNX; use integer, "
            "boolean, float or string labels."
        )
    return g.numpy_helper.from_array(arr, "classes"), elem


def to_onnx(estimator, *, dtype=np.float32, opset=None, name=None):
    """Export a fitted relumlp estimator to an ONNX model.

    The graph is built from standard ONNX operators (Gemm, the activations,
    LayerNormalization / BatchNormalization for normalized layers, Softmax, ArgMax,
    Gather, ...) and needs no custom operator, so it runs in onnxruntime or any
    other ONNX runtime, without Python.

    Parameters
    ----------
    estimator : ReLUMLPClassifier or ReLUMLPRegressor
        A fitted estimator.
    dtype : {np.float32, np.float64}, default=np.float32
        Element type of the input, of the weights (cast to it) and of the float outputs.
    opset : int, default=None
        ONNX opset of the default domain; None takes ``DEFAULT_OPSET`` (21), capped by
        the installed onnx package. From opset 20 the exact ``Gelu`` operator is used
        for gelu layers, before that its formula ``0.5 x (1 + erf(x / sqrt 2))``.
        Must be at least 13.
    name : str, default=None
        Name of the graph; None uses the estimator's class name.

    Returns
    -------
    model : onnx.ModelProto
        A model with one input ``"X"`` of shape ``(N, n_features_in_)``. A classifier
        has two outputs: ``"label"`` (shape ``(N,)``, ``predict``'s labels; for
        multilabel targets an int64 indicator matrix ``(N, n_outputs_)``) and
        ``"probabilities"`` (``predict_proba``; ``[1 - p, p]`` for a binary problem). A
        regressor has one output ``"variable"`` of shape ``(N, n_outputs_)``.

    Raises
    ------
    ImportError
        If the onnx package is not installed (``pip install relumlp[onnx]``).
    sklearn.exceptions.NotFittedError
        If the estimator is not fitted.
    TypeError
        If the estimator is not a relumlp estimator, or its class labels have a dtype
        ONNX cannot hold.
    ValueError
        If ``dtype`` or ``opset`` is not supported (layer normalization needs opset 17).

    Notes
    -----
    The model evaluates the network exactly as ``predict`` does (dropout is inverted
    dropout, so inference uses the stored weights) and agrees with it up to
    floating-point rounding: about 1e-6 in float32. onnxruntime's CPU provider has
    float32 kernels only for LeakyRelu, PRelu, Elu, Selu, Softplus, Erf and Gelu, so a
    float64 model spells these activations out with elementary operators; erf is then
    still evaluated in float32, which limits gelu layers of a float64 model to about
    1e-7 relative accuracy (every other activation keeps float64 accuracy).

    Examples
    --------
    >>> import numpy as np
    >>> import onnxruntime
    >>> from sklearn.datasets import load_iris
    >>> from relumlp import ReLUMLPClassifier, to_onnx
    >>> X, y = load_iris(return_X_y=True)
    >>> X = X.astype(np.float32)
    >>> clf = ReLUMLPClassifier(hidden_layer_sizes=(8,), activation="elu", solver="lbfgs",
    ...                         random_state=0).fit(X, y)
    >>> model = to_onnx(clf)
    >>> sess = onnxruntime.InferenceSession(model.SerializeToString(),
    ...                                     providers=["CPUExecutionProvider"])
    >>> label, proba = sess.run(["label", "probabilities"], {"X": X})
    >>> bool((label == clf.predict(X)).all()), np.allclose(proba, clf.predict_proba(X),
    ...                                                    atol=1e-5)
    (True, True)
    """
    onnx, TensorProto, helper, numpy_helper = _import_onnx()
    from relumlp._estimators import ReLUMLPClassifier, ReLUMLPRegressor

    if not isinstance(estimator, (ReLUMLPClassifier, ReLUMLPRegressor)):
        raise TypeError(
            "to_onnx exports ReLUMLPClassifier and ReLUMLPRegressor estimators, got "
            f"{type(estimator).__name__}."
        )
    check_is_fitted(estimator, "coefs_")

    dtype = np.dtype(dtype)
    if dtype == np.float32:
        elem = TensorProto.FLOAT
    elif dtype == np.float64:
        elem = TensorProto.DOUBLE
    else:
        raise ValueError(f"dtype must be np.float32 or np.float64, got {dtype}.")
    max_opset = onnx.defs.onnx_opset_version()
    if opset is None:
        opset = min(DEFAULT_OPSET, max_opset)
    if not isinstance(opset, (int, np.integer)) or not MIN_OPSET <= opset <= max_opset:
        raise ValueError(
            f"opset must be an integer in [{MIN_OPSET}, {max_opset}] (the newest the "
            f"installed onnx {onnx.__version__} knows), got {opset!r}."
        )
    opset = int(opset)

    # The layout predict uses (activations and their scalar parameters).
    layout = estimator._current_layout()
    unknown = [o for o in layout.used_options() if o != "normalization"]
    if unknown:
        raise ValueError(f"to_onnx cannot express {', '.join(unknown)} yet.")
    coefs, intercepts = estimator.coefs_, estimator.intercepts_
    n_hidden = len(coefs) - 1
    slopes = getattr(estimator, "prelu_slopes_", None) or [None] * n_hidden
    norms = getattr(layout, "normalization", None) or [None] * n_hidden
    if "layer" in norms and opset < 17:
        raise ValueError(f"layer normalization needs opset >= 17 (LayerNormalization), "
                         f"got opset={opset}.")

    g = _Graph(helper, numpy_helper, dtype)
    g._names.add("X")
    a = "X"
    for k, (W, b) in enumerate(zip(coefs, intercepts)):
        hint = f"layer{k}"
        w = g.const(W, f"coef{k}")
        c = g.const(b, f"intercept{k}")
        z = g.op("Gemm", [a, w, c], f"{hint}_z")
        if k < n_hidden and norms[k] is not None:
            scale = g.const(estimator.normalization_scales_[k], f"norm_scale{k}")
            offset = g.const(estimator.normalization_offsets_[k], f"norm_offset{k}")
            eps = float(layout.normalization_eps)
            if norms[k] == "layer":
                z = g.op("LayerNormalization", [z, scale, offset], f"{hint}_norm", axis=-1,
                         epsilon=eps)
            else:  # batch norm, prediction mode: the running statistics
                mean = g.const(estimator.running_means_[k], f"running_mean{k}")
                var = g.const(estimator.running_vars_[k], f"running_var{k}")
                z = g.op("BatchNormalization", [z, scale, offset, mean, var],
                         f"{hint}_norm", epsilon=eps)
        if k < n_hidden:
            a = _hidden_activation(g, layout.activations[k], z, layout.act_params[k],
                                   slopes[k], opset, f"{hint}_a")

    n_features = coefs[0].shape[0]
    n_outputs = coefs[-1].shape[1]
    inputs = [helper.make_tensor_value_info("X", elem, [None, n_features])]
    out_act = estimator.out_activation_

    if isinstance(estimator, ReLUMLPRegressor):
        _output_activation(g, out_act, z, output="variable")
        outputs = [helper.make_tensor_value_info("variable", elem, [None, n_outputs])]
    else:
        classes = estimator.classes_
        multilabel = estimator._label_binarizer.y_type_ == "multilabel-indicator"
        if multilabel:
            p = _output_activation(g, out_act, z, output="probabilities")
            half = g.const(0.5, "threshold")
            above = g.op("Greater", [p, half], "above")
            g.op("Cast", [above], "label", output="label", to=TensorProto.INT64)
            outputs = [
                helper.make_tensor_value_info("label", TensorProto.INT64,
                                              [None, n_outputs]),
                helper.make_tensor_value_info("probabilities", elem, [None, n_outputs]),
            ]
        else:
            if n_outputs == 1:
                # Binary: predict_proba is [1 - p, p]. ArgMax picks column 1 exactly when
                # p > 0.5 (1 - p is exact for p >= 0.5; ties go to the first column),
                # which is LabelBinarizer's threshold in predict.
                p = _output_activation(g, out_act, z)
                one = g.const(1.0, "one")
                q = g.op("Sub", [one, p], "p_neg")
                probs = g.op("Concat", [q, p], "probabilities", output="probabilities",
                             axis=1)
            else:
                probs = _output_activation(g, out_act, z, output="probabilities")
            idx = g.op("ArgMax", [probs], "label_index", axis=1, keepdims=0)
            if len(classes) == 1:
                # Trained on one class (as scikit-learn allows): predict_proba still has
                # two columns, and either column names the one class.
                classes = np.repeat(classes, 2)
            tensor, label_elem = _classes_tensor(g, TensorProto, classes)
            cls = g.tensor(tensor)
            g.op("Gather", [cls, idx], "label", output="label", axis=0)
            outputs = [
                helper.make_tensor_value_info("label", label_elem, [None]),
                helper.make_tensor_value_info("probabilities", elem, [None, len(classes)]),
            ]

    graph = helper.make_graph(
        g.nodes, name or type(estimator).__name__, inputs, outputs,
        initializer=g.initializers,
        doc_string=f"{type(estimator).__name__} exported by relumlp {__version__}",
    )
    opset_imports = [helper.make_opsetid("", opset)]
    model = helper.make_model(graph, opset_imports=opset_imports,
                              producer_name="relumlp", producer_version=__version__)
    # The oldest IR version that can hold this opset, for older runtimes' sake.
    model.ir_version = helper.find_min_ir_version_for(opset_imports)
    helper.set_model_props(model, {
        "estimator": type(estimator).__name__,
        "hidden_activations": ",".join(layout.activations),
        "out_activation": out_act,
    })
    return model

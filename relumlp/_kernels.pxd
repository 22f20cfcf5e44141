# Integer codes shared by the kernels and the Python registry in _activations.py.
# Hidden activations and output activations live in one enum so that the last layer's
# code can travel with the hidden ones in the layout array.
cpdef enum Activation:
    IDENTITY = 0
    LOGISTIC = 1
    TANH = 2
    RELU = 3
    LEAKY_RELU = 4     # layer parameter: negative slope
    PRELU = 5          # learned slope per unit, stored in the flat parameter buffer
    ELU = 6            # layer parameter: alpha
    SELU = 7
    GELU = 8
    SILU = 9
    SOFTPLUS = 10
    SOFTMAX = 64       # output layer only
    EXP = 65           # output layer only (Poisson)

cpdef enum Loss:
    SQUARED_ERROR = 0
    LOG_LOSS = 1           # softmax output, one-hot targets
    BINARY_LOG_LOSS = 2    # logistic output, binary or multilabel targets
    POISSON = 3            # exp output, half Poisson deviance

cpdef enum Solver:
    SGD = 0
    ADAM = 1


# Layer geometry of one network, read from the layout arrays built by _params.py.
cdef struct Net:
    Py_ssize_t n_layers            # number of weight layers L
    const Py_ssize_t* units        # L + 1 layer widths, units[0] = n_features
    const Py_ssize_t* w_off        # L offsets of W_l in the flat parameter buffer
    const Py_ssize_t* b_off        # L offsets of b_l
    const Py_ssize_t* s_off        # L offsets of PReLU slopes (-1: the layer has none)
    const Py_ssize_t* act          # L activation codes; act[L-1] is the output activation
    const Py_ssize_t* z_off        # L offsets of pre-activations Z_l in the activation workspace
    const Py_ssize_t* a_off        # L offsets of activations A_l (== z_off when f' needs only A)
    const Py_ssize_t* o_off        # L offsets of the layer outputs after dropout (== a_off without)
    const Py_ssize_t* d_off        # L offsets of deltas dZ_l in the delta workspace
    const double* act_param        # L activation parameters (leaky slope, elu alpha)
    const double* dropout          # L dropout rates (0 for none; always 0 for the output layer)
    Py_ssize_t n_coefs             # coefs come first in the flat buffer: [0, n_coefs)
    Py_ssize_t n_params
    Py_ssize_t t_off               # offset of a scratch (rows, max hidden width) in deltas

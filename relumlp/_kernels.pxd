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

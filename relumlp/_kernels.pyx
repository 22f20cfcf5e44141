# Kernels of relumlp: activations, losses, optimizer updates and the whole-epoch loop.
# Python drives them through typed objects (Network, Workspace, Input, Dataset,
# Optimizer, Objective, at the "kernel boundary" below) that own or check every buffer
# once; the nogil code reads C views of them (Net, Batch, Terms, Step) and raw pointers
# into C-contiguous buffers, and allocates nothing in a hot loop. The def wrappers at
# the bottom take memoryviews and release the GIL, so the tests call exactly the code
# that training runs. C that Cython cannot express lives in the .h files next to this
# one. Python validates user input; kernels trust their arguments.
from cython cimport floating
from cython.parallel cimport parallel, prange, threadid
from cpython.pyport cimport PY_SSIZE_T_MAX
from libc.math cimport INFINITY, M_PI, cos, frexp, ldexp, sqrt
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy, memset

cimport numpy as cnp
import numpy as np

from relumlp._blas cimport _gemm
from relumlp._tile cimport TILE, TILE_ROWS, tile_d, tile_level, tile_s
from relumlp._math cimport (
    VM_AVX512, VM_ELU, VM_GELU, VM_GELU_GRAD, VM_LOGISTIC, VM_SELU, VM_SILU, VM_SILU_GRAD,
    VM_SOFTPLUS, VM_SOFTPLUS_GRAD, VM_TANH, _count_nonpos, _fabs, _log, _sqrt, _vact,
    _vexp_shift, _vgrad, _vmath_best, _vmath_level, _vmath_name, _vmath_set, _vraw_d,
    _vraw_s,
)
from relumlp._openmp cimport (
    RELUMLP_OPENMP_ENABLED, _barrier, omp_get_max_threads, omp_get_num_threads,
    _seq_claim,
    _seq_done,
    _seq_init,
    _seq_wait,
    _thread_cpu,
    relumlp_seq,
)

cnp.import_array()

# ---------------------------------------------------------------------------------------
# Integer codes shared by the kernels and the Python registry in _activations.py (cpdef:
# Python sees them as IntEnums). Declared here, in the one module that uses them, so
# that an activation, a loss or a solver is added in one Cython file. Hidden and output
# activations share one enum: Network.act holds both.
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

# The thread policy's two numbers the kernels need, set by relumlp._threads (which owns
# every thread-policy decision and constant) when relumlp is imported; until then every
# loop runs on one thread. Elementwise loops over fewer elements than
# _min_parallel_size run on one thread; the row-split epoch's waiters spin
# _sequencer_spin times before they sleep.
cdef Py_ssize_t _min_parallel_size = PY_SSIZE_T_MAX
cdef int _sequencer_spin = 0


def set_thread_policy(*, Py_ssize_t min_parallel_size, int sequencer_spin):
    """Set the kernels' thread thresholds (called by relumlp._threads)."""
    global _min_parallel_size, _sequencer_spin
    if min_parallel_size < 1 or sequencer_spin < 0:
        raise ValueError("min_parallel_size must be >= 1 and sequencer_spin >= 0")
    _min_parallel_size = min_parallel_size
    _sequencer_spin = sequencer_spin


def thread_policy():
    """The kernels' current thresholds, as set by set_thread_policy."""
    return {"min_parallel_size": _min_parallel_size, "sequencer_spin": _sequencer_spin}


def openmp_enabled():
    """Return True if the extension was built with OpenMP."""
    return bool(RELUMLP_OPENMP_ENABLED)


def omp_max_threads():
    """Return omp_get_max_threads() (1 in a serial build)."""
    return omp_get_max_threads()


# Vector math (_vmath.h): levels by name, widest last; the best one is used from import.
VECTOR_MATH_LEVELS = tuple(_vmath_name(level).decode() for level in range(VM_AVX512 + 1))
_vmath_set(-1)


def vector_math():
    """The vector math the exp-based kernels use: "avx512", "avx2", "sse2" (libmvec at
    that ISA) or "scalar" (libm per element)."""
    return _vmath_name(_vmath_level()).decode()


def vector_math_available():
    """The levels this build and this CPU can use, narrowest first."""
    return VECTOR_MATH_LEVELS[:_vmath_best() + 1]


def set_vector_math(level=None):
    """Use ``level`` (a name from vector_math_available(); None: the widest) and return
    the level used before. Not thread-safe: call between fits, not during one."""
    previous = vector_math()
    if level is None:
        _vmath_set(-1)
        return previous
    if level not in vector_math_available():
        raise ValueError(f"vector math {level!r} is not available here; "
                         f"available: {vector_math_available()}")
    _vmath_set(VECTOR_MATH_LEVELS.index(level))
    return previous


VECTOR_FUNCTIONS = ("exp", "expm1", "erfc", "tanh", "log1p")


def vector_function(name, floating[::1] x, floating[::1] out):
    """out := name(x) elementwise (name in VECTOR_FUNCTIONS) with the vector math in
    use: the library functions as the kernels call them, for accuracy tests."""
    cdef int f = VECTOR_FUNCTIONS.index(name)
    if out.shape[0] != x.shape[0]:
        raise ValueError("x and out differ in length")
    with nogil:
        if floating is float:
            _vraw_s(f, &x[0], &out[0], x.shape[0])
        else:
            _vraw_d(f, &x[0], &out[0], x.shape[0])


# Fork safety. GNU OpenMP keeps the threads of a process's first multi-thread region in
# a pool, and a forked child inherits the pool's bookkeeping but not its threads: the
# child's next multi-thread region waits for them forever. So every region's thread
# count passes through _team, which records that this process ran a team
# (_team_started) and, in a child forked after that (_fork_serial, set by
# _after_fork_in_child through os.register_at_fork), runs the region on the calling
# thread alone: a one-thread region never touches the pool. Results do not depend on
# the thread count, so the child computes what its parent would.
cdef int _team_started = 0
cdef int _fork_serial = 0


cdef inline int _team(int n_threads) noexcept nogil:
    global _team_started
    if n_threads <= 1 or _fork_serial:
        return 1
    _team_started = 1
    return n_threads


def _after_fork_in_child():
    """In a child process just forked: run on one thread if the parent had a team."""
    global _fork_serial
    if _team_started:
        _fork_serial = 1


def fork_state():
    """``(team_started, fork_serial)``: whether this process (or its parents) ran a
    multi-thread OpenMP region, and whether it is a fork child kept on one thread."""
    return bool(_team_started), bool(_fork_serial)


cdef inline int _nt(Py_ssize_t size, int n_threads) noexcept nogil:
    return _team(n_threads) if size >= _min_parallel_size else 1


# ---------------------------------------------------------------------------------------
# Activations. The piecewise-linear ones are scalar pairs f(z, p) and f'(z, a, p) given
# z, a = f(z) and the layer parameter p (leaky slope, PReLU slope of the unit), which the
# compiler vectorises in the row loops below. The exp/erf/tanh/log1p-based ones are rows
# in C (_vmath.h), vectorised with libmvec at the CPU's widest ISA; their derivatives
# from a = f(z) stay here. An activation is a code in the Activation enum and one line
# in each of _activation_row and _gradient_row (docs/architecture.rst: the checklist).

cdef double SELU_ALPHA = 1.6732632423543772848170429916717
cdef double SELU_SCALE = 1.0507009873554804934193349852946

cdef inline floating _relu(floating z, floating p) noexcept nogil:
    return z if z > 0 else 0

cdef inline floating _relu_grad(floating z, floating a, floating p) noexcept nogil:
    return 1 if a > 0 else 0

cdef inline floating _leaky_relu(floating z, floating p) noexcept nogil:
    return z if z > 0 else p * z

cdef inline floating _leaky_relu_grad(floating z, floating a, floating p) noexcept nogil:
    # Used with z kept (PReLU) and with z aliasing a (leaky, slope >= 0): same sign.
    return 1 if z > 0 else p

cdef inline floating _logistic_grad(floating z, floating a, floating p) noexcept nogil:
    return a * (1 - a)

cdef inline floating _tanh_grad(floating z, floating a, floating p) noexcept nogil:
    return 1 - a * a

cdef inline floating _elu_grad(floating z, floating a, floating p) noexcept nogil:
    # From the output: a = p (e^z - 1) so f'(z) = p e^z = a + p.
    return 1 if a > 0 else a + p

cdef inline floating _selu_grad(floating z, floating a, floating p) noexcept nogil:
    return <floating> SELU_SCALE if a > 0 else a + <floating> (SELU_SCALE * SELU_ALPHA)


cdef inline void _activation_row(
        const floating* z, floating* a, Py_ssize_t m, Py_ssize_t act, floating p,
        const floating* slopes) noexcept nogil:
    """a := f(z) over one row; slopes (PReLU) gives a parameter per unit."""
    cdef Py_ssize_t j
    if act == IDENTITY:
        for j in range(m): a[j] = z[j]
    elif act == LOGISTIC:
        _vact(VM_LOGISTIC, z, a, m, p)
    elif act == TANH:
        _vact(VM_TANH, z, a, m, p)
    elif act == RELU:
        for j in range(m): a[j] = _relu(z[j], p)
    elif act == LEAKY_RELU:
        for j in range(m): a[j] = _leaky_relu(z[j], p)
    elif act == PRELU:
        for j in range(m): a[j] = _leaky_relu(z[j], slopes[j])
    elif act == ELU:
        _vact(VM_ELU, z, a, m, p)
    elif act == SELU:
        _vact(VM_SELU, z, a, m, p)
    elif act == GELU:
        _vact(VM_GELU, z, a, m, p)
    elif act == SILU:
        _vact(VM_SILU, z, a, m, p)
    elif act == SOFTPLUS:
        _vact(VM_SOFTPLUS, z, a, m, p)


cdef inline void _gradient_row(
        floating* d, const floating* g, const floating* z, const floating* a,
        Py_ssize_t m, Py_ssize_t act, floating p, const floating* slopes) noexcept nogil:
    """d := g * f'(z) over one row.

    With d distinct from g every store is unconditional, so the loop vectorises (in
    place, d[j] = d[j] * 1 would let the compiler drop stores and keep a branch).
    """
    cdef Py_ssize_t j
    if act == IDENTITY:
        for j in range(m): d[j] = g[j]
    elif act == LOGISTIC:
        for j in range(m): d[j] = g[j] * _logistic_grad(z[j], a[j], p)
    elif act == TANH:
        for j in range(m): d[j] = g[j] * _tanh_grad(z[j], a[j], p)
    elif act == RELU:
        for j in range(m): d[j] = g[j] * _relu_grad(z[j], a[j], p)
    elif act == LEAKY_RELU:
        for j in range(m): d[j] = g[j] * _leaky_relu_grad(z[j], a[j], p)
    elif act == PRELU:
        for j in range(m): d[j] = g[j] * _leaky_relu_grad(z[j], a[j], slopes[j])
    elif act == ELU:
        for j in range(m): d[j] = g[j] * _elu_grad(z[j], a[j], p)
    elif act == SELU:
        for j in range(m): d[j] = g[j] * _selu_grad(z[j], a[j], p)
    elif act == GELU:
        _vgrad(VM_GELU_GRAD, d, g, z, m)
    elif act == SILU:
        _vgrad(VM_SILU_GRAD, d, g, z, m)
    elif act == SOFTPLUS:
        _vgrad(VM_SOFTPLUS_GRAD, d, g, z, m)


cdef void _bias_activation_forward(
        floating* Z,               # IN/OUT: X @ W on entry, Z + b on exit
        const floating* b,         # IN: (m,)
        floating* A,               # OUT: f(Z + b); may alias Z when f' needs only A
        Py_ssize_t n, Py_ssize_t m, Py_ssize_t act, floating p,
        const floating* slopes,    # IN: (m,) PReLU slopes, or NULL
        int n_threads,
        long long* nonpos=NULL,    # IN/OUT: per-unit counts of z <= 0, one slot per thread
        Py_ssize_t slot_stride=0) noexcept nogil:
    """A := f(Z + b), row-major (n, m); nonpos[slot, j] += #{i : z_ij <= 0}.

    The count rides on the bias pass (no extra pass over Z); each thread adds to its
    own slot of ``slot_stride`` counters, and integer sums do not depend on the order.
    """
    cdef Py_ssize_t i, j
    cdef floating* z
    for i in prange(n, schedule="static", num_threads=_nt(n * m, n_threads)):
        z = Z + i * m
        if b != NULL:
            for j in range(m):
                z[j] = z[j] + b[j]
        if nonpos != NULL:
            _count_nonpos(z, nonpos + threadid() * slot_stride, m)
        _activation_row(z, A + i * m, m, act, p, slopes)


cdef void _activation_backward(
        floating* D,               # OUT: dL/dZ (may be dA itself: in place)
        const floating* dA,        # IN: dL/dA
        const floating* Z,         # IN: pre-activations (may alias A)
        const floating* A,         # IN: activations
        Py_ssize_t n, Py_ssize_t m, Py_ssize_t act, floating p,
        const floating* slopes,    # IN: (m,) PReLU slopes, or NULL
        floating* G_slopes,        # OUT (IN/OUT if accumulate): dL/dslopes, or NULL
        bint accumulate, int n_threads) noexcept nogil:
    """dZ := dA * f'(Z); for PReLU also G_slopes := sum_i dA * min(Z, 0)."""
    cdef Py_ssize_t i, j
    if act == PRELU and G_slopes != NULL:
        # Column sums in row order, before D is overwritten (deterministic, serial).
        if not accumulate:
            for j in range(m):
                G_slopes[j] = 0
        for i in range(n):
            for j in range(m):
                if Z[i * m + j] <= 0:
                    G_slopes[j] = G_slopes[j] + dA[i * m + j] * Z[i * m + j]
    if act == IDENTITY and D == dA:
        return
    for i in prange(n, schedule="static", num_threads=_nt(n * m, n_threads)):
        _gradient_row(D + i * m, dA + i * m, Z + i * m, A + i * m, m, act, p, slopes)


# ---------------------------------------------------------------------------------------
# Dropout: inverted, with masks from a counter-based hash of (seed, stream, element), so
# a mask depends only on where it is drawn, never on thread count or call order.

ctypedef unsigned long long u64

cdef inline u64 _mix(u64 x) noexcept nogil:
    # splitmix64 finaliser
    x = (x ^ (x >> 30)) * <u64> 0xbf58476d1ce4e5b9ULL
    x = (x ^ (x >> 27)) * <u64> 0x94d049bb133111ebULL
    return x ^ (x >> 31)

cdef inline double _uniform(u64 seed, u64 stream, u64 index) noexcept nogil:
    """A uniform draw in [0, 1) determined by (seed, stream, index)."""
    cdef u64 h = _mix(_mix(_mix(seed + <u64> 0x9e3779b97f4a7c15ULL) ^ stream) ^ index)
    return (h >> 11) * (1.0 / 9007199254740992.0)


cdef void _dropout(
        floating* D,               # IN/OUT: (n, m), scaled by mask / (1 - rate)
        const floating* A,         # IN: source (forward: A -> D; backward: D -> D)
        Py_ssize_t n, Py_ssize_t m, double rate, u64 seed, u64 stream,
        Py_ssize_t row0, int n_threads) noexcept nogil:
    """D := A * mask / (1 - rate) with mask_ij = [u(seed, stream, (row0+i)*m+j) >= rate]."""
    cdef Py_ssize_t i, j
    cdef floating scale = <floating> (1.0 / (1.0 - rate))
    for i in prange(n, schedule="static", num_threads=_nt(n * m, n_threads)):
        for j in range(m):
            if _uniform(seed, stream, <u64> ((row0 + i) * m + j)) >= rate:
                D[i * m + j] = A[i * m + j] * scale
            else:
                D[i * m + j] = 0


cdef void _layer_norm_forward(
        floating* Z,               # IN/OUT: X @ W on entry, gamma * zhat + beta on exit
        const floating* b,         # IN: (m,) intercepts
        const floating* gamma,     # IN: (m,) scales
        const floating* beta,      # IN: (m,) offsets
        floating* Zhat,            # OUT: (n, m) normalised values
        floating* rstd,            # OUT: (n,) 1 / sqrt(var + eps) per row
        Py_ssize_t n, Py_ssize_t m, double eps, int n_threads) noexcept nogil:
    """Layer normalization of (Z + b), row by row: each row's mean and (biased) variance,
    summed in double in unit order (the same bits whatever the thread count)."""
    cdef Py_ssize_t i, j
    cdef double mu, var, d
    cdef floating r
    cdef floating* z
    cdef floating* q
    for i in prange(n, schedule="static", num_threads=_nt(n * m, n_threads)):
        z = Z + i * m
        q = Zhat + i * m
        mu = 0
        for j in range(m):
            z[j] = z[j] + b[j]
            mu = mu + z[j]
        mu = mu / m
        var = 0
        for j in range(m):
            d = z[j] - mu
            var = var + d * d
        r = <floating> (1.0 / sqrt(var / m + eps))
        rstd[i] = r
        for j in range(m):
            q[j] = (z[j] - <floating> mu) * r
            z[j] = gamma[j] * q[j] + beta[j]


cdef void _layer_norm_backward(
        floating* D,               # IN/OUT: dL/dY on entry, dL/dZ (pre-normalization) on exit
        const floating* Zhat,      # IN: (n, m) from the forward pass
        const floating* rstd,      # IN: (n,)
        const floating* gamma,     # IN: (m,)
        floating* G,               # OUT (IN/OUT if accumulate): dL/dgamma, then dL/dbeta
        Py_ssize_t n, Py_ssize_t m, bint accumulate, int n_threads) noexcept nogil:
    """dZ = rstd * (g - mean(g) - zhat * mean(g * zhat)) per row with g = gamma * dY;
    G[j] += sum_i dY_ij zhat_ij and G[m + j] += sum_i dY_ij (rows in order: serial)."""
    cdef Py_ssize_t i, j
    cdef double s1, s2
    cdef floating a1, a2, g
    cdef floating* d
    cdef const floating* q
    if not accumulate:
        for j in range(2 * m):
            G[j] = 0
    for i in range(n):
        d = D + i * m
        q = Zhat + i * m
        for j in range(m):
            G[j] = G[j] + d[j] * q[j]
            G[m + j] = G[m + j] + d[j]
    for i in prange(n, schedule="static", num_threads=_nt(n * m, n_threads)):
        d = D + i * m
        q = Zhat + i * m
        s1 = 0
        s2 = 0
        for j in range(m):
            g = gamma[j] * d[j]
            s1 = s1 + g
            s2 = s2 + g * q[j]
        a1 = <floating> (s1 / m)
        a2 = <floating> (s2 / m)
        for j in range(m):
            d[j] = rstd[i] * (gamma[j] * d[j] - a1 - q[j] * a2)


cdef void _batch_norm_forward(
        floating* Z,               # IN/OUT: X @ W on entry, gamma * zhat + beta on exit
        const floating* b,         # IN: (m,) intercepts
        const floating* nparams,   # IN: (4m,) scales, offsets, running means, running vars
        floating* Zhat,            # OUT (training): (n, m) normalised values
        floating* stats,           # OUT (training): (3m + 1,) batch means, variances,
                                   # 1 / std, then the summed weight
        const floating* sw,        # IN (training): (n,) sample weights, or NULL (all 1)
        Py_ssize_t n, Py_ssize_t m, double eps, bint training,
        int n_threads) noexcept nogil:
    """Batch normalization of (Z + b) by unit: in training with the batch's mean and
    biased variance weighted by the sample weights (as the loss is: a row of weight 2
    counts as that row twice; sums in double, rows in order: no dependence on threads),
    in prediction with the running ones."""
    cdef const floating* gamma = nparams
    cdef const floating* beta = nparams + m
    cdef Py_ssize_t i, j
    cdef floating* z
    cdef double* part
    if training:  # the whole batch as one part of the row-split epoch's kernels
        part = <double*> malloc((2 * m + 1) * sizeof(double))
        _bn_part_stats(Z, b, sw, n, m, part)
        _bn_combine_stats(part, 1, 2 * m + 1, m, eps, stats)
        free(part)
        _bn_normalize(Z, Zhat, stats, nparams, n, m, n_threads)
        return
    for i in prange(n, schedule="static", num_threads=_nt(n * m, n_threads)):
        z = Z + i * m
        for j in range(m):
            z[j] = gamma[j] * ((z[j] + b[j] - nparams[2 * m + j])
                               / <floating> sqrt(nparams[3 * m + j] + eps)) + beta[j]


cdef void _batch_norm_backward(
        floating* D,               # IN/OUT: dL/dY on entry, dL/dZ on exit
        const floating* Zhat,      # IN: (n, m)
        const floating* stats,     # IN: (3m,) from the forward pass
        const floating* gamma,     # IN: (m,)
        floating* G,               # OUT (IN/OUT if accumulate): dgamma, dbeta, then 2m zeros
        const floating* sw,        # IN: (n,) sample weights, or NULL (all 1)
        Py_ssize_t n, Py_ssize_t m, bint accumulate, int n_threads) noexcept nogil:
    """dZ_i = rstd (g_i - w_i / W (sum_k g_k + zhat_i sum_k g_k zhat_k)) by unit with
    g = gamma dY and W the summed weight (w_i / W = 1 / n unweighted); the running
    statistics get a zero gradient (the optimizer leaves them alone)."""
    cdef double* part = <double*> malloc(2 * m * sizeof(double))
    _bn_part_sums(D, Zhat, gamma, G, n, m, part, accumulate)
    _bn_finish(D, Zhat, stats, gamma, sw, part, 1, 2 * m, n, m, n_threads)
    free(part)


cdef void _update_running(const Net* net, floating* params, const floating* acts,
                          double momentum) noexcept nogil:
    """After a training step: running mean and variance of every batch-norm layer move
    toward the batch's (PyTorch's convention: the unbiased variance, from the summed
    weight the statistics carry)."""
    cdef Py_ssize_t l, j, m
    cdef floating* rm
    cdef floating* rv
    cdef const floating* st
    cdef double unbias, total
    for l in range(net.n_layers - 1):
        if net.n_off[l] < 0 or net.norm_kind[l] != 2:
            continue
        m = net.units[l + 1]
        rm = params + net.n_off[l] + 2 * m
        rv = rm + m
        st = acts + net.v_off[l]
        total = st[3 * m]  # the summed weight: W / (W - 1) unbiases (n / (n - 1) unweighted)
        unbias = total / (total - 1) if total > 1 else 1.0
        for j in range(m):
            rm[j] = <floating> ((1 - momentum) * rm[j] + momentum * st[j])
            rv[j] = <floating> ((1 - momentum) * rv[j] + momentum * st[m + j] * unbias)


# Batch norm in the row-split epoch: each part sums its own rows, the parts' sums are
# combined in part order (so the statistics do not depend on which thread ran a part),
# then each part normalizes (forward) or finishes dZ (backward) for its rows.

cdef void _bn_part_stats(floating* Z, const floating* b, const floating* sw,
                         Py_ssize_t n, Py_ssize_t m, double* part) noexcept nogil:
    """Z := Z + b for the part's rows; part := [W_p, mean_p (m), M2_p (m)]."""
    cdef Py_ssize_t i, j
    cdef double w, total = 0, d
    cdef floating* z
    for j in range(2 * m + 1):
        part[j] = 0
    for i in range(n):
        w = sw[i] if sw != NULL else 1.0
        total += w
        z = Z + i * m
        for j in range(m):
            z[j] = z[j] + b[j]
            part[1 + j] += w * z[j]
    part[0] = total
    if total > 0:
        for j in range(m):
            part[1 + j] /= total
    for i in range(n):
        w = sw[i] if sw != NULL else 1.0
        z = Z + i * m
        for j in range(m):
            d = z[j] - part[1 + j]
            part[1 + m + j] += w * d * d


cdef void _bn_combine_stats(const double* parts, Py_ssize_t n_parts, Py_ssize_t stride,
                            Py_ssize_t m, double eps, floating* stats) noexcept nogil:
    """stats := [mean (m), biased var (m), 1 / std (m), W] of all parts, combined in part
    order (Chan et al.'s pairwise update)."""
    cdef Py_ssize_t p, j
    cdef double* mean = <double*> calloc(2 * m, sizeof(double))
    cdef double* m2 = mean + m
    cdef double total = 0, w, delta, new_total
    cdef const double* part
    for p in range(n_parts):
        part = parts + p * stride
        w = part[0]
        if w <= 0:
            continue
        new_total = total + w
        for j in range(m):
            delta = part[1 + j] - mean[j]
            mean[j] += delta * (w / new_total)
            m2[j] += part[1 + m + j] + delta * delta * (total * w / new_total)
        total = new_total
    for j in range(m):
        stats[j] = <floating> mean[j]
        stats[m + j] = <floating> (m2[j] / total)
        stats[2 * m + j] = <floating> (1.0 / sqrt(m2[j] / total + eps))
    stats[3 * m] = <floating> total
    free(mean)


cdef void _bn_normalize(floating* Z, floating* Zhat, const floating* stats,
                        const floating* nparams, Py_ssize_t n, Py_ssize_t m,
                        int n_threads) noexcept nogil:
    """zhat = (z - mean) / std, z := gamma zhat + beta for the part's rows."""
    cdef Py_ssize_t i, j
    cdef floating* z
    cdef floating* q
    for i in prange(n, schedule="static", num_threads=_nt(n * m, n_threads)):
        z = Z + i * m
        q = Zhat + i * m
        for j in range(m):
            q[j] = (z[j] - stats[j]) * stats[2 * m + j]
            z[j] = nparams[j] * q[j] + nparams[m + j]


cdef void _bn_part_sums(const floating* D, const floating* Zhat, const floating* gamma,
                        floating* G, Py_ssize_t n, Py_ssize_t m, double* part,
                        bint accumulate=False) noexcept nogil:
    """For the part's rows (D = dY): G := [dgamma, dbeta, 0 (running statistics)] of its
    rows (G += with accumulate), part := [sum g, sum g zhat] with g = gamma dY."""
    cdef Py_ssize_t i, j
    cdef const floating* d
    cdef const floating* q
    if not accumulate:
        for j in range(4 * m):
            G[j] = 0
    for j in range(2 * m):
        part[j] = 0
    for i in range(n):
        d = D + i * m
        q = Zhat + i * m
        for j in range(m):
            G[j] = G[j] + d[j] * q[j]
            G[m + j] = G[m + j] + d[j]
            part[j] += gamma[j] * d[j]
            part[m + j] += gamma[j] * d[j] * q[j]


cdef void _bn_finish(floating* D, const floating* Zhat, const floating* stats,
                     const floating* gamma, const floating* sw, const double* parts,
                     Py_ssize_t n_parts, Py_ssize_t stride, Py_ssize_t n,
                     Py_ssize_t m, int n_threads) noexcept nogil:
    """dZ of the part's rows from the parts' sums (added in part order)."""
    cdef Py_ssize_t i, j, p
    cdef double* acc = <double*> calloc(2 * m, sizeof(double))
    cdef floating* d
    cdef const floating* q
    cdef floating share
    for p in range(n_parts):
        for j in range(2 * m):
            acc[j] += parts[p * stride + j]
    for i in prange(n, schedule="static", num_threads=_nt(n * m, n_threads)):
        d = D + i * m
        q = Zhat + i * m
        share = (sw[i] if sw != NULL else 1) / stats[3 * m]
        for j in range(m):
            d[j] = stats[2 * m + j] * (gamma[j] * d[j] - share * (<floating> acc[j]
                                       + q[j] * <floating> acc[m + j]))
    free(acc)


cdef void _bias_output_forward(
        floating* Z,               # IN/OUT: X @ W on entry, output activation on exit
        const floating* b,         # IN: (m,)
        Py_ssize_t n, Py_ssize_t m, Py_ssize_t act, int n_threads) noexcept nogil:
    """Z := out(Z + b) for out in identity, logistic, exp, softmax (row-wise)."""
    cdef Py_ssize_t i, j
    cdef floating zmax, s
    cdef floating* row
    cdef int nt = _nt(n * m, n_threads)
    if act == SOFTMAX:
        for i in prange(n, schedule="static", num_threads=nt):
            row = Z + i * m
            zmax = -INFINITY
            for j in range(m):
                row[j] = row[j] + b[j]
                if row[j] > zmax:
                    zmax = row[j]
            _vexp_shift(row, m, -zmax)
            s = 0
            for j in range(m):
                s = s + row[j]
            for j in range(m):
                row[j] = row[j] / s
    elif act == EXP:
        for i in prange(n, schedule="static", num_threads=nt):
            row = Z + i * m
            for j in range(m):
                row[j] = row[j] + b[j]
            _vexp_shift(row, m, 0)
    else:
        _bias_activation_forward(Z, b, Z, n, m, act, 0, NULL, n_threads)


# ---------------------------------------------------------------------------------------
# Losses. The row loss is summed over outputs, weighted by the sample weight and added
# in row order (deterministic); _data_loss normalises as scikit-learn does.

cdef double _loss_sum(
        const floating* P,         # IN: (n, m) output activations
        const floating* Y,         # IN: (n, m) targets
        const floating* sw,        # IN: (n,) sample weights
        Py_ssize_t n, Py_ssize_t m, Py_ssize_t loss, double eps,
        double* rows=NULL) noexcept nogil:
    """sum_i sw_i * sum_k l(y_ik, p_ik), accumulated in double (rows[i] gets each term)."""
    cdef Py_ssize_t i, j
    cdef double total = 0, row, p, y, d
    for i in range(n):
        row = 0
        for j in range(m):
            p = P[i * m + j]
            y = Y[i * m + j]
            if loss == SQUARED_ERROR:
                d = y - p
                row += d * d
            elif loss == POISSON:
                row += p - y
                if y != 0:
                    # log y - log p, not log(y / p): the ratio over- or underflows for
                    # a subnormal p (exp output below -708) or a huge p.
                    row += y * (_log(y) - _log(p))
            else:
                # Clip like scikit-learn so that log never sees 0 or 1.
                p = min(max(p, eps), 1 - eps)
                if y != 0:
                    row -= y * _log(p)
                if loss == BINARY_LOG_LOSS and y != 1:
                    row -= (1 - y) * _log(1 - p)
        total += sw[i] * row
        if rows != NULL:
            rows[i] = sw[i] * row
    return total


cdef inline double _data_loss(double raw, double sw_sum, Py_ssize_t n_outputs,
                              Py_ssize_t loss) noexcept nogil:
    """Normalise _loss_sum by the summed sample weight; squared error is halved.

    Squared error is summed over outputs, like every other loss, so that (P - Y) is its
    exact gradient. scikit-learn averages this loss over outputs but back-propagates
    the sum (scikit-learn issue #8349); single-output losses are identical.
    """
    if loss == SQUARED_ERROR:
        return 0.5 * raw / sw_sum
    return raw / sw_sum


cdef double _sum_squares(const floating* W, Py_ssize_t size) noexcept nogil:
    cdef Py_ssize_t k
    cdef double s = 0
    for k in range(size):
        s += <double> W[k] * W[k]
    return s


cdef void _output_delta(
        const floating* P, const floating* Y, const floating* sw,  # IN
        floating* D,                                             # OUT: (n, m)
        Py_ssize_t n, Py_ssize_t m, int n_threads) noexcept nogil:
    """D := (P - Y) * sw[:, None], the gradient of every canonical loss-link pair."""
    cdef Py_ssize_t i, j
    cdef int nt = _nt(n * m, n_threads)
    for i in prange(n, schedule="static", num_threads=nt):
        for j in range(m):
            D[i * m + j] = (P[i * m + j] - Y[i * m + j]) * sw[i]


# ---------------------------------------------------------------------------------------
# Sparse first layer (CSR, int32 indices) and batch reductions.

cdef void _csr_matmul(
        const floating* data, const int* indices, const int* indptr,   # IN: CSR X
        const Py_ssize_t* rows, Py_ssize_t row0,   # IN: batch row i is rows[i] or row0 + i
        const floating* W,                         # IN: (n_features, m)
        floating* Z,                               # OUT: (n, m)
        Py_ssize_t n, Py_ssize_t m, int n_threads) noexcept nogil:
    """Z := X[rows] @ W without densifying X."""
    cdef Py_ssize_t i, j, p, r
    cdef floating v
    cdef const floating* w
    cdef int nt = _nt(n * m, n_threads)
    for i in prange(n, schedule="static", num_threads=nt):
        r = rows[i] if rows != NULL else row0 + i
        for j in range(m):
            Z[i * m + j] = 0
        for p in range(indptr[r], indptr[r + 1]):
            v = data[p]
            w = W + <Py_ssize_t> indices[p] * m
            for j in range(m):
                Z[i * m + j] = Z[i * m + j] + v * w[j]


cdef void _csr_t_matmul(
        const floating* data, const int* indices, const int* indptr,   # IN: CSR X
        const Py_ssize_t* rows, Py_ssize_t row0,
        const floating* D,                         # IN: (n, m)
        floating* G,                               # IN/OUT: (n_features, m)
        Py_ssize_t n, Py_ssize_t m, Py_ssize_t n_features, bint accumulate,
        int n_threads) noexcept nogil:
    """G := X[rows].T @ D (+ G if accumulate).

    Threads own disjoint column blocks and walk the rows in order, so every entry is
    summed in the same order whatever the thread count.
    """
    cdef Py_ssize_t i, j, p, r, blk, j0, j1, n_blocks, width
    cdef floating v
    cdef floating* g
    cdef int nt = _nt(n * m * 8, n_threads)
    if not accumulate:
        memset(G, 0, n_features * m * sizeof(floating))
    n_blocks = nt if nt < m else m
    width = (m + n_blocks - 1) // n_blocks
    for blk in prange(n_blocks, schedule="static", num_threads=nt):
        j0 = blk * width
        j1 = min(m, j0 + width)
        for i in range(n):
            r = rows[i] if rows != NULL else row0 + i
            for p in range(indptr[r], indptr[r + 1]):
                v = data[p]
                g = G + <Py_ssize_t> indices[p] * m
                for j in range(j0, j1):
                    g[j] = g[j] + v * D[i * m + j]


cdef void _column_sum(
        const floating* D,         # IN: (n, m), row stride ld
        floating* out,             # IN/OUT: (m,)
        Py_ssize_t n, Py_ssize_t m, bint accumulate, Py_ssize_t ld=-1) noexcept nogil:
    """out := D.sum(axis=0) (+ out if accumulate), rows added in order."""
    cdef Py_ssize_t i, j
    if ld < 0:
        ld = m
    if not accumulate:
        for j in range(m):
            out[j] = 0
    for i in range(n):
        for j in range(m):
            out[j] = out[j] + D[i * ld + j]


cdef void _finalize_gradient(
        floating* G,               # IN/OUT: raw sums on entry, mean gradient on exit
        const floating* params,    # IN
        Py_ssize_t n_coefs, Py_ssize_t n_params,
        floating alpha, floating l1, floating sw_sum, int n_threads) noexcept nogil:
    """G := (G + alpha W + l1 sign(W)) / sw_sum on weights, G / sw_sum elsewhere."""
    cdef Py_ssize_t k
    cdef floating w
    cdef int nt = _nt(n_params, n_threads)
    if l1 == 0:
        for k in prange(n_coefs, schedule="static", num_threads=nt):
            G[k] = (G[k] + alpha * params[k]) / sw_sum
    else:
        for k in prange(n_coefs, schedule="static", num_threads=nt):
            w = params[k]
            G[k] = (G[k] + alpha * w + (l1 if w > 0 else (-l1 if w < 0 else 0))) / sw_sum
    for k in range(n_coefs, n_params):
        G[k] = G[k] / sw_sum


cdef double _clip_by_norm(floating* G, Py_ssize_t size, double max_norm) noexcept nogil:
    """G := G * min(1, max_norm / ||G||); returns ||G|| before clipping.

    The squares are summed as is while they neither overflow nor underflow, else
    relative to max |g|; the scale is applied in double (a float32 scale factor would
    be subnormal for ||G|| / max_norm > 1e38)."""
    cdef Py_ssize_t k
    cdef double biggest = 0, a, s = 0, norm, scale
    for k in range(size):
        a = G[k] if G[k] >= 0 else -G[k]
        if a > biggest:
            biggest = a
    if biggest == 0 or biggest != biggest:
        return biggest
    if 1e-140 < biggest < 1e140:
        norm = _sqrt(_sum_squares(G, size))
    else:
        for k in range(size):
            a = G[k] / biggest
            s += a * a
        norm = biggest * _sqrt(s)
    if norm > max_norm:
        scale = max_norm / norm
        for k in range(size):
            G[k] = <floating> (G[k] * scale)
    return norm


cdef double _sum_abs(const floating* W, Py_ssize_t size) noexcept nogil:
    cdef Py_ssize_t k
    cdef double s = 0
    for k in range(size):
        s += W[k] if W[k] >= 0 else -W[k]
    return s


# ---------------------------------------------------------------------------------------
# The fused minibatch step: finalise the gradient, update parameters and optimizer state,
# and measure the penalty of the new weights (the next batch's loss needs it), in one
# pass over the flat buffer instead of four. Same arithmetic, in the same order, as the
# separate kernels above.

cdef enum:
    # Fixed chunks: the reduction order does not depend on the thread count. 1024: a
    # chunk's passes over W, G and the two moments (16 KB in float32, 32 KB in float64)
    # stay in L1 (RESULTS.md, "Optimizer chunks of 1024 parameters").
    _STEP_CHUNK = 1024


cdef struct Step:
    int solver
    double alpha, l1, sw_sum          # finalisation (skipped when finalize is False)
    bint finalize
    double lr, momentum               # sgd
    bint nesterov
    double lr_t, beta_1, beta_2, epsilon   # adam (lr_t: bias-corrected rate)
    double decay                      # weights *= decay before the update (1 - lr wd)
    double weight_decay               # decoupled weight decay (0: none)
    bint cosine                       # lr per step: warm-up, then cosine decay to 0
    double lr_init
    long long warmup_steps, total_steps


cdef inline double _cosine_lr(double lr_init, long long step, long long warmup,
                              long long total) noexcept nogil:
    """The learning rate of 0-based step ``step``: linear warm-up over ``warmup`` steps
    (lr_init (step + 1) / warmup), then lr_init (1 + cos(pi p)) / 2 with p going from 0
    to 1 over the remaining steps (and staying at 1, rate 0, after ``total``)."""
    cdef double p
    if step < warmup:
        return lr_init * (step + 1) / warmup
    if total <= warmup:
        return 0.0
    p = min(<double> (step - warmup) / (total - warmup), 1.0)
    return 0.5 * lr_init * (1 + cos(M_PI * p))


cdef inline void _advance(Step* st, long long step) noexcept nogil:
    """The per-step scalars of 0-based step ``step``: the scheduled rate, Adam's
    bias-corrected one and the weight-decay factor."""
    if st.cosine:
        st.lr = _cosine_lr(st.lr_init, step, st.warmup_steps, st.total_steps)
    if st.solver == ADAM:
        st.lr_t = _adam_rate(st.lr, st.beta_1, st.beta_2, step + 1)
    st.decay = 1 - st.lr * st.weight_decay


cdef inline floating _pow2_reciprocal(floating x) noexcept nogil:
    """1 / x if x is a power of two in [1, 2**60] (so that 1 / x is exact), else 0."""
    cdef int e
    if not (1 <= x <= 1152921504606846976.0):
        return 0
    if frexp(<double> x, &e) != 0.5:
        return 0
    return <floating> ldexp(1.0, 1 - e)


cdef inline void _step_range(
        floating* W, floating* G, floating* S1, floating* S2,
        Py_ssize_t lo, Py_ssize_t hi, bint is_coef, const Step* st,
        double* sq, double* ab) noexcept nogil:
    """Step parameters [lo, hi); for weights, sq / ab get their new squares / |w|."""
    cdef Py_ssize_t k
    cdef floating g, w, v, m, alpha = <floating> st.alpha, l1 = <floating> st.l1
    cdef floating sw_sum = <floating> st.sw_sum, lr = <floating> st.lr
    cdef floating mom = <floating> st.momentum, lr_t = <floating> st.lr_t
    cdef floating b1 = <floating> st.beta_1, b2 = <floating> st.beta_2
    cdef floating omb1 = <floating> (1 - st.beta_1), omb2 = <floating> (1 - st.beta_2)
    cdef floating eps = <floating> st.epsilon
    # Decoupled weight decay scales the weights before the update (PyTorch's AdamW).
    cdef floating decay = <floating> st.decay
    cdef bint decayed = is_coef and st.weight_decay != 0
    # Locals, not st fields, so the compiler can hoist the branches and vectorise.
    cdef bint finalize = st.finalize, adam = st.solver == ADAM, nesterov = st.nesterov
    cdef bint use_l1 = l1 != 0
    # Dividing by a power of two and multiplying by its reciprocal round the same exact
    # quotient: bit-identical, and a multiply instead of a division (the step is bound
    # by division throughput) for batches of 32, 64, 256, ... unit-weight rows.
    cdef floating inv = _pow2_reciprocal(sw_sum)
    if finalize and inv != 0:
        if is_coef and use_l1:
            for k in range(lo, hi):
                w = W[k]
                G[k] = (G[k] + alpha * w + (l1 if w > 0 else (-l1 if w < 0 else 0))) * inv
        elif is_coef:
            for k in range(lo, hi):
                G[k] = (G[k] + alpha * W[k]) * inv
        else:
            for k in range(lo, hi):
                G[k] = G[k] * inv
    elif finalize:
        if is_coef and use_l1:
            for k in range(lo, hi):
                w = W[k]
                G[k] = (G[k] + alpha * w + (l1 if w > 0 else (-l1 if w < 0 else 0))) / sw_sum
        elif is_coef:
            for k in range(lo, hi):
                G[k] = (G[k] + alpha * W[k]) / sw_sum
        else:
            for k in range(lo, hi):
                G[k] = G[k] / sw_sum
    if decayed:
        for k in range(lo, hi):
            W[k] = W[k] * decay
    if adam:
        for k in range(lo, hi):
            g = G[k]
            m = b1 * S1[k] + omb1 * g
            v = b2 * S2[k] + omb2 * (g * g)
            S1[k] = m
            S2[k] = v
            W[k] = W[k] + (-lr_t) * m / (_sqrt(v) + eps)
    elif nesterov:
        for k in range(lo, hi):
            g = G[k]
            v = mom * S1[k] - lr * g
            S1[k] = v
            W[k] = W[k] + (mom * v - lr * g)
    else:
        for k in range(lo, hi):
            v = mom * S1[k] - lr * G[k]
            S1[k] = v
            W[k] = W[k] + v
    if not is_coef:
        return
    sq[0] = _sum4(W, lo, hi, False)
    ab[0] = _sum4(W, lo, hi, True) if use_l1 else 0


cdef inline double _sum4(const floating* W, Py_ssize_t lo, Py_ssize_t hi,
                         bint absolute) noexcept nogil:
    """sum W[k]^2 (or |W[k]|) over [lo, hi) with four accumulators in a fixed order."""
    cdef double s0 = 0, s1 = 0, s2 = 0, s3 = 0
    cdef Py_ssize_t k = lo
    if absolute:
        while k + 4 <= hi:
            s0 += _fabs(W[k])
            s1 += _fabs(W[k + 1])
            s2 += _fabs(W[k + 2])
            s3 += _fabs(W[k + 3])
            k += 4
        while k < hi:
            s0 += _fabs(W[k])
            k += 1
    else:
        while k + 4 <= hi:
            s0 += <double> W[k] * W[k]
            s1 += <double> W[k + 1] * W[k + 1]
            s2 += <double> W[k + 2] * W[k + 2]
            s3 += <double> W[k + 3] * W[k + 3]
            k += 4
        while k < hi:
            s0 += <double> W[k] * W[k]
            k += 1
    return (s0 + s1) + (s2 + s3)


cdef double _fused_step(
        floating* W,               # IN/OUT: flat parameters
        floating* G,               # IN/OUT: raw sums (or final gradient if not finalize)
        floating* S1, floating* S2,  # IN/OUT: optimizer state
        Py_ssize_t n_coefs, Py_ssize_t n_params, const Step* st,
        double* partials,          # scratch: 2 * (n_params // _STEP_CHUNK + 1)
        double alpha, double l1, int n_threads) noexcept nogil:
    """One optimizer step; returns 0.5 alpha ||W||^2 + l1 |W|_1 of the updated weights."""
    cdef Py_ssize_t c, n_chunks = (n_params + _STEP_CHUNK - 1) // _STEP_CHUNK
    for c in prange(n_chunks, schedule="static", num_threads=_nt(n_params, n_threads)):
        _step_chunks(W, G, S1, S2, n_coefs, n_params, st, partials, c, c + 1)
    return _sum_partials(partials, n_chunks, alpha, l1)


cdef inline double _sum_partials(const double* partials, Py_ssize_t n_chunks,
                                 double alpha, double l1) noexcept nogil:
    cdef Py_ssize_t c
    cdef double penalty = 0
    for c in range(n_chunks):
        penalty += 0.5 * alpha * partials[2 * c] + l1 * partials[2 * c + 1]
    return penalty


cdef inline void _step_chunks(
        floating* W, floating* G, floating* S1, floating* S2, Py_ssize_t n_coefs,
        Py_ssize_t n_params, const Step* st, double* partials, Py_ssize_t c_lo,
        Py_ssize_t c_hi) noexcept nogil:
    """_step_range over the fixed chunks [c_lo, c_hi), penalty partials per chunk."""
    cdef Py_ssize_t c, lo, hi
    cdef double sq = 0, ab = 0
    for c in range(c_lo, c_hi):
        lo = c * _STEP_CHUNK
        hi = min(lo + _STEP_CHUNK, n_params)
        partials[2 * c] = 0
        partials[2 * c + 1] = 0
        if lo < n_coefs:
            _step_range(W, G, S1, S2, lo, min(hi, n_coefs), True, st,
                        &partials[2 * c], &partials[2 * c + 1])
        if hi > n_coefs:
            _step_range(W, G, S1, S2, max(lo, n_coefs), hi, False, st, &sq, &ab)


# ---------------------------------------------------------------------------------------
# Whole-network passes. They read the network through Net, a C view that a Workspace
# builds once from the typed fields of its Network and its own buffer offsets.

cdef struct Net:
    # The C view of a Network and a Workspace that the passes read.
    Py_ssize_t n_layers            # number of weight layers L
    const Py_ssize_t* units        # L + 1 layer widths, units[0] = n_features
    const Py_ssize_t* w_off        # L offsets of W_l in the flat parameter buffer
    const Py_ssize_t* b_off        # L offsets of b_l
    const Py_ssize_t* s_off        # L offsets of PReLU slopes (-1: the layer has none)
    const Py_ssize_t* act          # L activation codes; act[L-1] is the output activation
    const double* act_param        # L activation parameters (leaky slope, elu alpha)
    const double* dropout          # L dropout rates (0 for none, and when predicting)
    const Py_ssize_t* n_off        # L offsets of layer-norm scales, offsets after (-1: none)
    const double* norm_eps         # L normalization epsilons
    const Py_ssize_t* norm_kind    # L normalization kinds: 0 none, 1 layer, 2 batch
    double norm_momentum           # running statistics' momentum (batch norm)
    bint training                  # batch norm: batch statistics (else running ones)
    const Py_ssize_t* q_off        # L offsets of the normalised values zhat in acts
    const Py_ssize_t* v_off        # L offsets of the per-row 1 / std in acts
    Py_ssize_t n_coefs             # coefs come first in the flat buffer: [0, n_coefs)
    Py_ssize_t n_params
    Py_ssize_t max_hidden          # widest hidden layer
    # Workspace offsets, for `rows` rows:
    const Py_ssize_t* z_off        # L offsets of pre-activations Z_l in acts
    const Py_ssize_t* a_off        # L offsets of activations A_l (== z_off when f' needs only A)
    const Py_ssize_t* o_off        # L offsets of the layer outputs after dropout (== a_off without)
    const Py_ssize_t* d_off        # L offsets of deltas dZ_l in deltas
    Py_ssize_t t_off               # offset of a scratch (rows, max_hidden) block in deltas


cdef struct Batch:
    # One minibatch of the first-layer input: dense rows, or CSR rows by index.
    Py_ssize_t n
    const void* X              # dense: (n, n_features) C-contiguous, or NULL when sparse
    const void* data           # sparse CSR arrays of the whole X
    const int* indices
    const int* indptr
    const Py_ssize_t* rows     # sparse: row i of the batch is rows[i] (or row0 + i if NULL)
    Py_ssize_t row0
    u64 stream                 # dropout stream of this batch (layer l uses stream * L + l)
    Py_ssize_t mask_row0       # dropout row offset (global row in chunked passes)
    Py_ssize_t row_off         # this call handles rows [row_off, row_off + n) of the batch
    long long* counts          # per-unit counts of z <= 0 of the hidden layers, or NULL
    Py_ssize_t counts_stride   # counters per thread slot (total hidden units)
    int* nonfinite             # set to 1 if the first layer's product has NaN/inf, or NULL
    const void* sw             # training: the rows' sample weights (batch norm), or NULL


cdef struct Terms:
    # What the objective adds up, as the passes read it (from an Objective).
    Py_ssize_t loss
    double alpha               # L2 strength
    double l1                  # L1 strength (subgradient)
    double clip_eps            # log-loss probability clipping
    u64 seed                   # dropout seed
    int n_threads


cdef bint _all_finite(const floating* Z, Py_ssize_t size) noexcept nogil:
    """Whether every entry is finite: z * 0 is 0 for finite z and NaN otherwise."""
    cdef Py_ssize_t k = 0
    cdef floating s0 = 0, s1 = 0, s2 = 0, s3 = 0
    while k + 4 <= size:
        s0 += Z[k] * 0
        s1 += Z[k + 1] * 0
        s2 += Z[k + 2] * 0
        s3 += Z[k + 3] * 0
        k += 4
    while k < size:
        s0 += Z[k] * 0
        k += 1
    return (s0 + s1) + (s2 + s3) == 0


cdef Py_ssize_t _forward(
        const Net* net, const Batch* batch,
        const floating* params,    # IN: flat parameters
        floating* acts,            # OUT: Z_l / A_l / dropped outputs of the hidden layers
        floating* out,             # OUT: (n, n_outputs) output activations
        u64 seed, int n_threads,
        Py_ssize_t l_first=0,      # row-split batch norm: resume at this layer, whose
        const floating* resume=NULL,  # Z + b is computed: normalize it with these stats
        double* part=NULL) noexcept nogil:  # if given, stop at the next batch-norm layer
    """Forward pass of rows [row_off, row_off + n) of a batch through every layer; returns
    L, or (with ``part``) the batch-norm layer it stopped at after putting its rows'
    sums in ``part``."""
    cdef Py_ssize_t l, L = net.n_layers, n = batch.n, n_in, n_out, r = batch.row_off
    cdef Py_ssize_t h = 0          # offset of layer l's units among the hidden units
    cdef const floating* inp
    cdef const floating* slopes
    cdef floating* Z
    cdef bint bn
    for l in range(l_first):
        h += net.units[l + 1]
    for l in range(l_first, L):
        n_in = net.units[l]
        n_out = net.units[l + 1]
        Z = (out if l == L - 1 else acts + net.z_off[l]) + r * n_out
        bn = l < L - 1 and net.n_off[l] >= 0 and net.norm_kind[l] == 2
        if bn and resume != NULL and l == l_first:
            _bn_normalize(Z, acts + net.q_off[l] + r * n_out, resume, params + net.n_off[l],
                          n, n_out, n_threads)
        elif l == 0 and batch.X == NULL:
            _csr_matmul(<const floating*> batch.data, batch.indices, batch.indptr,
                        batch.rows + r if batch.rows != NULL else NULL, batch.row0 + r,
                        params + net.w_off[0], Z, n, n_out, n_threads)
        else:
            if l == 0:
                inp = <const floating*> batch.X + r * n_in
            else:
                inp = acts + net.o_off[l - 1] + r * n_in
            _gemm(False, False, n, n_out, n_in, <floating> 1, inp, n_in,
                  params + net.w_off[l], n_out, <floating> 0, Z, n_out)
        if l == 0 and batch.nonfinite != NULL and not _all_finite(Z, n * n_out):
            # A NaN or inf in an input row makes every entry of its row of X @ W NaN
            # or inf (NaN * w = NaN, inf * 0 = NaN, inf - inf = NaN): checking the
            # product finds it before an activation (relu maps NaN to 0) can hide it.
            batch.nonfinite[0] = 1
        if l == L - 1:
            _bias_output_forward(Z, params + net.b_off[l], n, n_out, net.act[l], n_threads)
            continue
        slopes = params + net.s_off[l] if net.s_off[l] >= 0 else NULL
        if bn and part != NULL and not (resume != NULL and l == l_first):
            _bn_part_stats(Z, params + net.b_off[l], <const floating*> batch.sw, n, n_out,
                           part)
            return l
        if bn and resume != NULL and l == l_first:
            pass  # normalized above
        elif bn:
            _batch_norm_forward(Z, params + net.b_off[l], params + net.n_off[l],
                                acts + net.q_off[l] + r * n_out, acts + net.v_off[l],
                                <const floating*> batch.sw, n, n_out, net.norm_eps[l],
                                net.training, n_threads)
        elif net.n_off[l] >= 0:
            _layer_norm_forward(Z, params + net.b_off[l], params + net.n_off[l],
                                params + net.n_off[l] + n_out,
                                acts + net.q_off[l] + r * n_out, acts + net.v_off[l] + r,
                                n, n_out, net.norm_eps[l], n_threads)
        _bias_activation_forward(Z, params + net.b_off[l] if net.n_off[l] < 0 else NULL,
                                 acts + net.a_off[l] + r * n_out,
                                 n, n_out, net.act[l], <floating> net.act_param[l], slopes,
                                 n_threads,
                                 batch.counts + h if batch.counts != NULL else NULL,
                                 batch.counts_stride)
        h += n_out
        if net.dropout[l] > 0:
            _dropout(acts + net.o_off[l] + r * n_out, acts + net.a_off[l] + r * n_out, n,
                     n_out, net.dropout[l], seed, batch.stream * L + l,
                     batch.mask_row0 + r, n_threads)
    return L


cdef Py_ssize_t _backward_deltas(
        const Net* net, const Batch* batch,
        const floating* params,    # IN
        const floating* acts,      # IN: from _forward
        floating* deltas,          # IN/OUT: output delta of the batch's rows on entry
        floating* G,               # OUT (IN/OUT if accumulate): PReLU slope sums only
        bint accumulate, u64 seed, int n_threads,
        floating* S=NULL,          # OUT: if given, the slope sums go here instead, slope
        Py_ssize_t s_start=0,      # k of G at S[k - s_start]
        Py_ssize_t l_top=-1,       # row-split batch norm: resume at batch-norm layer
        const floating* resume=NULL,  # l_top, whose dY is in place: its statistics and
        const double* parts=NULL,  # the parts' sums (n_parts x stride) finish its dZ
        Py_ssize_t n_parts=0, Py_ssize_t stride=0,
        double* part=NULL) noexcept nogil:  # if given, stop at the next batch-norm layer
    """dZ_l of every hidden layer for rows [row_off, row_off + n) of the batch; returns -1,
    or (with ``part``) the batch-norm layer whose dY it left in place after putting its
    rows' sums in ``part``."""
    cdef Py_ssize_t l, L = net.n_layers, n = batch.n, n_in, n_out, r = batch.row_off
    cdef Py_ssize_t start = L - 1
    cdef floating* D_prev
    cdef floating* T
    if resume != NULL:
        n_in = net.units[l_top + 1]
        _bn_finish(deltas + net.d_off[l_top] + r * n_in, acts + net.q_off[l_top] + r * n_in,
                   resume, params + net.n_off[l_top], <const floating*> batch.sw, parts,
                   n_parts, stride, n, n_in, n_threads)
        start = l_top
    for l in range(start, 0, -1):
        n_in = net.units[l]
        n_out = net.units[l + 1]
        # dL/dA of the layer below goes to scratch, then dZ = dA * f' into its slot.
        # The scratch rows of this call start at r * (widest hidden layer), whatever
        # the layer: calls on other row blocks, at other layers, never overlap it.
        D_prev = deltas + net.d_off[l - 1] + r * n_in
        T = deltas + net.t_off + r * net.max_hidden
        _gemm(False, True, n, n_in, n_out, <floating> 1, deltas + net.d_off[l] + r * n_out,
              n_out, params + net.w_off[l], n_out, <floating> 0, T, n_in)
        if net.dropout[l - 1] > 0:
            _dropout(T, T, n, n_in, net.dropout[l - 1], seed, batch.stream * L + l - 1,
                     batch.mask_row0 + r, n_threads)
        _activation_backward(
            D_prev, T, acts + net.z_off[l - 1] + r * n_in,
            acts + net.a_off[l - 1] + r * n_in, n, n_in,
            net.act[l - 1], <floating> net.act_param[l - 1],
            params + net.s_off[l - 1] if net.s_off[l - 1] >= 0 else NULL,
            NULL if net.s_off[l - 1] < 0 else (
                S + (net.s_off[l - 1] - s_start) if S != NULL else G + net.s_off[l - 1]),
            accumulate, n_threads)
        if net.n_off[l - 1] >= 0 and net.norm_kind[l - 1] == 2 and part != NULL:
            _bn_part_sums(D_prev, acts + net.q_off[l - 1] + r * n_in,
                          params + net.n_off[l - 1],
                          S + (net.n_off[l - 1] - s_start) if S != NULL
                          else G + net.n_off[l - 1], n, n_in, part)
            return l - 1
        elif net.n_off[l - 1] >= 0 and net.norm_kind[l - 1] == 2:
            _batch_norm_backward(
                D_prev, acts + net.q_off[l - 1] + r * n_in, acts + net.v_off[l - 1],
                params + net.n_off[l - 1],
                S + (net.n_off[l - 1] - s_start) if S != NULL else G + net.n_off[l - 1],
                <const floating*> batch.sw, n, n_in, accumulate, n_threads)
        elif net.n_off[l - 1] >= 0:
            _layer_norm_backward(
                D_prev, acts + net.q_off[l - 1] + r * n_in, acts + net.v_off[l - 1] + r,
                params + net.n_off[l - 1],
                S + (net.n_off[l - 1] - s_start) if S != NULL else G + net.n_off[l - 1],
                n, n_in, accumulate, n_threads)
    return -1


cdef void _backward_grads(
        const Net* net, const Batch* batch,
        const floating* acts,      # IN: from _forward
        const floating* deltas,    # IN: from _backward_deltas, every row of the batch
        floating* G,               # OUT (or IN/OUT if accumulate): raw gradient sums
        Py_ssize_t part, Py_ssize_t n_parts, bint accumulate,
        int n_threads) noexcept nogil:
    """Weight and intercept gradient sums A_l.T @ dZ_l, dZ_l.sum(0), for part `part` of
    `n_parts` (threads own disjoint blocks: no reduction across them).

    A dense layer's weight gradient is split by rows (input units) when it has more
    inputs than outputs, else by columns: each thread's BLAS call packs the whole of
    the operand it shares with the other threads, so the split shares the smaller one
    (dZ_l, batch x n_out, or A_l.T, n_in x batch). Intercepts: by columns."""
    cdef Py_ssize_t l, L = net.n_layers, n = batch.n, n_in, n_out, c0, c1, r0, r1
    cdef const floating* inp
    cdef const floating* D
    for l in range(L - 1, -1, -1):
        n_in = net.units[l]
        n_out = net.units[l + 1]
        c0 = n_out * part // n_parts
        c1 = n_out * (part + 1) // n_parts
        D = deltas + net.d_off[l]
        if l == 0 and batch.X == NULL:
            if c1 > c0:
                _csr_t_matmul(<const floating*> batch.data, batch.indices, batch.indptr,
                              batch.rows, batch.row0, D, G + net.w_off[0], n, n_out,
                              n_in, accumulate, n_threads)
        else:
            if l == 0:
                inp = <const floating*> batch.X
            else:
                inp = acts + net.o_off[l - 1]
            if n_parts > 1 and n_in > n_out:
                r0 = n_in * part // n_parts
                r1 = n_in * (part + 1) // n_parts
                if r1 > r0:
                    _gemm(True, False, r1 - r0, n_out, n, <floating> 1, inp + r0, n_in, D,
                          n_out, <floating> (1 if accumulate else 0),
                          G + net.w_off[l] + r0 * n_out, n_out)
            elif c1 > c0:
                _gemm(True, False, n_in, c1 - c0, n, <floating> 1, inp, n_in, D + c0, n_out,
                      <floating> (1 if accumulate else 0), G + net.w_off[l] + c0, n_out)
        if c1 > c0:
            _column_sum(D + c0, G + net.b_off[l] + c0, n, c1 - c0, accumulate, n_out)


cdef double _batch_raw_loss_gradient(
        const Net* net, const Batch* batch, const Terms* terms,
        const floating* Y, const floating* sw,     # IN: (n, n_outputs), (n,)
        const floating* params, floating* acts, floating* deltas, floating* out,
        floating* G, bint accumulate) noexcept nogil:
    """Forward and backward over one batch; returns the unnormalised weighted loss sum
    and leaves raw (unnormalised, unpenalised) gradient sums in G."""
    cdef Py_ssize_t n_out = net.units[net.n_layers]
    cdef double raw
    cdef Batch b = batch[0]
    b.sw = sw                  # batch norm weighs its statistics like the loss
    _forward(net, &b, params, acts, out, terms.seed, terms.n_threads)
    raw = _loss_sum(out, Y, sw, b.n, n_out, terms.loss, terms.clip_eps)
    _output_delta(out, Y, sw, deltas + net.d_off[net.n_layers - 1], b.n, n_out,
                  terms.n_threads)
    _backward_deltas(net, &b, params, acts, deltas, G, accumulate, terms.seed,
                     terms.n_threads)
    _backward_grads(net, &b, acts, deltas, G, 0, 1, accumulate, terms.n_threads)
    return raw


cdef inline double _penalty(const Net* net, const Terms* terms,
                            const floating* params) noexcept nogil:
    """0.5 * alpha * ||W||^2 + l1 * |W|_1 over the weights (not intercepts or slopes)."""
    cdef double p = 0
    if terms.alpha != 0:
        p += 0.5 * terms.alpha * _sum_squares(params, net.n_coefs)
    if terms.l1 != 0:
        p += terms.l1 * _sum_abs(params, net.n_coefs)
    return p


cdef inline double _weight_sum(const floating* sw, Py_ssize_t n) noexcept nogil:
    """sum_i sw[i] in double, in row order."""
    cdef Py_ssize_t i
    cdef double s = 0
    for i in range(n):
        s += sw[i]
    return s


cdef inline double _adam_rate(double lr, double beta_1, double beta_2,
                              long long t) noexcept nogil:
    """Adam's bias-corrected step size after t steps: lr sqrt(1 - b2^t) / (1 - b1^t)."""
    return lr * _sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)


def cosine_learning_rate(double learning_rate, long long step, long long warmup_steps,
                         long long total_steps):
    """The cosine schedule's rate of 0-based step ``step``, as the epoch kernels use it."""
    return _cosine_lr(learning_rate, step, warmup_steps, total_steps)


def adam_learning_rate(double learning_rate, double beta_1, double beta_2, long long t):
    """Adam's bias-corrected step size after ``t`` steps, as the epoch kernels use it."""
    return _adam_rate(learning_rate, beta_1, beta_2, t)


cdef void _gather_rows(
        const floating* src, Py_ssize_t width, const Py_ssize_t* rows, Py_ssize_t n,
        floating* dst) noexcept nogil:
    """dst[i] := src[rows[i]] for rows of `width` elements."""
    cdef Py_ssize_t i
    for i in range(n):
        memcpy(dst + i * width, src + rows[i] * width, width * sizeof(floating))


# ---------------------------------------------------------------------------------------
# The kernel boundary: typed objects that Python builds and every entry point takes.
# Nothing crosses it by position: each object names its fields, checks them once, and
# hands the nogil code C views (Net, Batch, Terms, Step) of what it owns.

cdef inline void* _data(object arr, object dtype, Py_ssize_t size, bint writable,
                        str name) except NULL:
    """The data pointer of a C-contiguous array of `dtype` with `size` elements."""
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array, got {type(arr).__name__}")
    cdef cnp.ndarray a = <cnp.ndarray> arr
    if a.dtype != dtype or not cnp.PyArray_IS_C_CONTIGUOUS(a) or a.size != size:
        raise ValueError(f"{name} must be a C-contiguous {dtype} array of {size} "
                         f"elements, got {arr.dtype} {np.shape(arr)}")
    if writable and not cnp.PyArray_ISWRITEABLE(a):
        raise ValueError(f"{name} must be writable")
    return cnp.PyArray_DATA(a)


cdef inline object _float_dtype(object dtype):
    dtype = np.dtype(dtype)
    if dtype != np.float32 and dtype != np.float64:
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


# The per-hidden-layer fields of a Network: name -> (value for a layer without the
# operation, dtype). A per-layer operation adds its field here and reads it in the
# passes; Network pads each field with the output layer's value.
_HIDDEN_FIELDS = {
    "s_off": (-1, np.intp),         # offset of the layer's PReLU slopes (-1: none)
    "act_param": (0.0, np.float64),  # leaky slope / ELU alpha
    "needs_z": (0, np.intp),        # f' needs z (Z kept apart from A)
    "dropout": (0.0, np.float64),   # inverted dropout rate (training only)
    "n_off": (-1, np.intp),         # offset of the layer-norm scales, then offsets (-1: none)
    "norm_eps": (1e-5, np.float64),  # normalization epsilon
    "norm_kind": (0, np.intp),      # 0 none, 1 layer norm, 2 batch norm
}


cdef class Network:
    """Layer geometry of one MLP and where its parameters sit in the flat buffer.

    Built once per network by ``relumlp._params.NetworkLayout`` (which owns the flat
    layout); every field is a keyword argument, checked here. ``units`` has L + 1
    widths; ``act``, ``w_off`` and ``b_off`` one entry per weight layer (``act[-1]`` is
    the output activation); the fields of ``_HIDDEN_FIELDS`` (PReLU slope offsets,
    activation parameters, ``needs_z``, dropout rates) one per hidden layer, their
    default where not given or None. Weights fill ``[0, n_coefs)``, intercepts and slopes
    ``[n_coefs, n_params)``.
    """
    cdef readonly Py_ssize_t n_layers, n_coefs, n_params, n_hidden_units, max_hidden
    cdef Py_ssize_t[::1] _units, _w_off, _b_off, _s_off, _act, _needs_z, _n_off, _norm_kind
    cdef double[::1] _act_param, _dropout, _no_dropout, _norm_eps
    cdef readonly bint normalized, batch_normalized
    cdef readonly double norm_momentum
    cdef dict _spec

    def __init__(self, *, units, act, w_off, b_off, Py_ssize_t n_coefs,
                 Py_ssize_t n_params, double norm_momentum=0.1, **hidden):
        cdef Py_ssize_t L = len(units) - 1, l
        cdef dict fields = {}
        if L < 1:
            raise ValueError("a network needs at least an input and an output layer")
        unknown = set(hidden) - set(_HIDDEN_FIELDS)
        if unknown:
            raise TypeError(f"unknown per-layer fields {sorted(unknown)}; a Network takes "
                            f"{sorted(_HIDDEN_FIELDS)}")
        for name, value in [("w_off", w_off), ("b_off", b_off), ("act", act)]:
            if len(value) != L:
                raise ValueError(f"{name} needs {L} entries for {L} layers, got {len(value)}")
        for name, (default, dtype) in _HIDDEN_FIELDS.items():
            values = [default if v is None else v
                      for v in hidden.get(name, [default] * (L - 1))]
            if len(values) != L - 1:
                raise ValueError(f"{name} needs {L - 1} entries (one per hidden layer), "
                                 f"got {len(values)}")
            fields[name] = np.asarray(values + [default], dtype=dtype)
        self._spec = dict(units=list(units), act=list(act), w_off=list(w_off),
                          b_off=list(b_off), n_coefs=n_coefs, n_params=n_params,
                          **{name: list(hidden[name]) for name in hidden})
        self.n_layers = L
        self.n_coefs = n_coefs
        self.n_params = n_params
        self._units = np.asarray(units, dtype=np.intp).copy()
        self._w_off = np.asarray(w_off, dtype=np.intp).copy()
        self._b_off = np.asarray(b_off, dtype=np.intp).copy()
        self._act = np.asarray(act, dtype=np.intp).copy()
        self._s_off = fields["s_off"]
        self._needs_z = fields["needs_z"]
        self._act_param = fields["act_param"]
        self._dropout = fields["dropout"]
        self._n_off = fields["n_off"]
        self._norm_eps = fields["norm_eps"]
        self._norm_kind = fields["norm_kind"]
        self.normalized = bool((np.asarray(self._n_off) >= 0).any())
        self.batch_normalized = bool(((np.asarray(self._n_off) >= 0)
                                      & (np.asarray(self._norm_kind) == 2)).any())
        if not 0 <= norm_momentum <= 1:
            raise ValueError("norm_momentum must be in [0, 1]")
        self.norm_momentum = norm_momentum
        self._spec["norm_momentum"] = norm_momentum
        self._no_dropout = np.zeros(L, dtype=np.float64)
        self.n_hidden_units = 0
        self.max_hidden = 0
        for l in range(L):
            if self._units[l] < 1 or self._units[l + 1] < 1:
                raise ValueError(f"layer widths must be positive, got {list(units)}")
            if not (0 <= self._w_off[l]
                    and self._w_off[l] + self._units[l] * self._units[l + 1] <= n_coefs):
                raise ValueError(f"the weights of layer {l} fall outside [0, n_coefs)")
            if not (n_coefs <= self._b_off[l]
                    and self._b_off[l] + self._units[l + 1] <= n_params):
                raise ValueError(f"the intercepts of layer {l} fall outside "
                                 "[n_coefs, n_params)")
            if self._s_off[l] >= 0 and not (
                    n_coefs <= self._s_off[l]
                    and self._s_off[l] + self._units[l + 1] <= n_params):
                raise ValueError(f"the slopes of layer {l} fall outside [n_coefs, n_params)")
            if self._n_off[l] >= 0 and not (
                    self._b_off[L - 1] + self._units[L] <= self._n_off[l]
                    and self._n_off[l] + (4 if self._norm_kind[l] == 2 else 2)
                    * self._units[l + 1] <= n_params):
                raise ValueError(f"the normalization parameters of layer {l} fall outside "
                                 "[end of the intercepts, n_params)")
            if self._n_off[l] >= 0 and not self._norm_eps[l] > 0:
                raise ValueError("norm_eps must be > 0")
            if l < L - 1:
                if not 0 <= self._dropout[l] < 1:
                    raise ValueError(f"dropout rates must be in [0, 1), got "
                                     f"{list(self._dropout[:L - 1])}")
                self.n_hidden_units += self._units[l + 1]
                self.max_hidden = max(self.max_hidden, self._units[l + 1])

    @property
    def n_features(self):
        return self._units[0]

    @property
    def n_outputs(self):
        return self._units[self.n_layers]

    def __reduce__(self):
        return (_network, (self._spec,))


def _network(spec):
    return Network(**spec)


cdef class Workspace:
    """Scratch buffers for passes over up to ``rows`` rows of one network, in one dtype.

    Prediction (``training=False``): the hidden layers' Z and A (Z only where the
    activation's derivative needs it, or for every layer with ``keep_z``; ``layer``
    gives them as arrays). Training: also the
    dropout outputs, the deltas and their scratch block, the output layer, the flat
    gradient ``grads``, the minibatch gather buffers (``dense_batches``: rows of a
    dense X too) and per-thread statistics (``counts``: per hidden unit, how many rows
    had a pre-activation <= 0; ``thread_cpu``). One workspace serves one call at a
    time: predictions running in several threads each make their own.
    """
    cdef readonly Network network
    cdef readonly Py_ssize_t rows
    cdef readonly bint training
    cdef readonly object dtype
    cdef readonly object acts, deltas, out, grads, X_batch, Y_batch, sw_batch
    cdef readonly object counts, thread_cpu
    cdef Py_ssize_t* _offsets
    cdef Net net

    def __dealloc__(self):
        free(self._offsets)

    def __init__(self, Network network, Py_ssize_t rows, dtype, *, bint training=False,
                 bint dense_batches=False, bint keep_z=False):
        cdef Py_ssize_t L = network.n_layers, l, width, cur = 0, deltas_size
        cdef Py_ssize_t* z_off
        cdef Py_ssize_t* a_off
        cdef Py_ssize_t* o_off
        cdef Py_ssize_t* d_off
        cdef Py_ssize_t* q_off
        cdef Py_ssize_t* v_off
        if rows < 1:
            raise ValueError(f"a workspace needs at least one row, got {rows}")
        if self._offsets != NULL:
            raise RuntimeError("a Workspace is initialised once")
        self.network = network
        self.rows = rows
        self.training = training
        self.dtype = _float_dtype(dtype)
        self._offsets = <Py_ssize_t*> calloc(6 * L, sizeof(Py_ssize_t))
        if self._offsets == NULL:
            raise MemoryError()
        z_off = self._offsets
        a_off = z_off + L
        o_off = a_off + L
        d_off = o_off + L
        q_off = d_off + L
        v_off = q_off + L
        for l in range(L - 1):
            width = rows * network._units[l + 1]
            z_off[l] = cur
            if network._needs_z[l] or keep_z:
                cur += width
            a_off[l] = cur
            cur += width
            o_off[l] = a_off[l]
            if training and network._dropout[l] > 0:
                o_off[l] = cur
                cur += width
            if network._n_off[l] >= 0:
                q_off[l] = cur
                cur += width
                v_off[l] = cur     # layer norm: 1 / std per row; batch norm: 3 per unit
                cur += max(rows, 3 * network._units[l + 1] + 1)
        self.acts = np.empty(max(cur, 1), dtype=self.dtype)
        cur = 0
        for l in range(L):
            d_off[l] = cur
            cur += rows * network._units[l + 1]
        self.net.t_off = cur
        if training:
            deltas_size = cur + rows * network.max_hidden
            n_features, n_outputs = network._units[0], network._units[L]
            self.deltas = np.empty(max(deltas_size, 1), dtype=self.dtype)
            self.out = np.empty((rows, n_outputs), dtype=self.dtype)
            self.grads = np.zeros(network.n_params, dtype=self.dtype)
            self.X_batch = np.empty((rows if dense_batches else 1, n_features),
                                    dtype=self.dtype)
            self.Y_batch = np.empty((rows, n_outputs), dtype=self.dtype)
            self.sw_batch = np.empty(rows, dtype=self.dtype)
        self.net.n_layers = L
        self.net.units = &network._units[0]
        self.net.w_off = &network._w_off[0]
        self.net.b_off = &network._b_off[0]
        self.net.s_off = &network._s_off[0]
        self.net.act = &network._act[0]
        self.net.act_param = &network._act_param[0]
        self.net.dropout = &(network._dropout if training else network._no_dropout)[0]
        self.net.n_coefs = network.n_coefs
        self.net.n_params = network.n_params
        self.net.max_hidden = network.max_hidden
        self.net.z_off = z_off
        self.net.a_off = a_off
        self.net.o_off = o_off
        self.net.d_off = d_off
        self.net.q_off = q_off
        self.net.v_off = v_off
        self.net.n_off = &network._n_off[0]
        self.net.norm_eps = &network._norm_eps[0]
        self.net.norm_kind = &network._norm_kind[0]
        self.net.norm_momentum = network.norm_momentum
        self.net.training = training

    def layer(self, Py_ssize_t l, Py_ssize_t n):
        """``(Z, A)``: views of hidden layer ``l``'s pre-activations and activations for
        the first ``n`` rows of the last pass (valid until the next one)."""
        cdef Py_ssize_t width
        if not 0 <= l < self.network.n_layers - 1 or not 0 <= n <= self.rows:
            raise ValueError(f"no hidden layer {l} with {n} rows in this workspace")
        width = self.network._units[l + 1]
        Z = self.acts[self.net.z_off[l]:self.net.z_off[l] + n * width]
        A = self.acts[self.net.a_off[l]:self.net.a_off[l] + n * width]
        return Z.reshape(n, width), A.reshape(n, width)

    cdef _reserve_threads(self, int n_threads):
        """Per-thread statistics slots for n_threads threads (kept when large enough)."""
        cdef Py_ssize_t slots = max(n_threads, 1)
        if self.thread_cpu is None or self.thread_cpu.shape[0] < slots:
            self.counts = np.zeros(slots * self.network.n_hidden_units, dtype=np.int64)
            self.thread_cpu = np.full(slots, -1.0)

    def unit_counts(self):
        """Per hidden unit: rows with a pre-activation <= 0 in the last counted epoch."""
        if self.counts is None:
            raise ValueError("no epoch has counted units in this workspace")
        return self.counts.reshape(-1, self.network.n_hidden_units).sum(axis=0)

    cdef void* _check(self, object params, bint writable) except NULL:
        return _data(params, self.dtype, self.network.n_params, writable, "params")


cdef class Input:
    """The rows the first layer reads: a dense C-contiguous matrix, or CSR arrays with
    int32 indices. Built by ``Input.dense`` / ``Input.csr`` (``relumlp._inference.as_input``
    converts what users pass); the arrays are kept, never copied."""
    cdef readonly bint sparse
    cdef readonly Py_ssize_t n_samples, n_features
    cdef readonly object dtype
    cdef readonly object X, data, indices, indptr
    cdef const void* x
    cdef const void* values
    cdef const int* cols
    cdef const int* rowptr

    @staticmethod
    def dense(X):
        """A dense C-contiguous float32 or float64 matrix."""
        cdef Input self = Input.__new__(Input)
        if not isinstance(X, np.ndarray) or X.ndim != 2:
            raise ValueError("dense input must be a 2-d NumPy array")
        self.dtype = _float_dtype(X.dtype)
        self.n_samples, self.n_features = X.shape
        self.x = _data(X, self.dtype, X.size, False, "X")
        self.X = X
        return self

    @staticmethod
    def csr(data, indices, indptr, Py_ssize_t n_features):
        """CSR arrays (float data, int32 indices and indptr) of an (n, n_features) X."""
        cdef Input self = Input.__new__(Input)
        if not isinstance(indptr, np.ndarray) or indptr.ndim != 1 or indptr.size < 1:
            raise ValueError("indptr must be a 1-d array of n_samples + 1 offsets")
        self.sparse = True
        self.dtype = _float_dtype(data.dtype)
        self.n_samples = indptr.size - 1
        self.n_features = n_features
        self.rowptr = <const int*> _data(indptr, np.dtype(np.int32), indptr.size, False,
                                         "indptr")
        nnz = indptr[indptr.size - 1]
        if data.size < nnz or indices.size < nnz:
            raise ValueError("data and indices must hold indptr[-1] values")
        self.values = _data(data, self.dtype, data.size, False, "data")
        self.cols = <const int*> _data(indices, np.dtype(np.int32), indices.size, False,
                                       "indices")
        self.data, self.indices, self.indptr = data, indices, indptr
        return self

    cdef void batch(self, Batch* b) noexcept:
        """A batch over this input, starting at row 0, with no options."""
        memset(b, 0, sizeof(Batch))
        if self.sparse:
            b.data = self.values
            b.indices = self.cols
            b.indptr = self.rowptr
        else:
            b.X = self.x


cdef class Dataset:
    """Training rows: an ``Input``, targets ``Y`` of shape (n_samples, n_outputs) and
    sample weights ``sw`` of shape (n_samples,), all in one dtype."""
    cdef readonly Input X
    cdef readonly object Y, sw
    cdef const void* y
    cdef const void* w

    def __init__(self, Input X, Y, sw):
        if not isinstance(Y, np.ndarray) or Y.ndim != 2 or Y.shape[0] != X.n_samples:
            raise ValueError(f"Y must be 2-d with {X.n_samples} rows")
        self.y = _data(Y, X.dtype, Y.size, False, "Y")
        self.w = _data(sw, X.dtype, X.n_samples, False, "sw")
        self.X, self.Y, self.sw = X, Y, sw

    @property
    def n_outputs(self):
        return self.Y.shape[1]


cdef class Optimizer:
    """An optimizer's rule, hyperparameters and flat state, as the step kernel reads
    them: ``Optimizer.sgd(velocity, ...)`` or ``Optimizer.adam(m, v, ...)``.
    ``sgd_epoch`` advances ``t`` (the step count: Adam's bias correction, the cosine
    schedule) by one per minibatch."""
    cdef readonly int solver
    cdef readonly double learning_rate, momentum, beta_1, beta_2, epsilon
    cdef readonly bint nesterov
    cdef public long long t
    cdef readonly object state_1, state_2
    cdef readonly double weight_decay
    cdef readonly bint cosine
    cdef readonly long long warmup_steps, total_steps

    def with_schedule(self, *, double weight_decay=0.0, bint cosine=False,
                      long long warmup_steps=0, long long total_steps=0, long long t=-1):
        """Add decoupled weight decay (weights *= 1 - lr weight_decay before each update)
        and the cosine schedule (per step: ``learning_rate`` after a linear warm-up of
        ``warmup_steps``, decaying to 0 at ``total_steps``, from step count ``t``);
        returns self."""
        if weight_decay < 0 or warmup_steps < 0 or total_steps < 0:
            raise ValueError("weight_decay, warmup_steps and total_steps must be >= 0")
        self.weight_decay = weight_decay
        self.cosine = cosine
        self.warmup_steps = warmup_steps
        self.total_steps = total_steps
        if t >= 0:
            self.t = t
        return self

    @staticmethod
    def sgd(velocity, *, double learning_rate, double momentum, bint nesterov):
        """Minibatch SGD with (Nesterov) momentum; ``velocity`` is updated in place."""
        cdef Optimizer self = Optimizer.__new__(Optimizer)
        self.solver = SGD
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.nesterov = nesterov
        self.epsilon = 1.0
        self.state_1 = self.state_2 = velocity
        return self

    @staticmethod
    def adam(m, v, *, double learning_rate, double beta_1, double beta_2, double epsilon,
             long long t):
        """Adam after ``t`` steps; the moments ``m`` and ``v`` are updated in place."""
        cdef Optimizer self = Optimizer.__new__(Optimizer)
        self.solver = ADAM
        self.learning_rate = learning_rate
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.t = t
        self.state_1, self.state_2 = m, v
        return self

    cdef void step(self, Step* st) noexcept:
        """The Step of this optimizer (finalisation fields left for the caller)."""
        memset(st, 0, sizeof(Step))
        st.solver = self.solver
        st.lr = self.learning_rate
        st.momentum = self.momentum
        st.nesterov = self.nesterov
        st.lr_t = self.learning_rate
        st.beta_1 = self.beta_1
        st.beta_2 = self.beta_2
        st.epsilon = self.epsilon
        st.weight_decay = self.weight_decay
        st.decay = 1 - self.learning_rate * self.weight_decay
        st.cosine = self.cosine
        st.lr_init = self.learning_rate
        st.warmup_steps = self.warmup_steps
        st.total_steps = self.total_steps


cdef class Objective:
    """What training minimises: the loss (a ``Loss`` code), the L2 (``alpha``) and L1
    (``l1``) penalties on the weights, log-loss clipping, gradient clipping
    (``max_grad_norm``, 0 for none) and the dropout masks (``dropout_seed``;
    ``dropout_stream`` numbers the next minibatch's masks and ``sgd_epoch`` advances it
    by one per minibatch)."""
    cdef readonly int loss
    cdef readonly double alpha, l1, clip_eps, max_grad_norm
    cdef public u64 dropout_seed
    cdef public long long dropout_stream

    def __init__(self, *, int loss, double alpha, double clip_eps, double l1=0.0,
                 double max_grad_norm=0.0, u64 dropout_seed=0, long long dropout_stream=0):
        self.loss = loss
        self.alpha = alpha
        self.l1 = l1
        self.clip_eps = clip_eps
        self.max_grad_norm = max_grad_norm
        self.dropout_seed = dropout_seed
        self.dropout_stream = dropout_stream

    cdef void terms(self, Terms* t, int n_threads) noexcept:
        t.loss = self.loss
        t.alpha = self.alpha
        t.l1 = self.l1
        t.clip_eps = self.clip_eps
        t.seed = self.dropout_seed
        t.n_threads = n_threads


# ---------------------------------------------------------------------------------------
# The epoch: serial (each minibatch whole, kernels parallel inside) or row-split (each
# minibatch in fixed parts shared by the threads). Both read one EpochData.

cdef struct EpochData:
    const Net* net
    const Terms* terms
    void* W                     # IN/OUT: flat parameters
    void* G                     # OUT: gradient of the last minibatch
    void* S1                    # IN/OUT: optimizer state
    void* S2
    const void* X               # dense X (NULL when sparse: batch.data et al.)
    const void* Y               # (n_samples, n_outputs)
    const void* sw              # (n_samples,)
    const Py_ssize_t* idx       # the epoch's sample order
    bint shuffled               # idx is not 0, 1, 2, ...: batches are gathered
    bint batch_normalized       # update the running statistics after each step
    void* X_batch               # gather buffers (batch_size rows)
    void* Y_batch
    void* sw_batch
    void* acts
    void* deltas
    void* out
    double* partials            # penalty partials per optimizer chunk
    Py_ssize_t n_samples, batch_size, n_batches, n_chunks, n_features, n_outputs
    long long t0                # Adam's step count before the epoch
    long long stream0           # dropout stream of the first minibatch


cdef inline void _batch_rows(
        const EpochData* e, Py_ssize_t start, Py_ssize_t r0, Py_ssize_t r1,
        bint gather_x, floating dummy) noexcept nogil:
    """Gather rows [r0, r1) of the shuffled minibatch starting at `start` (Y, sw and,
    for dense input, X) into the batch buffers."""
    cdef const Py_ssize_t* rows = e.idx + start + r0
    cdef Py_ssize_t i
    _gather_rows(<const floating*> e.Y, e.n_outputs, rows, r1 - r0,
                 <floating*> e.Y_batch + r0 * e.n_outputs)
    if gather_x:
        _gather_rows(<const floating*> e.X, e.n_features, rows, r1 - r0,
                     <floating*> e.X_batch + r0 * e.n_features)
    for i in range(r0, r1):
        (<floating*> e.sw_batch)[i] = (<const floating*> e.sw)[e.idx[start + i]]


cdef inline const floating* _batch_Y(const EpochData* e, Py_ssize_t start,
                                     floating dummy) noexcept nogil:
    return (<const floating*> e.Y_batch if e.shuffled
            else <const floating*> e.Y + start * e.n_outputs)


cdef inline const floating* _batch_sw(const EpochData* e, Py_ssize_t start,
                                      floating dummy) noexcept nogil:
    return <const floating*> e.sw_batch if e.shuffled else <const floating*> e.sw + start


cdef double _epoch_serial(const EpochData* e, Batch* batch, Step* st,
                          double max_grad_norm, floating dummy) noexcept nogil:
    """Every minibatch whole, one after the other; returns the summed loss."""
    cdef const Net* net = e.net
    cdef floating* W = <floating*> e.W
    cdef floating* G = <floating*> e.G
    cdef Py_ssize_t start = 0, n_b, bi = 0
    cdef double acc = 0, sw_sum, raw
    cdef double penalty = _penalty(net, e.terms, <const floating*> W)
    cdef const floating* Yp
    cdef const floating* swp
    while start < e.n_samples:
        n_b = min(e.batch_size, e.n_samples - start)
        batch.n = n_b
        batch.stream = <u64> (e.stream0 + bi)
        if e.shuffled:
            _batch_rows(e, start, 0, n_b, e.X != NULL, dummy)
        Yp = _batch_Y(e, start, dummy)
        swp = _batch_sw(e, start, dummy)
        if e.X == NULL:
            batch.rows = e.idx + start if e.shuffled else NULL
            batch.row0 = start
        elif e.shuffled:
            batch.X = e.X_batch
        else:
            batch.X = <const floating*> e.X + start * e.n_features
        sw_sum = _weight_sum(swp, n_b)
        raw = _batch_raw_loss_gradient(net, batch, e.terms, Yp, swp, W,
                                       <floating*> e.acts, <floating*> e.deltas,
                                       <floating*> e.out, G, False)
        acc += (_data_loss(raw, sw_sum, e.n_outputs, e.terms.loss) + penalty / sw_sum) * n_b
        st.sw_sum = sw_sum
        st.finalize = max_grad_norm <= 0
        if not st.finalize:
            # Clipping needs the whole finalised gradient before any update.
            _finalize_gradient(G, W, net.n_coefs, net.n_params, <floating> e.terms.alpha,
                               <floating> e.terms.l1, <floating> sw_sum, e.terms.n_threads)
            _clip_by_norm(G, net.n_params, max_grad_norm)
        _advance(st, e.t0 + bi)
        penalty = _fused_step(W, G, <floating*> e.S1, <floating*> e.S2, net.n_coefs,
                              net.n_params, st, e.partials, e.terms.alpha, e.terms.l1,
                              e.terms.n_threads)
        if e.batch_normalized:
            _update_running(net, W, <const floating*> e.acts, net.norm_momentum)
        bi += 1
        start += n_b
    return acc


cdef struct RowSplit:
    # The row-split epoch's shared state, next to EpochData.
    relumlp_seq* seq            # ticket sequencer of the phases
    Py_ssize_t n_parts          # fixed parts per minibatch (the arithmetic's split)
    double* row_loss            # (batch_size,) weighted loss of each row
    void* slope_parts           # (n_parts, n_slopes) PReLU slope sums per part, or NULL
    Py_ssize_t s_start, n_slopes
    double penalty0             # penalty of the weights before the epoch
    double* acc                 # OUT: summed loss
    long long* counts           # per-thread dead-unit counters, or NULL
    Py_ssize_t counts_stride
    double* thread_cpu          # OUT: CPU seconds of each thread
    # Batch norm: its layers, and per layer and part the forward sums (stride 2m + 1),
    # the backward sums (stride 2m) and the combined statistics (stride 3m + 1; part 0's
    # in the workspace, where the running update reads them).
    Py_ssize_t n_bn
    const Py_ssize_t* bn_layers
    double* bn_fwd
    double* bn_bwd
    void* bn_stats
    Py_ssize_t bn_m             # widest batch-norm layer


cdef inline floating* _bn_slot(const Net* net, const RowSplit* rs, floating* acts,
                               Py_ssize_t k, Py_ssize_t p, Py_ssize_t stride,
                               floating dummy) noexcept nogil:
    """Where part p keeps the combined statistics of batch-norm layer k: part 0 in the
    workspace (where the running update reads them), the others in rs.bn_stats."""
    if p == 0:
        return acts + net.v_off[rs.bn_layers[k]]
    return <floating*> rs.bn_stats + (k * rs.n_parts + p) * stride


cdef void _epoch_rows_worker(int tid, const EpochData* e, const RowSplit* rs,
                             const Step* st0, floating dummy) noexcept nogil:
    """One thread's share of an epoch in which each minibatch is split into n_parts
    fixed parts: rows for the forward and delta passes, blocks of the gradient sums,
    chunks of the optimizer step (three phases per batch). The threads claim parts in
    order (tickets of the sequencer) and a part starts once every part of the earlier
    phases is done, so no thread waits for another that has not claimed work: a sibling
    that another process preempts holds up the others only if it holds a part. BLAS
    runs single-threaded inside. Which thread runs a part does not change its
    arithmetic, so the result is the same bit for bit on any number of threads; sums
    over rows are taken in row order. PReLU slope sums: each part's into its own row of
    slope_parts, added in part order."""
    cdef const Net* net = e.net
    cdef Batch b
    cdef Step st = st0[0]
    cdef floating* W = <floating*> e.W
    cdef floating* G = <floating*> e.G
    cdef floating* acts = <floating*> e.acts
    cdef floating* deltas = <floating*> e.deltas
    cdef floating* out = <floating*> e.out
    cdef floating* slope_parts = <floating*> rs.slope_parts
    cdef Py_ssize_t n_parts = rs.n_parts, n_slopes = rs.n_slopes, n_out = e.n_outputs
    cdef Py_ssize_t start, n_b, r0, r1, i, p, bi, phase, inst, k, q
    # Batch norm adds a phase per layer to the forward (each part's sums, then their
    # combination) and one to the backward: 3 + 2 K phases per batch.
    cdef Py_ssize_t K = rs.n_bn, n_phases = 3 + 2 * K, l_bn, m_bn, kb
    cdef Py_ssize_t fs = 2 * rs.bn_m + 1, bs = 2 * rs.bn_m, ss = 3 * rs.bn_m + 1
    cdef floating* slot
    cdef Py_ssize_t total = n_phases * e.n_batches * n_parts
    cdef floating slope_sum
    cdef int ticket
    cdef double sw_sum, raw, penalty
    cdef const floating* Yp
    cdef const floating* swp
    cdef double cpu0 = _thread_cpu()
    memset(&b, 0, sizeof(Batch))
    b.counts = rs.counts + tid * rs.counts_stride if rs.counts != NULL else NULL
    b.counts_stride = rs.counts_stride
    while True:
        ticket = _seq_claim(rs.seq)
        if ticket >= total:
            break
        inst = ticket // n_parts
        p = ticket % n_parts
        bi = inst // n_phases
        phase = inst % n_phases
        _seq_wait(rs.seq, <int> (inst * n_parts))  # every part of the earlier phases
        start = bi * e.batch_size
        n_b = min(e.batch_size, e.n_samples - start)
        b.stream = <u64> (e.stream0 + bi)
        Yp = _batch_Y(e, start, dummy)
        swp = _batch_sw(e, start, dummy)
        if e.shuffled:
            b.X = e.X_batch
        else:
            b.X = <const floating*> e.X + start * e.n_features
        if phase <= 2 * K:
            # Rows: forward, loss terms, output delta, hidden deltas (with batch norm,
            # in segments between its layers).
            r0 = n_b * p // n_parts
            r1 = n_b * (p + 1) // n_parts
            if phase == 0 and e.shuffled:
                _batch_rows(e, start, r0, r1, True, dummy)
            b.n = r1 - r0
            b.row_off = r0
            b.sw = swp + r0
            slot = NULL
            if phase <= K:
                if phase > 0:  # combine the statistics of the layer the last phase reached
                    kb = phase - 1
                    l_bn = rs.bn_layers[kb]
                    m_bn = net.units[l_bn + 1]
                    slot = _bn_slot(net, rs, acts, kb, p, ss, dummy)
                    _bn_combine_stats(rs.bn_fwd + kb * n_parts * fs, n_parts, fs, m_bn,
                                      net.norm_eps[l_bn], slot)
                if r1 > r0:
                    _forward(net, &b, W, acts, out, e.terms.seed, 1,
                             rs.bn_layers[phase - 1] if phase > 0 else 0, slot,
                             rs.bn_fwd + (phase * n_parts + p) * fs if phase < K else NULL)
                elif phase < K:
                    memset(rs.bn_fwd + (phase * n_parts + p) * fs, 0, fs * sizeof(double))
                if phase == K:
                    if r1 > r0:
                        _loss_sum(out + r0 * n_out, Yp + r0 * n_out, swp + r0, r1 - r0,
                                  n_out, e.terms.loss, e.terms.clip_eps, rs.row_loss + r0)
                        _output_delta(out + r0 * n_out, Yp + r0 * n_out, swp + r0,
                                      deltas + net.d_off[net.n_layers - 1] + r0 * n_out,
                                      r1 - r0, n_out, 1)
                        _backward_deltas(net, &b, W, acts, deltas, G, False, e.terms.seed, 1,
                                         slope_parts + p * n_slopes if slope_parts != NULL
                                         else NULL, rs.s_start, -1, NULL, NULL, 0, 0,
                                         rs.bn_bwd + ((K - 1) * n_parts + p) * bs
                                         if K > 0 else NULL)
                    else:
                        if slope_parts != NULL:
                            memset(slope_parts + p * n_slopes, 0, n_slopes * sizeof(floating))
                        if K > 0:
                            memset(rs.bn_bwd + ((K - 1) * n_parts + p) * bs, 0,
                                   bs * sizeof(double))
            else:
                # Finish the batch-norm layer kb's dZ from every part's sums, go on down.
                kb = 2 * K - phase
                l_bn = rs.bn_layers[kb]
                slot = _bn_slot(net, rs, acts, kb, p, ss, dummy)
                if r1 > r0:
                    _backward_deltas(net, &b, W, acts, deltas, G, False, e.terms.seed, 1,
                                     slope_parts + p * n_slopes if slope_parts != NULL
                                     else NULL, rs.s_start, l_bn, slot,
                                     rs.bn_bwd + kb * n_parts * bs, n_parts, bs,
                                     rs.bn_bwd + ((kb - 1) * n_parts + p) * bs
                                     if kb > 0 else NULL)
                elif kb > 0:
                    memset(rs.bn_bwd + ((kb - 1) * n_parts + p) * bs, 0, bs * sizeof(double))
        elif phase == 2 * K + 1:
            # A block of the gradient sums over all rows of the batch.
            b.n = n_b
            b.row_off = 0
            _backward_grads(net, &b, acts, deltas, G, p, n_parts, False, 1)
            if p == 0 and slope_parts != NULL:
                for k in range(n_slopes):
                    slope_sum = 0
                    for q in range(n_parts):
                        slope_sum = slope_sum + slope_parts[q * n_slopes + k]
                    G[rs.s_start + k] = slope_sum
            if p == 0:
                # The batch's loss, in row order, with the penalty of the weights it
                # saw: the previous step's partials (no step of this batch has begun).
                sw_sum = _weight_sum(swp, n_b)
                raw = 0
                for i in range(n_b):
                    raw += rs.row_loss[i]
                penalty = rs.penalty0 if bi == 0 else _sum_partials(
                    e.partials, e.n_chunks, e.terms.alpha, e.terms.l1)
                rs.acc[0] += (_data_loss(raw, sw_sum, n_out, e.terms.loss)
                              + penalty / sw_sum) * n_b
                if K > 0:  # G and the step leave the running statistics alone
                    _update_running(net, W, acts, net.norm_momentum)
        else:
            # Chunks of the optimizer step; every part forms the same scalars.
            st.sw_sum = _weight_sum(swp, n_b)
            _advance(&st, e.t0 + bi)
            _step_chunks(W, G, <floating*> e.S1, <floating*> e.S2, net.n_coefs,
                         net.n_params, &st, e.partials, e.n_chunks * p // n_parts,
                         e.n_chunks * (p + 1) // n_parts)
        _seq_done(rs.seq)
    if rs.thread_cpu != NULL:
        rs.thread_cpu[tid] = _thread_cpu() - cpu0 if cpu0 >= 0 else -1


cdef double _epoch_rows(const EpochData* e, RowSplit* rs, const Step* st, int n_threads,
                        floating dummy) noexcept nogil:
    """The row-split epoch on n_threads threads; returns the summed loss."""
    cdef double acc = 0
    rs.acc = &acc
    rs.penalty0 = _penalty(e.net, e.terms, <const floating*> e.W)
    n_threads = _team(n_threads)
    with parallel(num_threads=n_threads):
        _epoch_rows_worker(threadid(), e, rs, st, dummy)
    return acc


cdef inline bint _is_shuffled(const Py_ssize_t[::1] idx) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(idx.shape[0]):
        if idx[i] != i:
            return True
    return False


def sgd_epoch(params, Workspace ws, Dataset data, const Py_ssize_t[::1] idx,
              Optimizer opt, Objective obj, int n_threads, Py_ssize_t row_parts=0,
              bint count_units=False):
    """Run one epoch of minibatch SGD or Adam over rows ``idx`` with the GIL released.

    ``ws`` is a training workspace whose ``rows`` is the batch size. Minibatches are
    taken in the order of ``idx`` (rows are gathered into the workspace unless ``idx``
    is 0, 1, 2, ...). ``params`` (and ``opt``'s state) are updated in place; ``ws.grads``
    holds the last minibatch's gradient; ``opt.t`` and ``obj.dropout_stream`` advance by
    one per minibatch.

    With ``row_parts`` > 1 (dense input, no gradient clipping, BLAS limited to one
    thread by the caller) every minibatch is split into that many fixed parts, shared
    by the ``n_threads`` threads (any number, 1 included: the result is the same bit for
    bit), and ``ws.thread_cpu[:n_threads]`` gets each thread's CPU seconds in the epoch
    (-1 where unknown). With ``count_units``, ``ws.unit_counts()`` then gives, per hidden
    unit, how many rows had a pre-activation <= 0.

    Returns the sum over minibatches of minibatch loss times minibatch size
    (scikit-learn's definition: divide by the number of rows for ``loss_``).
    """
    cdef Network network = ws.network
    cdef EpochData e
    cdef RowSplit rs
    cdef Terms terms
    cdef Batch batch
    cdef Step st
    cdef relumlp_seq seq
    cdef double acc
    cdef bint f64 = ws.dtype == np.float64
    cdef Py_ssize_t n_samples = idx.shape[0]
    if not ws.training:
        raise ValueError("sgd_epoch needs a training workspace")
    if data.X.dtype != ws.dtype or data.X.n_features != network.n_features \
            or data.n_outputs != network.n_outputs:
        raise ValueError("the data do not match the workspace's network or dtype")
    if n_samples == 0:
        return 0.0
    if np.min(idx) < 0 or np.max(idx) >= data.X.n_samples:
        raise ValueError("idx has rows outside the data")
    if opt.solver != SGD and opt.solver != ADAM:
        raise ValueError(f"unknown solver code {opt.solver}")
    memset(&e, 0, sizeof(EpochData))
    memset(&rs, 0, sizeof(RowSplit))
    e.net = &ws.net
    obj.terms(&terms, n_threads)
    e.terms = &terms
    e.W = ws._check(params, True)
    e.G = _data(ws.grads, ws.dtype, network.n_params, True, "grads")
    e.S1 = _data(opt.state_1, ws.dtype, network.n_params, True, "optimizer state")
    e.S2 = _data(opt.state_2, ws.dtype, network.n_params, True, "optimizer state")
    e.X = data.X.x if not data.X.sparse else NULL
    e.Y = data.y
    e.sw = data.w
    e.idx = &idx[0]
    e.shuffled = _is_shuffled(idx)
    if e.shuffled and e.X != NULL and ws.X_batch.shape[0] < ws.rows:
        raise ValueError("shuffled dense input needs a workspace with dense_batches=True")
    e.X_batch = cnp.PyArray_DATA(ws.X_batch)
    e.Y_batch = cnp.PyArray_DATA(ws.Y_batch)
    e.sw_batch = cnp.PyArray_DATA(ws.sw_batch)
    e.acts = cnp.PyArray_DATA(ws.acts)
    e.deltas = cnp.PyArray_DATA(ws.deltas)
    e.out = cnp.PyArray_DATA(ws.out)
    e.n_samples = n_samples
    e.batch_size = ws.rows
    e.n_batches = (n_samples + ws.rows - 1) // ws.rows
    e.n_chunks = (network.n_params + _STEP_CHUNK - 1) // _STEP_CHUNK
    e.n_features = network.n_features
    e.n_outputs = network.n_outputs
    e.t0 = opt.t
    e.stream0 = obj.dropout_stream
    opt.step(&st)
    st.alpha = obj.alpha
    st.l1 = obj.l1
    data.X.batch(&batch)
    ws._reserve_threads(n_threads)
    if count_units and network.n_hidden_units > 0:
        ws.counts.fill(0)
        batch.counts = rs.counts = <long long*> cnp.PyArray_DATA(ws.counts)
        batch.counts_stride = rs.counts_stride = network.n_hidden_units
    partials = np.empty(2 * e.n_chunks, dtype=np.float64)
    e.partials = <double*> cnp.PyArray_DATA(partials)
    # The sequencer counts tickets (3 + 2 K phases x parts per batch) in a C int.
    e.batch_normalized = network.batch_normalized
    bn_layers = [l for l in range(network.n_layers - 1)
                 if network._n_off[l] >= 0 and network._norm_kind[l] == 2]
    n_phases = 3 + 2 * len(bn_layers)
    if row_parts > 1 and e.X != NULL and obj.max_grad_norm <= 0 and \
            n_phases * e.n_batches * row_parts < 2147483647:
        st.finalize = True
        if bn_layers:
            # Batch norm: each part's sums and the combined statistics, per layer.
            bn_idx = np.asarray(bn_layers, dtype=np.intp)
            rs.n_bn = len(bn_layers)
            rs.bn_layers = <const Py_ssize_t*> cnp.PyArray_DATA(bn_idx)
            rs.bn_m = max(network._units[l + 1] for l in bn_layers)
            bn_fwd = np.zeros(rs.n_bn * row_parts * (2 * rs.bn_m + 1))
            bn_bwd = np.zeros(rs.n_bn * row_parts * 2 * rs.bn_m)
            bn_stats = np.zeros(rs.n_bn * row_parts * (3 * rs.bn_m + 1), dtype=ws.dtype)
            rs.bn_fwd = <double*> cnp.PyArray_DATA(bn_fwd)
            rs.bn_bwd = <double*> cnp.PyArray_DATA(bn_bwd)
            rs.bn_stats = cnp.PyArray_DATA(bn_stats)
        row_loss = np.empty(ws.rows, dtype=np.float64)
        rs.seq = &seq
        _seq_init(rs.seq, _sequencer_spin)
        rs.n_parts = row_parts
        rs.row_loss = <double*> cnp.PyArray_DATA(row_loss)
        rs.s_start = network._b_off[network.n_layers - 1] + network.n_outputs
        rs.n_slopes = network.n_params - rs.s_start
        if rs.n_slopes > 0:
            slope_parts = np.empty(row_parts * rs.n_slopes, dtype=ws.dtype)
            rs.slope_parts = cnp.PyArray_DATA(slope_parts)
        ws.thread_cpu.fill(-1.0)
        rs.thread_cpu = <double*> cnp.PyArray_DATA(ws.thread_cpu)
        with nogil:
            if f64:
                acc = _epoch_rows(&e, &rs, &st, n_threads, <double> 0)
            else:
                acc = _epoch_rows(&e, &rs, &st, n_threads, <float> 0)
    else:
        with nogil:
            if f64:
                acc = _epoch_serial(&e, &batch, &st, obj.max_grad_norm, <double> 0)
            else:
                acc = _epoch_serial(&e, &batch, &st, obj.max_grad_norm, <float> 0)
    opt.t += e.n_batches
    obj.dropout_stream += e.n_batches
    return acc


cdef double _loss_gradient(const Net* net, Batch* batch, const Terms* terms,
                           const floating* Y, const floating* sw, Py_ssize_t n_samples,
                           Py_ssize_t chunk, const floating* W, floating* G,
                           floating* acts, floating* deltas, floating* out) noexcept nogil:
    """The full-batch objective and its mean gradient (in G), chunk rows at a time."""
    cdef Py_ssize_t n_out = net.units[net.n_layers], start = 0, n_b
    cdef double raw = 0, sw_sum = _weight_sum(sw, n_samples)
    cdef const floating* X = <const floating*> batch.X
    cdef Py_ssize_t n_features = net.units[0]
    while start < n_samples:
        n_b = min(chunk, n_samples - start)
        batch.n = n_b
        batch.row0 = start
        batch.mask_row0 = start
        if X != NULL:
            batch.X = X + start * n_features
        raw += _batch_raw_loss_gradient(net, batch, terms, Y + start * n_out, sw + start,
                                        W, acts, deltas, out, G, start > 0)
        start += n_b
    _finalize_gradient(G, W, net.n_coefs, net.n_params, <floating> terms.alpha,
                       <floating> terms.l1, <floating> sw_sum, terms.n_threads)
    return _data_loss(raw, sw_sum, n_out, terms.loss) + _penalty(net, terms, W) / sw_sum


def loss_gradient(params, Workspace ws, Dataset data, Objective obj, int n_threads):
    """Full-batch objective at ``params`` (used by lbfgs), ``ws.rows`` rows at a time.

    Returns the loss: data term plus ``(0.5 * alpha * ||W||^2 + l1 * |W|_1) / sw.sum()``;
    ``ws.grads`` gets its gradient. Dropout (if the network has any) uses the masks of
    stream ``obj.dropout_stream``, so the objective is a deterministic function of the
    parameters.
    """
    cdef Network network = ws.network
    cdef Terms terms
    cdef Batch batch
    cdef double total
    cdef const void* W = ws._check(params, False)
    cdef void* G = _data(ws.grads, ws.dtype, network.n_params, True, "grads")
    cdef void* acts = cnp.PyArray_DATA(ws.acts)
    cdef void* deltas = cnp.PyArray_DATA(ws.deltas)
    cdef void* out = cnp.PyArray_DATA(ws.out)
    cdef Py_ssize_t n = data.X.n_samples
    if not ws.training:
        raise ValueError("loss_gradient needs a training workspace")
    if data.X.dtype != ws.dtype or data.X.n_features != network.n_features \
            or data.n_outputs != network.n_outputs or n == 0:
        raise ValueError("the data do not match the workspace's network or dtype")
    cdef bint f64 = ws.dtype == np.float64
    obj.terms(&terms, n_threads)
    data.X.batch(&batch)
    batch.stream = <u64> obj.dropout_stream
    with nogil:
        if f64:
            total = _loss_gradient(&ws.net, &batch, &terms, <const double*> data.y,
                                   <const double*> data.w, n, ws.rows, <const double*> W,
                                   <double*> G, <double*> acts, <double*> deltas,
                                   <double*> out)
        else:
            total = _loss_gradient(&ws.net, &batch, &terms, <const float*> data.y,
                                   <const float*> data.w, n, ws.rows, <const float*> W,
                                   <float*> G, <float*> acts, <float*> deltas,
                                   <float*> out)
    return total


cdef void _forward_chunks(const Net* net, Batch* batch, Py_ssize_t n_samples,
                          Py_ssize_t chunk, const floating* W, floating* acts,
                          floating* out, int n_threads) noexcept nogil:
    """Output activations of n_samples rows, chunk rows at a time."""
    cdef Py_ssize_t start = 0, n_out = net.units[net.n_layers]
    cdef const floating* X = <const floating*> batch.X
    while start < n_samples:
        batch.n = min(chunk, n_samples - start)
        batch.row0 = start
        if X != NULL:
            batch.X = X + start * net.units[0]
        _forward(net, batch, W, acts, out + start * n_out, 0, n_threads)
        start += batch.n


def forward(params, Workspace ws, Input X, out, int n_threads, bint check_finite=False):
    """Output activations of every row of ``X`` into ``out``, ``ws.rows`` rows at a time.

    With ``check_finite``, returns True if X has a NaN or an infinity (found in the first
    layer's product, so no separate pass over X), else False.
    """
    cdef Network network = ws.network
    cdef Batch batch
    cdef int nonfinite = 0
    cdef Py_ssize_t n = X.n_samples
    cdef const void* W = ws._check(params, False)
    cdef void* acts = cnp.PyArray_DATA(ws.acts)
    cdef void* Z
    if X.dtype != ws.dtype or X.n_features != network.n_features:
        raise ValueError("X does not match the workspace's network or dtype")
    Z = _data(out, ws.dtype, n * network.n_outputs, True, "out")
    X.batch(&batch)
    if check_finite:
        batch.nonfinite = &nonfinite
    cdef bint f64 = ws.dtype == np.float64
    if n == 0:
        return False
    with nogil:
        if f64:
            _forward_chunks(&ws.net, &batch, n, ws.rows, <const double*> W,
                            <double*> acts, <double*> Z, n_threads)
        else:
            _forward_chunks(&ws.net, &batch, n, ws.rows, <const float*> W,
                            <float*> acts, <float*> Z, n_threads)
    return nonfinite != 0


# ---------------------------------------------------------------------------------------
# Prediction for a few rows. BLAS gemv/gemm on one or two rows reads the whole model once
# per call on one core; here each thread computes a fixed block of every layer's columns,
# so each core streams (and, across calls, keeps in its L2) only its share of the weights.

cdef enum:
    _SMALL_ROWS_MAX = TILE_ROWS  # rows per call of the column-split forward
    _COL_ALIGN = 16              # column blocks start on multiples of 16 elements


cdef inline void _rows_times_block(
        const floating* X, Py_ssize_t ldx,  # IN: (n, k) rows, row stride ldx
        const floating* W, Py_ssize_t ldw,  # IN: (k, ldw) row-major weights
        floating* Z, Py_ssize_t ldz,        # OUT: (n, ldz); columns [j0, j1) written
        Py_ssize_t n, Py_ssize_t k, Py_ssize_t j0, Py_ssize_t j1) noexcept nogil:
    """Z[:, j0:j1] := X @ W[:, j0:j1] for n <= _SMALL_ROWS_MAX rows, tile by tile."""
    cdef Py_ssize_t t0 = j0
    while t0 < j1:
        if floating is double:
            tile_d(X, ldx, W + t0, ldw, Z + t0, ldz, n, k, min(<Py_ssize_t> TILE, j1 - t0))
        else:
            tile_s(X, ldx, W + t0, ldw, Z + t0, ldz, n, k, min(<Py_ssize_t> TILE, j1 - t0))
        t0 += TILE


cdef void _forward_block(
        const Net* net, const floating* X, Py_ssize_t n, const floating* params,
        floating* acts, floating* out, int tid, int nt) noexcept nogil:
    """Thread tid's share of the forward pass of n rows: its column block of every
    layer, a barrier after each; thread 0 applies the output activation."""
    cdef Py_ssize_t l, L = net.n_layers, n_in, n_out, j0, j1, r, j, blocks
    cdef const floating* inp
    cdef const floating* slopes
    cdef const floating* b
    cdef floating* Z
    cdef floating* A
    for l in range(L):
        n_in = net.units[l]
        n_out = net.units[l + 1]
        blocks = (n_out + _COL_ALIGN - 1) // _COL_ALIGN
        j0 = min(n_out, blocks * tid // nt * _COL_ALIGN)
        j1 = min(n_out, blocks * (tid + 1) // nt * _COL_ALIGN)
        inp = X if l == 0 else acts + net.o_off[l - 1]
        Z = out if l == L - 1 else acts + net.z_off[l]
        _rows_times_block(inp, n_in, params + net.w_off[l], n_out, Z, n_out, n, n_in, j0, j1)
        if l < L - 1 and j1 > j0:
            # Bias and activation on this thread's block, row by row, as _forward does.
            b = params + net.b_off[l]
            A = acts + net.a_off[l]
            slopes = params + net.s_off[l] + j0 if net.s_off[l] >= 0 else NULL
            for r in range(n):
                for j in range(j0, j1):
                    Z[r * n_out + j] = Z[r * n_out + j] + b[j]
                _activation_row(Z + r * n_out + j0, A + r * n_out + j0, j1 - j0,
                                net.act[l], <floating> net.act_param[l], slopes)
        _barrier()
    if tid == 0:
        _bias_output_forward(out, params + net.b_off[L - 1], n, net.units[L], net.act[L - 1], 1)


cdef void _forward_small(const Net* net, const floating* X, Py_ssize_t n,
                         const floating* W, floating* acts, floating* out,
                         int n_threads) noexcept nogil:
    n_threads = _team(n_threads)
    if n_threads <= 1:
        _forward_block(net, X, n, W, acts, out, 0, 1)
    else:
        with parallel(num_threads=n_threads):
            _forward_block(net, X, n, W, acts, out, threadid(), omp_get_num_threads())


def forward_small(params, Workspace ws, Input X, out, int n_threads,
                  bint check_finite=False):
    """Output activations of a few dense rows (at most ``SMALL_ROWS_MAX``, and at most
    ``ws.rows``), each layer split by columns among threads.

    With ``check_finite``, returns True (and computes nothing) if X has a NaN or an
    infinity.
    """
    cdef Network network = ws.network
    cdef Py_ssize_t n = X.n_samples
    cdef const void* W = ws._check(params, False)
    cdef void* acts = cnp.PyArray_DATA(ws.acts)
    cdef void* Z
    if X.sparse or X.dtype != ws.dtype or X.n_features != network.n_features:
        raise ValueError("forward_small takes dense rows matching the workspace")
    if network.normalized:
        raise ValueError("forward_small splits layers by columns: a normalized layer "
                         "needs whole rows (use forward)")
    if n > _SMALL_ROWS_MAX or n > ws.rows:
        raise ValueError(f"forward_small takes at most {min(_SMALL_ROWS_MAX, ws.rows)} "
                         f"rows, got {n}")
    Z = _data(out, ws.dtype, n * network.n_outputs, True, "out")
    cdef bint f64 = ws.dtype == np.float64, nonfinite = False
    if n == 0:
        return False
    with nogil:
        if f64:
            nonfinite = check_finite and not _all_finite(<const double*> X.x,
                                                         n * X.n_features)
            if not nonfinite:
                _forward_small(&ws.net, <const double*> X.x, n, <const double*> W,
                               <double*> acts, <double*> Z, n_threads)
        else:
            nonfinite = check_finite and not _all_finite(<const float*> X.x,
                                                         n * X.n_features)
            if not nonfinite:
                _forward_small(&ws.net, <const float*> X.x, n, <const float*> W,
                               <float*> acts, <float*> Z, n_threads)
    return nonfinite


SMALL_ROWS_MAX = _SMALL_ROWS_MAX


# ---------------------------------------------------------------------------------------
# Thin wrappers for the tests: each runs exactly the kernel that training runs.

def gemm(bint trans_a, bint trans_b, double alpha, const floating[:, ::1] A,
         const floating[:, ::1] B, double beta, floating[:, ::1] C):
    """C := alpha * op(A) @ op(B) + beta * C."""
    cdef int m = C.shape[0], n = C.shape[1]
    cdef int k = A.shape[0] if trans_a else A.shape[1]
    with nogil:
        _gemm(trans_a, trans_b, m, n, k, <floating> alpha, &A[0, 0], A.shape[1],
              &B[0, 0], B.shape[1], <floating> beta, &C[0, 0], n)


def bias_activation_forward(floating[:, ::1] Z, const floating[::1] b,
                            floating[:, ::1] A, int act, double param=0,
                            const floating[::1] slopes=None, int n_threads=1):
    """A := f(Z + b) (slopes: PReLU slope per unit); Z := Z + b."""
    cdef const floating* s = &slopes[0] if slopes is not None else NULL
    with nogil:
        _bias_activation_forward(&Z[0, 0], &b[0], &A[0, 0], Z.shape[0], Z.shape[1],
                                 act, <floating> param, s, n_threads)


def activation_backward(floating[:, ::1] D, const floating[:, ::1] Z,
                        const floating[:, ::1] A, int act, double param=0,
                        const floating[::1] slopes=None, floating[::1] G_slopes=None,
                        bint accumulate=False, int n_threads=1,
                        const floating[:, ::1] dA=None):
    """D := dA * f'(Z) (dA defaults to D: in place); for PReLU, G_slopes := sum_i dA *
    min(Z, 0)."""
    cdef const floating* s = &slopes[0] if slopes is not None else NULL
    cdef floating* g = &G_slopes[0] if G_slopes is not None else NULL
    cdef const floating* src = &dA[0, 0] if dA is not None else &D[0, 0]
    with nogil:
        _activation_backward(&D[0, 0], src, &Z[0, 0], &A[0, 0], D.shape[0], D.shape[1],
                             act, <floating> param, s, g, accumulate, n_threads)


def dropout(floating[:, ::1] D, const floating[:, ::1] A, double rate, u64 seed,
            u64 stream, Py_ssize_t row0=0, int n_threads=1):
    """D := A * mask / (1 - rate), mask drawn from (seed, stream, element index)."""
    with nogil:
        _dropout(&D[0, 0], &A[0, 0], D.shape[0], D.shape[1], rate, seed, stream, row0,
                 n_threads)


def bias_output_forward(floating[:, ::1] Z, const floating[::1] b, int act,
                        int n_threads):
    """Z := out(Z + b)."""
    with nogil:
        _bias_output_forward(&Z[0, 0], &b[0], Z.shape[0], Z.shape[1], act, n_threads)


def loss_value(const floating[:, ::1] P, const floating[:, ::1] Y,
               const floating[::1] sw, int loss, double clip_eps):
    """Normalised data loss of predictions P (no penalty term)."""
    cdef double raw, sw_sum = 0
    cdef Py_ssize_t i
    for i in range(sw.shape[0]):
        sw_sum += sw[i]
    with nogil:
        raw = _loss_sum(&P[0, 0], &Y[0, 0], &sw[0], P.shape[0], P.shape[1], loss,
                        clip_eps)
    return _data_loss(raw, sw_sum, P.shape[1], loss)


def output_delta(const floating[:, ::1] P, const floating[:, ::1] Y,
                 const floating[::1] sw, floating[:, ::1] D, int n_threads):
    """D := (P - Y) * sw[:, None]."""
    with nogil:
        _output_delta(&P[0, 0], &Y[0, 0], &sw[0], &D[0, 0], P.shape[0], P.shape[1],
                      n_threads)


def csr_matmul(const floating[::1] data, const int[::1] indices, const int[::1] indptr,
               const floating[:, ::1] W, floating[:, ::1] Z, int n_threads):
    """Z := X @ W for CSR X."""
    with nogil:
        _csr_matmul(&data[0], &indices[0], &indptr[0], NULL, 0, &W[0, 0], &Z[0, 0],
                    Z.shape[0], Z.shape[1], n_threads)


def csr_t_matmul(const floating[::1] data, const int[::1] indices,
                 const int[::1] indptr, const floating[:, ::1] D, floating[:, ::1] G,
                 bint accumulate, int n_threads):
    """G := X.T @ D (+ G) for CSR X."""
    with nogil:
        _csr_t_matmul(&data[0], &indices[0], &indptr[0], NULL, 0, &D[0, 0], &G[0, 0],
                      D.shape[0], D.shape[1], G.shape[0], accumulate, n_threads)


def column_sum(const floating[:, ::1] D, floating[::1] out, bint accumulate):
    """out := D.sum(axis=0) (+ out)."""
    with nogil:
        _column_sum(&D[0, 0], &out[0], D.shape[0], D.shape[1], accumulate)


def finalize_gradient(floating[::1] G, const floating[::1] params, Py_ssize_t n_coefs,
                      double alpha, double l1, double sw_sum, int n_threads):
    """G := (G + alpha W + l1 sign W) / sw_sum on the first n_coefs, G / sw_sum after."""
    with nogil:
        _finalize_gradient(&G[0], &params[0], n_coefs, G.shape[0], <floating> alpha,
                           <floating> l1, <floating> sw_sum, n_threads)


def clip_by_norm(floating[::1] G, double max_norm):
    """G := G * min(1, max_norm / ||G||); returns the norm before clipping."""
    cdef double norm
    with nogil:
        norm = _clip_by_norm(&G[0], G.shape[0], max_norm)
    return norm


cdef void _update_only(floating* params, const floating* grads, floating* s1,
                       floating* s2, Py_ssize_t size, Step* st, int n_threads) except *:
    """Run the training step kernel as a pure optimizer update (no finalisation, no
    penalty), so that the tests exercise exactly the code that training runs."""
    cdef double* partials = <double*> malloc(2 * (size // _STEP_CHUNK + 1) * sizeof(double))
    if partials == NULL:
        raise MemoryError()
    st.finalize = False
    st.alpha = st.l1 = 0
    st.sw_sum = 1
    with nogil:
        # G is only read when finalize is False; the cast drops const for the signature.
        _fused_step(params, <floating*> grads, s1, s2, 0, size, st, partials, 0, 0,
                    n_threads)
    free(partials)


def sgd_update(floating[::1] params, const floating[::1] grads, floating[::1] velocity,
               double learning_rate, double momentum, bint nesterov, int n_threads):
    """One SGD step with (Nesterov) momentum, in place."""
    cdef Step st
    memset(&st, 0, sizeof(Step))
    st.solver = SGD
    st.lr = learning_rate
    st.momentum = momentum
    st.nesterov = nesterov
    _update_only(&params[0], &grads[0], &velocity[0], &velocity[0], params.shape[0],
                 &st, n_threads)


def adam_update(floating[::1] params, const floating[::1] grads, floating[::1] m,
                floating[::1] v, double lr_t, double beta_1, double beta_2,
                double epsilon, int n_threads):
    """One Adam step with the bias-corrected rate lr_t, in place."""
    cdef Step st
    memset(&st, 0, sizeof(Step))
    st.solver = ADAM
    st.lr_t = lr_t
    st.beta_1 = beta_1
    st.beta_2 = beta_2
    st.epsilon = epsilon
    _update_only(&params[0], &grads[0], &m[0], &v[0], params.shape[0], &st, n_threads)


def set_running_statistics(params, Workspace ws):
    """Batch norm after a full-batch (lbfgs) fit: every running mean and variance set to
    the statistics of the last training pass of ``ws``."""
    cdef void* W = ws._check(params, True)
    if not ws.training:
        raise ValueError("set_running_statistics reads a training workspace")
    if ws.dtype == np.float64:
        _update_running(&ws.net, <double*> W, <const double*> cnp.PyArray_DATA(ws.acts), 1.0)
    else:
        _update_running(&ws.net, <float*> W, <const float*> cnp.PyArray_DATA(ws.acts), 1.0)


def fused_step(params, grads, Optimizer opt, Objective obj, Py_ssize_t n_coefs,
               double sw_sum, int n_threads):
    """The training step of one minibatch: finalise the raw sums in ``grads`` in place
    (``obj``'s penalties on the first ``n_coefs`` entries, divided by ``sw_sum``), then
    one step of ``opt`` (Adam: step ``opt.t + 1``); returns 0.5 alpha ||W||^2 + l1 |W|_1
    of the new weights. ``opt.t`` is not advanced."""
    cdef Step st
    cdef double penalty
    cdef object dtype = _float_dtype(np.asarray(params).dtype)
    cdef Py_ssize_t size = np.asarray(params).size
    cdef void* W = _data(params, dtype, size, True, "params")
    cdef void* G = _data(grads, dtype, size, True, "grads")
    cdef void* S1 = _data(opt.state_1, dtype, size, True, "optimizer state")
    cdef void* S2 = _data(opt.state_2, dtype, size, True, "optimizer state")
    cdef double[::1] partials = np.empty(2 * (size // _STEP_CHUNK + 1))
    if not 0 <= n_coefs <= size:
        raise ValueError(f"n_coefs must be in [0, {size}], got {n_coefs}")
    opt.step(&st)
    st.finalize = True
    st.alpha = obj.alpha
    st.l1 = obj.l1
    st.sw_sum = sw_sum
    _advance(&st, opt.t)
    cdef bint f64 = dtype == np.float64
    with nogil:
        if f64:
            penalty = _fused_step(<double*> W, <double*> G, <double*> S1, <double*> S2,
                                  n_coefs, size, &st, &partials[0], st.alpha, st.l1,
                                  n_threads)
        else:
            penalty = _fused_step(<float*> W, <float*> G, <float*> S1, <float*> S2,
                                  n_coefs, size, &st, &partials[0], st.alpha, st.l1,
                                  n_threads)
    return penalty

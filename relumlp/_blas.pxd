# Row-major matrix products over scipy's BLAS, for both float dtypes, without the GIL.
# BLAS is column-major, so it sees a C-contiguous matrix as its transpose: to get
# C = op(A) @ op(B) we ask for C.T = op(B).T @ op(A).T, passing B before A.
from cython cimport floating
from scipy.linalg.cython_blas cimport dgemm, dgemv, sgemm, sgemv


cdef inline void _gemm(
        bint trans_a, bint trans_b, int m, int n, int k, floating alpha,
        const floating* A, int lda,     # IN: (m, k) after op, stored with row stride lda
        const floating* B, int ldb,     # IN: (k, n) after op, stored with row stride ldb
        floating beta,
        floating* C, int ldc,           # IN/OUT: (m, n), row stride ldc
) noexcept nogil:
    """C := alpha * op(A) @ op(B) + beta * C, all row-major."""
    cdef char ta = b"T" if trans_b else b"N"
    cdef char tb = b"T" if trans_a else b"N"
    cdef int one = 1
    cdef char no = b"N"
    if m == 0 or n == 0:
        return
    if m == 1 and not trans_a and not trans_b:
        # One row (predicting a single sample): y = x @ B is y.T = B.T x, a gemv on the
        # column-major view of B, which BLAS runs faster than a 1-row gemm.
        if floating is float:
            sgemv(&no, &n, &k, &alpha, <float*> B, &ldb, <float*> A, &one, &beta, C, &one)
        else:
            dgemv(&no, &n, &k, &alpha, <double*> B, &ldb, <double*> A, &one, &beta, C,
                  &one)
        return
    # scipy declares the input pointers without const; BLAS never writes A or B.
    if floating is float:
        sgemm(&ta, &tb, &n, &m, &k, &alpha, <float*> B, &ldb, <float*> A, &lda,
              &beta, C, &ldc)
    else:
        dgemm(&ta, &tb, &n, &m, &k, &alpha, <double*> B, &ldb, <double*> A, &lda,
              &beta, C, &ldc)

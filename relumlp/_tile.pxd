# The few-rows forward pass's inner product, baseline and AVX2 + FMA clones chosen at
# run time (_tile.h).
cdef extern from "_tile.h":
    enum:
        TILE "RELUMLP_TILE"
        TILE_ROWS "RELUMLP_TILE_ROWS"
    int tile_level "relumlp_tile_level"() noexcept nogil
    void tile_d "relumlp_tile_d"(
        const double* X, Py_ssize_t ldx, const double* W, Py_ssize_t ldw, double* Z,
        Py_ssize_t ldz, Py_ssize_t n, Py_ssize_t k, Py_ssize_t m) noexcept nogil
    void tile_s "relumlp_tile_s"(
        const float* X, Py_ssize_t ldx, const float* W, Py_ssize_t ldw, float* Z,
        Py_ssize_t ldz, Py_ssize_t n, Py_ssize_t k, Py_ssize_t m) noexcept nogil

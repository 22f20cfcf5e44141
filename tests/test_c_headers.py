"""The C helpers in relumlp/*.h: each compiles on its own with every warning as an
error, with and without OpenMP, and a small C program checks what they compute.

The extension includes the same headers (compiled with Python's -Wall); compiling them
alone here keeps them self-contained and clean under -Wextra -pedantic too."""
import os
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest

import relumlp
from relumlp import _kernels

HEADERS = sorted(Path(relumlp.__file__).parent.glob("*.h"))
FLAGS = ["-Wall", "-Wextra", "-Werror", "-pedantic", "-O2"]
# With OpenMP, also the vector math as the extension is built (if this build has it).
LIBMVEC = len(_kernels.vector_math_available()) > 1
VECTOR = ["-DRELUMLP_LIBMVEC", "-fno-math-errno"] if LIBMVEC else []


def _flags(openmp):
    return [*FLAGS, *(["-fopenmp", *VECTOR] if openmp else [])]

PROGRAM = r"""
#include "_openmp.h"
#include "_sequencer.h"
#include "_tile.h"
#include "_count.h"
#include "_vmath.h"

int main(void) {
    /* Z := X @ W for 2 rows, 5 features (a remainder after the four-feature passes),
       3 columns; integers, so every sum is exact. */
    double X[10], W[15], Z[6];
    float Xs[10], Ws[15], Zs[6];
    double z[5] = {1.0, -0.0, 0.0, -2.0, 3.0}, v[70], a[70];
    float vs[70], as[70];
    float zs[5] = {1.0f, -0.0f, 0.0f, -2.0f, 3.0f};
    long long cnt[5] = {0, 0, 0, 0, 0};
    relumlp_seq seq;
    int i, j, k, bad = 0;
    for (i = 0; i < 10; i++) { X[i] = i - 4; Xs[i] = (float) (i - 4); }
    for (i = 0; i < 15; i++) { W[i] = i % 4 - 1; Ws[i] = (float) (i % 4 - 1); }
    relumlp_tile_d(X, 5, W, 3, Z, 3, 2, 5, 3);
    relumlp_tile_s(Xs, 5, Ws, 3, Zs, 3, 2, 5, 3);
    for (i = 0; i < 2; i++)
        for (j = 0; j < 3; j++) {
            double want = 0;
            for (k = 0; k < 5; k++) want += X[i * 5 + k] * W[k * 3 + j];
            bad |= Z[i * 3 + j] != want || Zs[i * 3 + j] != (float) want;
        }
    relumlp_count_nonpos_d(z, cnt, 5);
    relumlp_count_nonpos_s(zs, cnt, 5);
    bad |= cnt[0] != 0 || cnt[1] != 2 || cnt[2] != 2 || cnt[3] != 2 || cnt[4] != 0;
    relumlp_seq_init(&seq, 10);
    bad |= relumlp_seq_claim(&seq) != 0 || relumlp_seq_claim(&seq) != 1;
    relumlp_seq_done(&seq);
    relumlp_seq_wait(&seq, 1);  /* already done: returns at once */
    relumlp_barrier();          /* outside a parallel region: one thread, no wait */
    bad |= relumlp_thread_cpu() < -1.0 || omp_get_max_threads() < 1;
    bad |= omp_get_num_threads() != 1 || relumlp_tile_level() < 0;
    bad |= RELUMLP_OPENMP_ENABLED != OPENMP_EXPECTED;
    /* Vector math: the widest level is chosen; logistic(0) = 1/2 and softplus'(0) =
       1/2 exactly (a whole block of 64 and a padded one), exp(x - x) = 1, tanh odd. */
    bad |= relumlp_vmath_set(-1) != relumlp_vmath_best() || relumlp_vmath_level() < 0;
    for (i = 0; i < 70; i++) { v[i] = 0.0; vs[i] = 0.0f; }
    relumlp_vact_d(RELUMLP_VM_LOGISTIC, v, a, 70, 0.0);
    relumlp_vgrad_s(RELUMLP_VM_SOFTPLUS_GRAD, as, vs, vs, 70);  /* g = 0: d = 0 */
    for (i = 0; i < 70; i++) bad |= a[i] != 0.5 || as[i] != 0.0f;
    for (i = 0; i < 70; i++) v[i] = i - 35.0;
    relumlp_vact_d(RELUMLP_VM_TANH, v, a, 70, 0.0);
    for (i = 1; i < 70; i++) bad |= a[i] != -a[70 - i];
    relumlp_vexp_shift_d(v, 70, 35.0 - 70.0);  /* exp(i - 70): increasing, last 1/e */
    for (i = 1; i < 70; i++) bad |= !(v[i] > v[i - 1]);
    relumlp_vraw_s(0, vs, as, 70);               /* exp(0) = 1 */
    for (i = 0; i < 70; i++) bad |= as[i] != 1.0f;
    return bad;
}
"""


def _compiler():
    cc = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()
    if shutil.which(cc[0]) is None:
        pytest.skip(f"no C compiler ({cc[0]}) to compile the headers with")
    return cc


def test_headers_are_shipped():
    assert {h.name for h in HEADERS} == {"_count.h", "_openmp.h", "_sequencer.h",
                                         "_tile.h", "_vmath.h"}


@pytest.mark.parametrize("openmp", [False, True], ids=["serial", "openmp"])
@pytest.mark.parametrize("header", HEADERS, ids=lambda h: h.name)
def test_header_compiles_alone_without_warnings(tmp_path, header, openmp):
    src = tmp_path / "one.c"
    src.write_text(f'#include "{header.name}"\nint main(void) {{ return 0; }}\n')
    cmd = [*_compiler(), *_flags(openmp), f"-I{header.parent}", "-c", str(src), "-o",
           str(tmp_path / "one.o")]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("openmp", [False, True], ids=["serial", "openmp"])
def test_helpers_compute_what_they_say(tmp_path, openmp):
    src = tmp_path / "check.c"
    src.write_text(PROGRAM)
    exe = tmp_path / "check"
    cmd = [*_compiler(), *_flags(openmp), f"-DOPENMP_EXPECTED={int(openmp)}",
           f"-I{HEADERS[0].parent}", str(src), "-o", str(exe), "-lm"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert subprocess.run([str(exe)]).returncode == 0

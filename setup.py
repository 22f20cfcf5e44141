"""Build the Cython kernels, with OpenMP where the compiler supports it.

Set ``RELUMLP_NO_OPENMP=1`` to force the serial build, ``RELUMLP_NO_VECTOR_MATH=1`` to
build without glibc's vector math (libmvec; scalar libm per element) and
``RELUMLP_CYTHON_DEBUG=1`` to turn bounds checking back on.
"""
import glob
import os
import subprocess
import sys
import tempfile
import textwrap

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

OPENMP_PROBE = textwrap.dedent(
    """
    #include <omp.h>
    int main(void) { return omp_get_max_threads() > 0 ? 0 : 1; }
    """
)


def _openmp_flags(compiler):
    """Return (compile_args, link_args) for OpenMP, or None if it does not build."""
    if os.environ.get("RELUMLP_NO_OPENMP", "0") not in ("", "0"):
        print("relumlp: RELUMLP_NO_OPENMP set, building the serial extension")
        return None
    if compiler.compiler_type == "msvc":
        return ["/openmp"], []
    flags = ["-fopenmp"]
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write(OPENMP_PROBE)
        try:
            objs = compiler.compile([src], output_dir=tmp, extra_postargs=flags)
            compiler.link_executable(objs, "probe", output_dir=tmp, extra_postargs=flags)
        except Exception:  # any compiler or linker failure means: no OpenMP
            print(
                "relumlp: WARNING: the compiler could not build an OpenMP program; "
                "building the serial extension (relumlp.openmp_enabled() is False)",
                file=sys.stderr,
            )
            return None
    return flags, flags


# Every function _vmath.h declares, in both precisions: the extension is linked as a
# shared library, where a missing vector variant would only fail at import.
VECTOR_FUNCTIONS = ("exp", "expm1", "erfc", "tanh", "log1p")
LIBMVEC_PROBE = "#include <math.h>\n" + "".join(
    f"#pragma omp declare simd notinbranch\ndouble {f}(double);\n"
    f"#pragma omp declare simd notinbranch\nfloat {f}f(float);\n"
    for f in VECTOR_FUNCTIONS
) + textwrap.dedent(
    """
    double x[64];
    float y[64];
    int main(void) {
        int i;
        double s = 0;
    """
) + "".join(
    f"    #pragma omp simd\n    for (i = 0; i < 64; i++) x[i] = {f}(x[i]);\n"
    f"    #pragma omp simd\n    for (i = 0; i < 64; i++) y[i] = {f}f(y[i]);\n"
    f"    s += x[0] + y[0];\n"
    for f in VECTOR_FUNCTIONS
) + "    return s == s ? 0 : 1;\n}\n"
LIBMVEC_FLAGS = ["-fopenmp-simd", "-fno-math-errno"]


def _libmvec(compiler):
    """Whether the compiler turns ``omp declare simd`` libm calls into vector calls
    (libmvec's ``_ZGV*`` symbols) and the program links and runs (glibc >= 2.22 on
    x86-64; 2.35 for erfc, tanh, log1p)."""
    if os.environ.get("RELUMLP_NO_VECTOR_MATH", "0") not in ("", "0"):
        print("relumlp: RELUMLP_NO_VECTOR_MATH set, building with scalar libm")
        return False
    if compiler.compiler_type == "msvc":
        return False
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "vm.c")
        with open(src, "w") as f:
            f.write(LIBMVEC_PROBE)
        try:
            objs = compiler.compile([src], output_dir=tmp,
                                    extra_postargs=["-O3"] + LIBMVEC_FLAGS)
            with open(objs[0], "rb") as f:
                if b"_ZGV" not in f.read():
                    raise RuntimeError("no vector calls")
            compiler.link_executable(objs, "vm", output_dir=tmp, libraries=["m"])
            subprocess.run([os.path.join(tmp, "vm")], check=True, timeout=60)
        except Exception:  # no vector variants, no libmvec, or it does not run
            print("relumlp: libmvec not usable here; the exp-based kernels call "
                  "scalar libm (relumlp.show_versions() says which)", file=sys.stderr)
            return False
    return True


def _supported(compiler, flag):
    """Whether the C compiler accepts ``flag``."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "flag.c")
        with open(src, "w") as f:
            f.write("int main(void) { return 0; }\n")
        try:
            compiler.compile([src], output_dir=tmp, extra_postargs=[flag, "-Werror"])
        except Exception:  # the flag is unknown to this compiler
            return False
    return True


# The kernels never read FP exception flags or errno, so: FP operations may be
# evaluated speculatively (branchy kernels such as the relu derivative vectorise), and
# sqrt compiles to one instruction (Adam's update vectorises). NaN and infinity
# semantics are unchanged (no -ffast-math).
OPTIONAL_FLAGS = ["-fno-trapping-math", "-fno-math-errno"]


class BuildExt(build_ext):
    def build_extensions(self):
        flags = _openmp_flags(self.compiler)
        extra = []
        if self.compiler.compiler_type != "msvc":
            extra = ["-O3"] + [f for f in OPTIONAL_FLAGS if _supported(self.compiler, f)]
        libmvec = _libmvec(self.compiler)
        for ext in self.extensions:
            ext.extra_compile_args += extra
            if libmvec:
                ext.extra_compile_args += LIBMVEC_FLAGS
                ext.define_macros.append(("RELUMLP_LIBMVEC", "1"))
                ext.libraries.append("m")
            if flags is None:
                continue
            ext.extra_compile_args += flags[0]
            ext.extra_link_args += flags[1]
        super().build_extensions()


debug = os.environ.get("RELUMLP_CYTHON_DEBUG", "0") not in ("", "0")
directives = {
    "language_level": 3,
    "boundscheck": debug,
    "wraparound": False,
    "cdivision": True,
    "initializedcheck": debug,
}
extensions = [
    Extension(
        "relumlp._kernels",
        ["relumlp/_kernels.pyx"],
        # The C helpers (relumlp/*.h) sit next to the generated _kernels.c.
        depends=sorted(glob.glob("relumlp/*.h")) + sorted(glob.glob("relumlp/*.pxd")),
        include_dirs=[np.get_include(), "relumlp"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION")],
    )
]

setup(
    ext_modules=cythonize(extensions, compiler_directives=directives),
    cmdclass={"build_ext": BuildExt},
)

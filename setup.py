# Only for the C extensions; all metadata lives in pyproject.toml.
from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("minirt._syscalls", sources=["minirt/_syscalls.c"]),
        # only the seccomp compiler links libseccomp (libseccomp-dev); attaching is in _syscalls
        Extension("minirt._seccomp", sources=["minirt/_seccomp.c"], libraries=["seccomp"]),
    ]
)

# Only for the C extension; all metadata lives in pyproject.toml.
from setuptools import Extension, setup

setup(ext_modules=[Extension("minirt._syscalls", sources=["minirt/_syscalls.c"])])

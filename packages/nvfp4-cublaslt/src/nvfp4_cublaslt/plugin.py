"""The entry point module: registers the ``cublaslt`` backend (available or not: availability says why)."""

from nvfp4.hookspecs import hookimpl

from .backend import CublasLtBackend


@hookimpl
def nvfp4_register_backends():
    return [CublasLtBackend()]

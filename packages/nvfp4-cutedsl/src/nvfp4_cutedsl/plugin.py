"""Entry point of the ``nvfp4.backends`` group: registers the ``cutedsl`` backend."""

from nvfp4.hookspecs import hookimpl

from .backend import CuteDslBackend


@hookimpl
def nvfp4_register_backends():
    return [CuteDslBackend()]

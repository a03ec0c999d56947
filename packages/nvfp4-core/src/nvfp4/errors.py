"""Exceptions the core raises when it cannot run what was asked."""


class BackendUnavailableError(RuntimeError):
    """A backend was named that is installed but cannot run here (the message says why)."""


class UnsupportedProblemError(ValueError):
    """A backend was named that does not support this GEMM problem (the message says why)."""


class NoBackendError(RuntimeError):
    """``backend="auto"`` found no available backend that supports the problem."""

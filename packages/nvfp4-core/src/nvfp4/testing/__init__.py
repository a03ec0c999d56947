"""Test helpers shared by every backend package: the conformance suite and tolerances."""

from .numerics import assert_close_to_reference, error_bound, make_problem_inputs

__all__ = ["assert_close_to_reference", "error_bound", "make_problem_inputs"]

"""What CI checks without a GPU: the build, the import, the availability reason, the tactic dataclass."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

import nvfp4
import nvfp4_cublaslt
from nvfp4.problem import GemmProblem
from nvfp4.tuning.serialize import find_tactic, tactic_id, tactic_to_json
from nvfp4_cublaslt import _library
from nvfp4_cublaslt.backend import BF16, FP16, FP32, CublasLtBackend, gemm_types
from nvfp4_cublaslt.tactics import PATH_DEQUANT, PATH_FP4, CublasLtTactic, invalid_reason


def _problem(m=64, n=1024, k=512, a_format="bf16", out=torch.bfloat16, bias=False, layout="linear"):
    return GemmProblem(m, n, k, a_format, out, bias, layout, torch.device("cuda", 0))


def _tactic(**kw):
    base = dict(path=PATH_DEQUANT, algo_id=66, tile=18, stages=20, splitk=1, reduction=0, swizzle=0,
                custom_option=0, inner_shape=0, cluster_shape=2, chunks=1)
    base.update(kw)
    return CublasLtTactic(**base)


def test_native_module_built():
    assert _library._native is not None, _library.NATIVE_ERROR
    assert _library._native.header_major() >= 12
    assert _library.soname() == f"libcublasLt.so.{_library._native.header_major()}"


def test_registered_through_entry_point():
    infos = {b.name: b for b in nvfp4.backends()}
    assert "cublaslt" in infos, nvfp4.plugin_errors()
    assert infos["cublaslt"].distribution == "nvfp4-cublaslt"


def test_availability_says_why():
    av = CublasLtBackend().availability()
    if not torch.cuda.is_available():
        assert not av.ok
        assert av.reason.startswith("no CUDA device"), av.reason
    elif max(torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())) < (9, 0):
        assert not av.ok and "compute capability below 9.0" in av.reason
    else:
        assert av.ok or av.reason, "an unavailable backend must give its reason"


def test_library_candidates_end_with_soname():
    cands = _library.candidates()
    assert cands[-1] == _library.soname()


def test_unloadable_library_is_a_reason_not_a_crash():
    if _library._native.library_loaded():
        pytest.skip("a cuBLASLt is already loaded in this process (first success wins)")
    err = _library._native.load_library("/nonexistent/libcublasLt.so.13")
    assert err and "nonexistent" in err


def test_tactic_round_trip_by_value():
    t = _tactic()
    ident = tactic_id(t)
    assert json.loads(ident)["algo_id"] == 66
    # A tactic is found again by its configuration, whatever its position in a new list.
    others = [_tactic(tile=t.tile + 1), _tactic(stages=3), t]
    assert find_tactic(others, ident) == t
    assert find_tactic(others[:2], ident) is None
    j = tactic_to_json(t)
    j.pop("__tactic__")
    assert CublasLtTactic(**j) == t
    assert CublasLtTactic.from_config(t.path, t.config(), t.chunks, t.alpha_vector) == t
    assert _tactic(alpha_vector=1) != t
    assert hash(t) == hash(_tactic())
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.tile = 1  # type: ignore[misc]


def test_tactic_validity():
    p = _problem()
    assert invalid_reason(_tactic(), p) is None
    assert "CublasLtTactic" in invalid_reason(("not", "a tactic"), p)
    assert "path" in invalid_reason(_tactic(path="magic"), p)
    assert "non-negative" in invalid_reason(_tactic(tile=-1), p)
    assert "splitk" in invalid_reason(_tactic(splitk=0), p)
    assert "splitk" in invalid_reason(_tactic(splitk=-2), p)
    # -1: cuBLASLt's value for some FP32 algorithms (seen on the H100): fine with an FP32 reduction.
    assert invalid_reason(_tactic(splitk=-1, reduction=2), p) is None
    assert "rounds partial sums" in invalid_reason(_tactic(splitk=-1, reduction=1), p)
    assert "rounds partial sums" in invalid_reason(_tactic(splitk=4, reduction=1), p)  # INPLACE
    assert "rounds partial sums" in invalid_reason(_tactic(splitk=4, reduction=4), p)  # OUTPUT_TYPE
    assert invalid_reason(_tactic(splitk=4, reduction=2), p) is None  # COMPUTE_TYPE
    assert invalid_reason(_tactic(chunks=4), p) is None  # 1024 = 4 * 256
    assert "chunks must be" in invalid_reason(_tactic(chunks=3), p)
    assert "does not split" in invalid_reason(_tactic(chunks=8), _problem(n=1000))
    assert "W4A4" in invalid_reason(_tactic(path=PATH_FP4), p)
    w4a4 = _problem(a_format="nvfp4", layout="swizzled")
    assert invalid_reason(_tactic(path=PATH_FP4), w4a4, (10, 0)) is None
    assert "10.0" in invalid_reason(_tactic(path=PATH_FP4), w4a4, (9, 0))
    assert "swizzled" in invalid_reason(_tactic(path=PATH_FP4), _problem(a_format="nvfp4"), (10, 0))
    assert "pipelined" in invalid_reason(_tactic(path=PATH_FP4, chunks=2), w4a4, (10, 0))
    assert invalid_reason(_tactic(alpha_vector=1), p) is None
    assert "alpha_vector" in invalid_reason(_tactic(alpha_vector=2), p)
    assert "scalar alpha" in invalid_reason(_tactic(path=PATH_FP4, alpha_vector=1), w4a4, (10, 0))


@pytest.mark.parametrize("a_format,out,want", [
    ("nvfp4", torch.bfloat16, (BF16, BF16, False)),
    ("nvfp4", torch.float16, (FP16, FP16, False)),   # no BF16-in/FP16-out cuBLASLt kernel: dequantize to FP16
    ("nvfp4", torch.float32, (BF16, FP32, False)),
    ("bf16", torch.float16, (BF16, FP32, True)),     # FP32 scratch + one cast kernel (bias there)
    ("fp16", torch.bfloat16, (FP16, FP32, True)),
    ("fp32", torch.float32, (FP32, FP32, False)),    # FP32 GEMM, TF32 off: exact
    ("fp32", torch.bfloat16, (FP32, FP32, True)),
])
def test_gemm_types(a_format, out, want):
    t = gemm_types(_problem(a_format=a_format, out=out), PATH_DEQUANT)
    assert (t.ab, t.d, t.scratch) == want


def test_unaligned_16bit_output_with_bias_rounds_once():
    # N = 130: bf16 rows of 260 bytes; cuBLASLt's bias epilogue there rounds twice (seen on the H100).
    t = gemm_types(_problem(n=130, a_format="nvfp4", out=torch.bfloat16, bias=True), PATH_DEQUANT)
    assert (t.ab, t.d, t.scratch) == (BF16, FP32, True)
    t = gemm_types(_problem(n=136, a_format="nvfp4", out=torch.bfloat16, bias=True), PATH_DEQUANT)
    assert (t.ab, t.d, t.scratch) == (BF16, BF16, False)


def test_fp32_gemm_adds_bias_in_the_cast_kernel():
    t = gemm_types(_problem(a_format="fp32", out=torch.float32, bias=True), PATH_DEQUANT)
    assert (t.ab, t.d, t.scratch) == (FP32, FP32, True)


def test_package_exports():
    assert nvfp4_cublaslt.CublasLtBackend.name == "cublaslt"

"""The conformance suite every backend package runs against the reference.

Use it from a backend package's tests::

    from nvfp4.testing.conformance import ConformanceSuite

    class TestConformance(ConformanceSuite):
        backend = "mine"
        # quantizer = "mine"   # also check a fast quantizer bit for bit

It runs on CUDA when a GPU is present, else on the CPU, and skips (with the
backend's own reason) when the backend is unavailable there. Problems the
backend declines are skipped with its reason; ``must_support`` lists problems
it may not decline, so a backend cannot pass by declining everything.
"""

from __future__ import annotations

import itertools

import pytest
import torch

import nvfp4
from nvfp4 import e2m1
from nvfp4.problem import GemmProblem
from nvfp4.quantize import default_global_scale
from nvfp4.registry import REGISTRY
from nvfp4.tensor import NVFP4Tensor

from ..reference import gemm_ref_f64
from .numerics import assert_close_to_reference, error_bound, make_problem_inputs

A_FORMATS = ("bf16", "fp16", "fp32", "nvfp4")
OUT_DTYPES = (torch.bfloat16, torch.float16, torch.float32)
LAYOUTS = ("linear", "swizzled")
# (M, N, K): M=1, M and N off every tile, the smallest legal N and K, a long K for split-K.
SHAPES = ((1, 1, 16), (1, 256, 256), (3, 130, 48), (17, 96, 160), (64, 128, 512), (130, 264, 1040),
          (5, 256, 8192), (257, 520, 2064))


def _device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


class ConformanceSuite:
    backend: str = ""
    quantizer: str | None = None
    #: (a_format, out_dtype, layout) triples the backend must support when available.
    must_support: tuple = (("bf16", torch.bfloat16, "linear"),)

    # -- helpers ----------------------------------------------------------------------------------
    def _require(self):
        assert self.backend, "set `backend = '<name>'` on the ConformanceSuite subclass"
        names = [b.name for b in nvfp4.backends()]
        assert self.backend in names, f"backend {self.backend!r} is not installed (installed: {names})"
        av = REGISTRY.availability(self.backend)
        if not av.ok:
            pytest.skip(f"backend {self.backend!r} unavailable: {av.reason}")
        return REGISTRY.entry(self.backend).backend

    def _problem(self, m, n, k, a_format, out_dtype, has_bias, layout):
        return GemmProblem(m, n, k, a_format, out_dtype, has_bias, layout, _device())

    def _skip_unsupported(self, be, problem):
        reason = be.supports(problem)
        if reason is not None:
            pytest.skip(f"{self.backend} declines {problem.describe()}: {reason}")

    # -- the tests ----------------------------------------------------------------------------------
    def test_listed_with_reason(self):
        info = {b.name: b for b in nvfp4.backends()}[self.backend]
        assert info.available or info.reason, "an unavailable backend must say why"

    def test_must_support(self):
        be = self._require()
        for a_format, out_dtype, layout in self.must_support:
            p = self._problem(16, 256, 256, a_format, out_dtype, False, layout)
            assert be.supports(p) is None, f"{self.backend} must support {p.describe()}"
        assert len(be.tactics(self._problem(16, 256, 256, *self.must_support[0][:2], False,
                                            self.must_support[0][2]))) >= 1

    @pytest.mark.parametrize("a_format", A_FORMATS)
    @pytest.mark.parametrize("out_dtype", OUT_DTYPES, ids=lambda d: str(d).replace("torch.", ""))
    @pytest.mark.parametrize("layout", LAYOUTS)
    @pytest.mark.parametrize("bias", (False, True), ids=("nobias", "bias"))
    def test_matches_reference(self, a_format, out_dtype, layout, bias):
        be = self._require()
        for m, n, k in SHAPES:
            problem = self._problem(m, n, k, a_format, out_dtype, bias, layout)
            if be.supports(problem) is not None:
                continue
            a, b, bias_t = make_problem_inputs(m, n, k, a_format, layout, _device(),
                                              bias_dtype=out_dtype if bias else None)
            out = torch.full((m, n), float("nan"), dtype=out_dtype, device=_device())
            got = nvfp4.gemm(a, b, bias=bias_t, out_dtype=out_dtype, backend=self.backend, out=out)
            assert got.data_ptr() == out.data_ptr()
            assert_close_to_reference(got.cpu(), _cpu(a), _cpu(b), None if bias_t is None else bias_t.cpu(),
                                      what=f"{self.backend} {problem.describe()}")
        self._skip_unsupported(be, self._problem(SHAPES[1][0], SHAPES[1][1], SHAPES[1][2], a_format, out_dtype,
                                                 bias, layout))

    @pytest.mark.parametrize("a_format", A_FORMATS)
    def test_every_tactic(self, a_format):
        be = self._require()
        for m, n, k in ((1, 512, 4096), (33, 384, 512), (200, 256, 1024)):
            problem = self._problem(m, n, k, a_format, torch.bfloat16, True, "linear")
            self._skip_unsupported(be, problem)
            a, b, bias = make_problem_inputs(m, n, k, a_format, "linear", _device(), bias_dtype=torch.bfloat16)
            tactics = list(be.tactics(problem))
            assert tactics, f"{self.backend} offered no tactic for {problem.describe()}"
            for tactic in tactics:
                out = torch.full((m, n), float("nan"), dtype=torch.bfloat16, device=_device())
                be.run(problem, tactic, a, b, bias=bias, out=out)
                assert_close_to_reference(out.cpu(), _cpu(a), _cpu(b), bias.cpu(),
                                          what=f"{self.backend} tactic {tactic!r} on {problem.describe()}")

    def test_concurrent_streams(self):
        """Every tactic, launched on two streams at once with different operands, gives each stream its own
        result: scratch memory (split-K partials and tile counters, dequantized copies) is never shared
        between streams whose kernels may overlap."""
        be = self._require()
        if not torch.cuda.is_available():
            pytest.skip("needs CUDA streams")
        # A small grid and a long K: split-K tactics, and kernels long enough (tens of microseconds) that the
        # two streams' launches run side by side.
        m, n, k, rounds = 5, 512, 32768, 3
        problem = self._problem(m, n, k, "bf16", torch.bfloat16, False, "linear")
        self._skip_unsupported(be, problem)
        dev = _device()
        inputs = [make_problem_inputs(m, n, k, "bf16", "linear", dev)[:2] for _ in range(2)]
        refs = [(gemm_ref_f64(_cpu(a), _cpu(b), None), error_bound(_cpu(a), _cpu(b), None, torch.bfloat16))
                for a, b in inputs]
        streams = [torch.cuda.Stream(dev) for _ in range(2)]
        for tactic in be.tactics(problem):
            outs = [[torch.full((m, n), float("nan"), dtype=torch.bfloat16, device=dev) for _ in range(rounds)]
                    for _ in range(2)]
            # A first launch may load code, and loading can synchronise the device: warm up outside the gate.
            for i, s in enumerate(streams):
                with torch.cuda.stream(s):
                    be.run(problem, tactic, *inputs[i], bias=None, out=outs[i][0])
            torch.cuda.synchronize(dev)
            for o in outs[0] + outs[1]:
                o.fill_(float("nan"))
            # One gate holds both streams until every launch is queued, then releases them together.
            gate = torch.cuda.Stream(dev)
            gate.wait_stream(torch.cuda.current_stream(dev))
            with torch.cuda.stream(gate):
                torch.cuda._sleep(20_000_000)
            for s in streams:
                s.wait_stream(gate)
            for r in range(rounds):
                for i, s in enumerate(streams):
                    with torch.cuda.stream(s):
                        be.run(problem, tactic, *inputs[i], bias=None, out=outs[i][r])
            torch.cuda.synchronize(dev)
            for i, (ref, bound) in enumerate(refs):
                for r in range(rounds):
                    err = (outs[i][r].cpu().double() - ref).abs()
                    assert bool((err <= bound).all()), (
                        f"{self.backend} tactic {tactic!r}: stream {i}, launch {r} differs from the reference "
                        f"(worst excess {float((err - bound).max()):.3g}; non-finite: "
                        f"{int((~torch.isfinite(err)).sum())})")

    @pytest.mark.parametrize("a_format", ("bf16", "nvfp4"))
    @pytest.mark.parametrize("out_dtype", OUT_DTYPES, ids=lambda d: str(d).replace("torch.", ""))
    def test_exact_grid(self, a_format, out_dtype):
        """Grid values with power-of-two scales: the FP32 accumulation is exact, so the
        result must equal the reference rounded once to the output dtype, bit for bit."""
        be = self._require()
        m, n, k = 19, 72, 64
        problem = self._problem(m, n, k, a_format, out_dtype, True, "linear")
        self._skip_unsupported(be, problem)
        gen = torch.Generator().manual_seed(1234)
        b = _grid_tensor(n, k, 2.0, gen)
        a = _grid_tensor(m, k, 0.25, gen)
        if a_format != "nvfp4":
            a = nvfp4.dequantize(a, torch.float32).to(torch.bfloat16)  # exact in bf16
        bias = (e2m1.code_values()[torch.randint(0, 16, (n,), generator=gen)]).to(out_dtype)
        dev = _device()
        a_d = a.to(dev) if isinstance(a, NVFP4Tensor) else a.to(dev)
        got = nvfp4.gemm(a_d, b.to(dev), bias=bias.to(dev), out_dtype=out_dtype, backend=self.backend)
        want = nvfp4.gemm_ref(a, b, bias, out_dtype)
        assert torch.equal(got.cpu(), want), f"{self.backend}: exact-grid result differs from the reference"

    def test_input_validation_reaches_backend_untouched(self):
        """A forced backend that declines a problem raises with its reason (never silently falls back)."""
        be = self._require()
        for a_format, layout in itertools.product(A_FORMATS, LAYOUTS):
            p = self._problem(16, 256, 256, a_format, torch.bfloat16, False, layout)
            reason = be.supports(p)
            if reason is None:
                continue
            a, b, _ = make_problem_inputs(16, 256, 256, a_format, layout, _device())
            with pytest.raises(nvfp4.UnsupportedProblemError, match="does not support"):
                nvfp4.gemm(a, b, backend=self.backend)

    @pytest.mark.parametrize("dtype", (torch.float32, torch.bfloat16, torch.float16),
                             ids=lambda d: str(d).replace("torch.", ""))
    @pytest.mark.parametrize("layout", LAYOUTS)
    def test_quantizer_bit_exact(self, dtype, layout):
        if self.quantizer is None:
            pytest.skip("this backend package offers no quantizer")
        self._require()
        from nvfp4.registry import REGISTRY as R

        q = next((q for q, _ in R._quantizers if q.name == self.quantizer), None)
        assert q is not None, f"quantizer {self.quantizer!r} is not registered"
        if not q.availability().ok:
            pytest.skip(f"quantizer {self.quantizer!r} unavailable: {q.availability().reason}")
        dev = _device()
        for rows, k in ((1, 16), (3, 48), (130, 1040), (1000, 4096)):
            x = (torch.randn(rows, k) * torch.exp(3 * torch.randn(rows, 1))).to(dtype).to(dev)
            x[0, :8] = 0  # zero blocks and exact ties
            if k >= 32:
                x[0, 16:32] = torch.tensor([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, 6.0] * 2, dtype=dtype)
            if q.supports(x, layout) is not None:
                continue
            for gs in (None, 0.0123):
                g = default_global_scale(x) if gs is None else \
                    torch.tensor(gs, dtype=torch.float32, device=dev)
                got = q.quantize(x.contiguous(), g, layout)
                want = nvfp4.quantize_ref(x, g, layout)
                assert got.layout == layout and got.shape == want.shape
                assert torch.equal(got.data.cpu(), want.data.cpu()), f"data differs ({rows}x{k}, {dtype})"
                assert torch.equal(got.scale.view(torch.uint8).cpu(), want.scale.view(torch.uint8).cpu()), \
                    f"scales differ ({rows}x{k}, {dtype}, {layout})"


def _cpu(t):
    return t.to("cpu") if isinstance(t, (NVFP4Tensor, torch.Tensor)) else t


def _grid_tensor(rows: int, k: int, global_scale: float, gen: torch.Generator) -> NVFP4Tensor:
    codes = torch.randint(0, 16, (rows, k), generator=gen, dtype=torch.uint8)
    exps = torch.randint(-1, 2, (rows, k // 16), generator=gen).float()
    scale = torch.pow(2.0, exps).to(torch.float8_e4m3fn)
    return NVFP4Tensor.from_raw(e2m1.pack(codes), scale, global_scale, layout="linear", shape=(rows, k))

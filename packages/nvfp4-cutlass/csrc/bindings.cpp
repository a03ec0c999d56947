// nanobind module `nvfp4_cutlass._native`: torch-agnostic entry points. Tensors arrive as device addresses
// (integers) with their shapes, the stream as the caller's cudaStream_t integer; the Python side
// (backend.py) validates dtypes, shapes, devices and alignment before calling. Plain integers keep the
// per-call host cost to a few hundred nanoseconds, which matters for decode GEMMs of ~15 us.
#include <nanobind/nanobind.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <stdexcept>
#include <string>

#include "kernels.h"

namespace nb = nanobind;
using namespace nvfp4_cutlass;

namespace {

template <typename T> T* ptr(uintptr_t a) { return reinterpret_cast<T*>(a); }

void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess)
    throw std::runtime_error(std::string("nvfp4_cutlass: ") + what + " failed: " + cudaGetErrorName(err) + ": " +
                             cudaGetErrorString(err));
}

void gemm(uintptr_t b_data, uintptr_t b_scale, uintptr_t b_gs, uintptr_t a, uintptr_t a_scale, uintptr_t a_gs,
          uintptr_t bias, uintptr_t out, uintptr_t partials, uintptr_t counters, int m, int n, int k, int act,
          bool swizzled, int out_dtype, int tile_m, int warps, int unroll, int stages, int kernel, int warp_rows, int split_k,
          int chunks_per_split,
          uintptr_t stream) {
  if (m < 1 || n < 1 || k < 16 || k % 16) throw std::invalid_argument("nvfp4_cutlass.gemm: bad M/N/K");
  if (split_k < 1 || chunks_per_split < 1) throw std::invalid_argument("nvfp4_cutlass.gemm: bad split_k");
  if (split_k > 1 && (!partials || !counters))
    throw std::invalid_argument("nvfp4_cutlass.gemm: split_k > 1 needs partials and counters");
  GemmParams p{};
  p.b_data = ptr<const uint8_t>(b_data);
  p.b_scale = ptr<const uint8_t>(b_scale);
  p.b_gs = ptr<const float>(b_gs);
  p.a = ptr<const void>(a);
  p.a_scale = ptr<const uint8_t>(a_scale);
  p.a_gs = ptr<const float>(a_gs);
  p.bias = ptr<const void>(bias);
  p.out = ptr<void>(out);
  p.partials = ptr<float>(partials);
  p.counters = ptr<unsigned>(counters);
  p.m = m; p.n = n; p.k = k;
  p.swizzled = swizzled ? 1 : 0;
  p.out_dtype = out_dtype;
  p.split_k = split_k;
  p.chunks_per_split = chunks_per_split;
  check(launch_gemm(p, act, GemmConfig{tile_m, warps, unroll, stages, kernel, warp_rows}, ptr<CUstream_st>(stream)),
        "gemm launch");
}

void quantize(uintptr_t x, int x_dtype, uintptr_t global_scale, uintptr_t data, uintptr_t scale, int rows, int k,
              bool swizzled, uintptr_t stream) {
  if (rows < 1 || k < 16 || k % 16) throw std::invalid_argument("nvfp4_cutlass.quantize: bad shape");
  check(launch_quantize(ptr<const void>(x), x_dtype, ptr<const float>(global_scale), ptr<uint8_t>(data),
                        ptr<uint8_t>(scale), rows, k, swizzled ? 1 : 0, ptr<CUstream_st>(stream)),
        "quantize launch");
}

void dequantize_fp16(uintptr_t data, uintptr_t scale, uintptr_t out, int rows, int k, bool swizzled,
                     uintptr_t stream) {
  if (rows < 1 || k < 16 || k % 16) throw std::invalid_argument("nvfp4_cutlass.dequantize_fp16: bad shape");
  check(launch_dequantize_fp16(ptr<const uint8_t>(data), ptr<const uint8_t>(scale), ptr<void>(out), rows, k,
                               swizzled ? 1 : 0, ptr<CUstream_st>(stream)),
        "dequantize launch");
}

std::vector<std::tuple<int, int, int, int, int, int>> configs() {
  int n = 0;
  const GemmConfig* c = gemm_configs(&n);
  std::vector<std::tuple<int, int, int, int, int, int>> out;
  for (int i = 0; i < n; ++i)
    out.emplace_back(c[i].tile_m, c[i].warps, c[i].unroll, c[i].stages, c[i].kernel, c[i].warp_rows);
  return out;
}

// (major, minor) of a device, or (-1, error) when the driver/runtime cannot answer.
std::tuple<int, int> device_capability(int device) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || device >= count) {
    cudaGetLastError();
    return {-1, 0};
  }
  int major = 0, minor = 0;
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
  cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device);
  return {major, minor};
}

}  // namespace

NB_MODULE(_native, m) {
  m.doc() = "sm_90a NVFP4 GEMM and quantize kernels (nvfp4-cutlass)";
  m.def("gemm", &gemm, nb::arg("b_data"), nb::arg("b_scale"), nb::arg("b_gs"), nb::arg("a"), nb::arg("a_scale"),
        nb::arg("a_gs"), nb::arg("bias"), nb::arg("out"), nb::arg("partials"), nb::arg("counters"), nb::arg("m"),
        nb::arg("n"), nb::arg("k"), nb::arg("act"), nb::arg("swizzled"), nb::arg("out_dtype"), nb::arg("tile_m"),
        nb::arg("warps"), nb::arg("unroll"), nb::arg("stages"), nb::arg("kernel"), nb::arg("warp_rows"), nb::arg("split_k"),
        nb::arg("chunks_per_split"), nb::arg("stream"));
  m.def("quantize", &quantize, nb::arg("x"), nb::arg("x_dtype"), nb::arg("global_scale"), nb::arg("data"),
        nb::arg("scale"), nb::arg("rows"), nb::arg("k"), nb::arg("swizzled"), nb::arg("stream"));
  m.def("dequantize_fp16", &dequantize_fp16, nb::arg("data"), nb::arg("scale"), nb::arg("out"), nb::arg("rows"),
        nb::arg("k"), nb::arg("swizzled"), nb::arg("stream"));
  m.def("configs", &configs, "Compiled GEMM configurations as (tile_m, warps, unroll, stages, kernel, warp_rows);\n"
        "kernel: 0 mma.sync, 1 wgmma, 2 the M = 1 kernel with TMA-fed weights.");
  m.def("device_capability", &device_capability);
  m.attr("CUDA_ARCH") = "sm_90a";
}

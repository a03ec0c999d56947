// Python bindings: torch-agnostic. Tensors arrive as DLPack arrays (nanobind ndarrays) on a CUDA device,
// the stream as the integer value of the caller's cudaStream_t.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <optional>
#include <stdexcept>
#include <tuple>

#include "cublaslt_gemm.h"
#include "dequant.h"
#include "lt_library.h"

namespace nb = nanobind;
using namespace nvfp4lt;

using In = nb::ndarray<nb::ro, nb::device::cuda, nb::c_contig>;
using Out = nb::ndarray<nb::device::cuda, nb::c_contig>;
using OptIn = std::optional<In>;
// (algo_id, tile, stages, splitk, reduction, swizzle, custom_option, inner_shape, cluster_shape)
using ConfigTuple = std::tuple<int, int, int, int, int, int, int, int, int>;

namespace {

AlgoConfig to_config(const ConfigTuple& t) {
  AlgoConfig c;
  c.algo_id = std::get<0>(t);
  c.tile = static_cast<uint32_t>(std::get<1>(t));
  c.stages = static_cast<uint32_t>(std::get<2>(t));
  c.splitk = std::get<3>(t);
  c.reduction = static_cast<uint32_t>(std::get<4>(t));
  c.swizzle = static_cast<uint32_t>(std::get<5>(t));
  c.custom_option = static_cast<uint32_t>(std::get<6>(t));
  c.inner_shape = static_cast<uint16_t>(std::get<7>(t));
  c.cluster_shape = static_cast<uint16_t>(std::get<8>(t));
  return c;
}

ConfigTuple from_config(const AlgoConfig& c) {
  return {c.algo_id, int(c.tile), int(c.stages), c.splitk, int(c.reduction), int(c.swizzle), int(c.custom_option),
          int(c.inner_shape), int(c.cluster_shape)};
}

DType to_dtype(int v) {
  if (v < 0 || v > 2) throw std::invalid_argument("dtype code must be 0 (bf16), 1 (fp16) or 2 (fp32)");
  return static_cast<DType>(v);
}

PlanShape make_shape(int path, int64_t m, int64_t n, int64_t k, int64_t ldd, int ab_type, int d_type, bool bias,
                     bool alpha_vector, int align_b, int align_d, int align_bias) {
  if (m < 1 || n < 1 || k < 16 || k % 16 != 0 || ldd < n)
    throw std::invalid_argument("m, n >= 1, k a positive multiple of 16 and ldd >= n are required");
  PlanShape s;
  s.path = path == 1 ? Path::FP4 : Path::Dequant;
  s.m = m;
  s.n = n;
  s.k = k;
  s.ldd = ldd;
  s.ab_type = to_dtype(ab_type);
  s.d_type = to_dtype(d_type);
  s.bias = bias;
  s.alpha_vector = alpha_vector;
  s.align_b = align_b;
  s.align_d = align_d;
  s.align_bias = align_bias;
  return s;
}

template <typename A>
const void* ptr(const std::optional<A>& a) {
  return a ? a->data() : nullptr;
}

void require_device(const In& a, int device, const char* name) {
  if (a.device_id() != device)
    throw std::invalid_argument(std::string(name) + " is on cuda:" + std::to_string(a.device_id()) + ", not cuda:" +
                                std::to_string(device));
}

}  // namespace

NB_MODULE(_native, m) {
  m.doc() = "nvfp4-cublaslt native module: NVFP4 dequantization kernels and cuBLASLt plans (libcublasLt via dlopen)";

  m.def("load_library", &lt_load, nb::arg("path"),
        "Open libcublasLt at `path` (file or soname); returns '' on success, else the reason.");
  m.def("library_loaded", &lt_loaded);
  m.def("library_path", &lt_loaded_path);
  m.def("library_version", []() -> int64_t { return static_cast<int64_t>(lt().GetVersion()); });
  m.def("header_major", &lt_header_major);
  m.def("header_version", &lt_header_version);
  m.def("cuda_probe", []() -> std::string {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) return std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e);
    if (n == 0) return "no CUDA device";
    return "";
  }, "'' when the CUDA runtime in this module sees a device, else the runtime's error.");
  m.def("kernel_image_error", [](int device) -> std::string {
    DeviceGuard guard(device);
    cudaError_t e = check_kernel_image();
    return e == cudaSuccess ? "" : std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e);
  }, nb::arg("device"), "'' when this build has machine code for the device, else the CUDA error.");

  m.def("workspace_bytes", [](int64_t mm, int64_t n, int64_t k, bool dequant_a, bool dequant_w, int ab_type,
                              bool scratch, size_t lt_bytes) -> size_t {
    return workspace_layout(mm, n, k, dequant_a, dequant_w, to_dtype(ab_type), scratch, lt_bytes).total;
  });

  m.def("heuristics", [](int device, int path, int64_t mm, int64_t n, int64_t k, int64_t ldd, int ab_type,
                         int d_type, bool bias, bool alpha_vector, int align_b, int align_d, int align_bias, int count,
                         size_t max_workspace) {
    auto shape = make_shape(path, mm, n, k, ldd, ab_type, d_type, bias, alpha_vector, align_b, align_d, align_bias);
    std::vector<std::tuple<ConfigTuple, size_t, float>> out;
    for (const auto& r : Plan::heuristics(device, shape, count, max_workspace))
      out.emplace_back(from_config(r.config), r.workspace, r.waves);
    return out;
  }, "The heuristic's algorithms, best first: [(config, workspace bytes, waves)].");

  nb::class_<Plan>(m, "Plan")
      .def("__init__", [](Plan* self, int device, int path, int64_t mm, int64_t n, int64_t k, int64_t ldd,
                          int ab_type, int d_type, bool bias, bool alpha_vector, int align_b, int align_d,
                          int align_bias, std::optional<ConfigTuple> config, size_t max_workspace) {
        auto shape = make_shape(path, mm, n, k, ldd, ab_type, d_type, bias, alpha_vector, align_b, align_d,
                                align_bias);
        AlgoConfig c;
        if (config) c = to_config(*config);
        new (self) Plan(device, shape, config ? &c : nullptr, max_workspace);
      })
      .def_prop_ro("config", [](const Plan& p) { return from_config(p.config()); })
      .def_prop_ro("workspace", &Plan::workspace);

  nb::class_<Pipeline>(m, "Pipeline")
      .def(nb::init<int, int>(), nb::arg("device"), nb::arg("max_chunks"))
      .def_prop_ro("max_chunks", &Pipeline::max_chunks);

  m.def("gemm", [](int device, Plan& plan, Pipeline* pipeline, OptIn a_data, OptIn a_scale, OptIn a_gs,
                   OptIn a_dense, In b_data, In b_scale, In b_gs, OptIn bias, Out out, int out_type, bool swizzled,
                   bool scratch, int64_t mm, int64_t n, int64_t k, int chunks, Out workspace, uintptr_t stream) {
    require_device(b_data, device, "b.data");
    if (out.device_id() != device || workspace.device_id() != device)
      throw std::invalid_argument("out and workspace must be on the problem's device");
    GemmArgs g;
    g.a_data = static_cast<const uint8_t*>(ptr(a_data));
    g.a_scale = static_cast<const uint8_t*>(ptr(a_scale));
    g.a_gs = static_cast<const float*>(ptr(a_gs));
    g.a_dense = ptr(a_dense);
    g.b_data = static_cast<const uint8_t*>(b_data.data());
    g.b_scale = static_cast<const uint8_t*>(b_scale.data());
    g.b_gs = static_cast<const float*>(b_gs.data());
    g.bias = ptr(bias);
    g.out = out.data();
    g.out_type = to_dtype(out_type);
    g.swizzled = swizzled;
    g.scratch = scratch;
    g.m = mm;
    g.n = n;
    g.k = k;
    g.chunks = chunks;
    g.workspace = static_cast<uint8_t*>(workspace.data());
    g.workspace_size = workspace.nbytes();
    if ((g.a_dense == nullptr) == (g.a_data == nullptr))
      throw std::invalid_argument("pass either a_data (NVFP4) or a_dense, not both");
    run_gemm(device, plan, g, pipeline, reinterpret_cast<cudaStream_t>(stream));
  }, nb::arg("device"), nb::arg("plan"), nb::arg("pipeline").none(), nb::arg("a_data").none(),
     nb::arg("a_scale").none(), nb::arg("a_gs").none(), nb::arg("a_dense").none(), nb::arg("b_data"),
     nb::arg("b_scale"), nb::arg("b_gs"), nb::arg("bias").none(), nb::arg("out"), nb::arg("out_type"),
     nb::arg("swizzled"), nb::arg("scratch"), nb::arg("m"), nb::arg("n"), nb::arg("k"), nb::arg("chunks"),
     nb::arg("workspace"), nb::arg("stream"));

  m.def("dequantize", [](int device, In data, In scale, Out out, int out_type, int64_t rows, int64_t k,
                         bool swizzled, uintptr_t stream) {
    require_device(data, device, "data");
    if (out.nbytes() < size_t(rows) * size_t(k) * dtype_size(to_dtype(out_type)))
      throw std::invalid_argument("out is smaller than rows * k elements");
    run_dequant(device, static_cast<const uint8_t*>(data.data()), static_cast<const uint8_t*>(scale.data()),
                out.data(), to_dtype(out_type), rows, k, swizzled, reinterpret_cast<cudaStream_t>(stream));
  }, nb::arg("device"), nb::arg("data"), nb::arg("scale"), nb::arg("out"), nb::arg("out_type"), nb::arg("rows"),
     nb::arg("k"), nb::arg("swizzled"), nb::arg("stream"));
}

#include "cublaslt_gemm.h"

#include <map>
#include <mutex>
#include <stdexcept>

namespace nvfp4lt {
namespace {

void check_lt(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) throw std::runtime_error(std::string(what) + " failed: " + lt_status_string(s));
}

cublasLtHandle_t handle_for(int device) {
  static std::mutex mutex;
  static std::map<int, cublasLtHandle_t> handles;  // one per device, kept for the process's life
  std::lock_guard<std::mutex> lock(mutex);
  auto it = handles.find(device);
  if (it != handles.end()) return it->second;
  DeviceGuard guard(device);
  cublasLtHandle_t h = nullptr;
  check_lt(lt().Create(&h), "cublasLtCreate");
  handles[device] = h;
  return h;
}

cudaDataType_t cuda_type(DType t) {
  switch (t) {
    case DType::BF16: return CUDA_R_16BF;
    case DType::FP16: return CUDA_R_16F;
    case DType::FP32: return CUDA_R_32F;
  }
  throw std::invalid_argument("bad dtype");
}

template <typename T>
void set_desc(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t attr, const T& v, const char* what) {
  check_lt(lt().MatmulDescSetAttribute(d, attr, &v, sizeof(v)), what);
}

template <typename T>
void get_cfg(const cublasLtMatmulAlgo_t& algo, cublasLtMatmulAlgoConfigAttributes_t attr, T& v) {
  size_t written = 0;
  check_lt(lt().MatmulAlgoConfigGetAttribute(&algo, attr, &v, sizeof(v), &written),
           "cublasLtMatmulAlgoConfigGetAttribute");
}

template <typename T>
void set_cfg(cublasLtMatmulAlgo_t& algo, cublasLtMatmulAlgoConfigAttributes_t attr, const T& v) {
  check_lt(lt().MatmulAlgoConfigSetAttribute(&algo, attr, &v, sizeof(v)), "cublasLtMatmulAlgoConfigSetAttribute");
}

AlgoConfig read_config(const cublasLtMatmulAlgo_t& algo) {
  AlgoConfig c;
  get_cfg(algo, CUBLASLT_ALGO_CONFIG_ID, c.algo_id);
  get_cfg(algo, CUBLASLT_ALGO_CONFIG_TILE_ID, c.tile);
  get_cfg(algo, CUBLASLT_ALGO_CONFIG_STAGES_ID, c.stages);
  get_cfg(algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, c.splitk);
  get_cfg(algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, c.reduction);
  get_cfg(algo, CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING, c.swizzle);
  get_cfg(algo, CUBLASLT_ALGO_CONFIG_CUSTOM_OPTION, c.custom_option);
  get_cfg(algo, CUBLASLT_ALGO_CONFIG_INNER_SHAPE_ID, c.inner_shape);
  get_cfg(algo, CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID, c.cluster_shape);
  return c;
}

// A non-dereferenced pointer whose value carries an alignment: cuBLASLt's heuristics infer the expected
// alignment of bias and scale pointers from their values.
const void* aligned_marker(int align) { return reinterpret_cast<const void*>(uintptr_t(1) << 20 | uintptr_t(align)); }

size_t round_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

// split-K whose partial sums are reduced in the output type (in place or not) would round the FP32
// accumulator before alpha: not the semantics. Only no split or an FP32 (compute type) reduction.
bool reduction_ok(const AlgoConfig& c) {
  return c.splitk == 1 || c.reduction == CUBLASLT_REDUCTION_SCHEME_NONE ||
         c.reduction == CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE;
}

struct Descriptors {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  ~Descriptors() {
    if (!lt_loaded()) return;
    if (a) lt().MatrixLayoutDestroy(a);
    if (b) lt().MatrixLayoutDestroy(b);
    if (d) lt().MatrixLayoutDestroy(d);
    if (desc) lt().MatmulDescDestroy(desc);
  }
};

void make_descriptors(const PlanShape& s, Descriptors& out) {
  check_lt(lt().MatmulDescCreate(&out.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), "cublasLtMatmulDescCreate");
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  set_desc(out.desc, CUBLASLT_MATMUL_DESC_TRANSA, ta, "TRANSA");
  set_desc(out.desc, CUBLASLT_MATMUL_DESC_TRANSB, tb, "TRANSB");
  // alpha and beta live in device memory: alpha = a_gs * b_gs is computed on the GPU (no host sync,
  // CUDA-graph capturable) and applied by cuBLASLt to the FP32 accumulator.
  const cublasLtPointerMode_t pm = s.alpha_vector ? CUBLASLT_POINTER_MODE_ALPHA_DEVICE_VECTOR_BETA_ZERO
                                                 : CUBLASLT_POINTER_MODE_DEVICE;
  set_desc(out.desc, CUBLASLT_MATMUL_DESC_POINTER_MODE, pm, "POINTER_MODE");
  if (s.bias) {
    const cublasLtEpilogue_t ep = CUBLASLT_EPILOGUE_BIAS;
    set_desc(out.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, ep, "EPILOGUE");
    const cudaDataType_t bt = cuda_type(s.d_type);
    set_desc(out.desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, bt, "BIAS_DATA_TYPE");
    set_desc(out.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, aligned_marker(s.align_bias), "BIAS_POINTER");
  }
  cudaDataType_t ab = cuda_type(s.ab_type);
  if (s.path == Path::FP4) {
    ab = CUDA_R_4F_E2M1;
    const cublasLtMatmulMatrixScale_t mode = CUBLASLT_MATMUL_MATRIX_SCALE_VEC16_UE4M3;
    set_desc(out.desc, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, mode, "A_SCALE_MODE");
    set_desc(out.desc, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, mode, "B_SCALE_MODE");
    set_desc(out.desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, aligned_marker(256), "A_SCALE_POINTER");
    set_desc(out.desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, aligned_marker(256), "B_SCALE_POINTER");
  }
  check_lt(lt().MatrixLayoutCreate(&out.a, ab, s.k, s.n, s.k), "cublasLtMatrixLayoutCreate(A)");
  check_lt(lt().MatrixLayoutCreate(&out.b, ab, s.k, s.m, s.k), "cublasLtMatrixLayoutCreate(B)");
  check_lt(lt().MatrixLayoutCreate(&out.d, cuda_type(s.d_type), s.n, s.m, s.ldd), "cublasLtMatrixLayoutCreate(D)");
}

struct Preference {
  cublasLtMatmulPreference_t p = nullptr;
  Preference(const PlanShape& s, size_t max_workspace) {
    check_lt(lt().MatmulPreferenceCreate(&p), "cublasLtMatmulPreferenceCreate");
    set(CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, uint64_t(max_workspace));
    // A is the dequantized weight (workspace, 256-aligned) or the NVFP4 weight (16); B the activation.
    set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, uint32_t(s.path == Path::FP4 ? 16 : 256));
    set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, uint32_t(s.align_b));
    set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, uint32_t(s.align_d));
    set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, uint32_t(s.align_d));
  }
  template <typename T>
  void set(cublasLtMatmulPreferenceAttributes_t attr, T v) {
    check_lt(lt().MatmulPreferenceSetAttribute(p, attr, &v, sizeof(v)), "cublasLtMatmulPreferenceSetAttribute");
  }
  ~Preference() {
    if (p && lt_loaded()) lt().MatmulPreferenceDestroy(p);
  }
};

}  // namespace

void check_cuda(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}

DeviceGuard::DeviceGuard(int device) {
  check_cuda(cudaGetDevice(&previous_), "cudaGetDevice");
  if (previous_ != device) {
    check_cuda(cudaSetDevice(device), "cudaSetDevice");
    changed_ = true;
  }
}

DeviceGuard::~DeviceGuard() {
  if (changed_) cudaSetDevice(previous_);
}

std::vector<HeuristicResult> Plan::heuristics(int device, const PlanShape& shape, int count, size_t max_workspace) {
  cublasLtHandle_t handle = handle_for(device);
  DeviceGuard guard(device);
  Descriptors d;
  make_descriptors(shape, d);
  Preference pref(shape, max_workspace);
  // Ask for more than `count`: configurations reducing split-K in the output type are dropped below.
  std::vector<cublasLtMatmulHeuristicResult_t> results(static_cast<size_t>(count) * 2 + 8);
  int found = 0;
  const cublasStatus_t st = lt().MatmulAlgoGetHeuristic(handle, d.desc, d.a, d.b, d.d, d.d, pref.p,
                                                        static_cast<int>(results.size()), results.data(), &found);
  // NOT_SUPPORTED: no algorithm for this combination (a pointer mode, say): an empty list, not an error.
  if (st == CUBLAS_STATUS_NOT_SUPPORTED) return {};
  check_lt(st, "cublasLtMatmulAlgoGetHeuristic");
  std::vector<HeuristicResult> out;
  for (int i = 0; i < found && static_cast<int>(out.size()) < count; ++i) {
    if (results[i].state != CUBLAS_STATUS_SUCCESS) continue;
    HeuristicResult r;
    r.config = read_config(results[i].algo);
    if (!reduction_ok(r.config)) continue;
    r.workspace = results[i].workspaceSize;
    r.waves = results[i].wavesCount;
    out.push_back(r);
  }
  return out;
}

Plan::Plan(int device, const PlanShape& shape, const AlgoConfig* config, size_t max_workspace)
    : shape_(shape), device_(device) {
  handle_ = handle_for(device);
  DeviceGuard guard(device);
  Descriptors d;
  make_descriptors(shape, d);
  if (config == nullptr) {
    auto found = heuristics(device, shape, 1, max_workspace);
    if (found.empty())
      throw std::runtime_error("cuBLASLt's heuristic found no algorithm for this problem (m=" + std::to_string(shape.m) +
                               " n=" + std::to_string(shape.n) + " k=" + std::to_string(shape.k) + ")");
    config_ = found[0].config;
  } else {
    config_ = *config;
  }
  if (!reduction_ok(config_))
    throw std::invalid_argument("split-K with a reduction in the output type rounds before alpha: not allowed");
  cudaDataType_t ab = shape.path == Path::FP4 ? CUDA_R_4F_E2M1 : cuda_type(shape.ab_type);
  cudaDataType_t dt = cuda_type(shape.d_type);
  check_lt(lt().MatmulAlgoInit(handle_, CUBLAS_COMPUTE_32F, CUDA_R_32F, ab, ab, dt, dt, config_.algo_id, &algo_),
           "cublasLtMatmulAlgoInit");
  set_cfg(algo_, CUBLASLT_ALGO_CONFIG_TILE_ID, config_.tile);
  set_cfg(algo_, CUBLASLT_ALGO_CONFIG_STAGES_ID, config_.stages);
  set_cfg(algo_, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, config_.splitk);
  set_cfg(algo_, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, config_.reduction);
  set_cfg(algo_, CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING, config_.swizzle);
  set_cfg(algo_, CUBLASLT_ALGO_CONFIG_CUSTOM_OPTION, config_.custom_option);
  set_cfg(algo_, CUBLASLT_ALGO_CONFIG_INNER_SHAPE_ID, config_.inner_shape);
  set_cfg(algo_, CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID, config_.cluster_shape);
  cublasLtMatmulHeuristicResult_t check{};
  cublasStatus_t st = lt().MatmulAlgoCheck(handle_, d.desc, d.a, d.b, d.d, d.d, &algo_, &check);
  if (st != CUBLAS_STATUS_SUCCESS)
    throw std::invalid_argument("cuBLASLt rejects algorithm " + std::to_string(config_.algo_id) + " (tile " +
                                std::to_string(config_.tile) + ", stages " + std::to_string(config_.stages) +
                                ", split-k " + std::to_string(config_.splitk) + ") for this problem: " +
                                lt_status_string(st));
  if (check.workspaceSize > max_workspace)
    throw std::invalid_argument("algorithm needs " + std::to_string(check.workspaceSize) +
                                " bytes of workspace, more than the " + std::to_string(max_workspace) + " allowed");
  workspace_ = check.workspaceSize;
  desc_ = d.desc;
  a_ = d.a;
  b_ = d.b;
  d_ = d.d;
  d.desc = nullptr;
  d.a = d.b = d.d = nullptr;
}

Plan::~Plan() {
  if (!lt_loaded()) return;
  if (a_) lt().MatrixLayoutDestroy(a_);
  if (b_) lt().MatrixLayoutDestroy(b_);
  if (d_) lt().MatrixLayoutDestroy(d_);
  if (desc_) lt().MatmulDescDestroy(desc_);
}

void Plan::matmul(const void* a, const void* b, void* d, const void* bias, const void* a_scale, const void* b_scale,
                  const float* alpha, const float* beta, void* workspace, size_t workspace_size,
                  cudaStream_t stream) {
  if (shape_.bias) set_desc(desc_, CUBLASLT_MATMUL_DESC_BIAS_POINTER, bias, "BIAS_POINTER");
  if (shape_.path == Path::FP4) {
    set_desc(desc_, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, a_scale, "A_SCALE_POINTER");
    set_desc(desc_, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, b_scale, "B_SCALE_POINTER");
  }
  if (workspace_size < workspace_) throw std::invalid_argument("cuBLASLt workspace too small for this algorithm");
  check_lt(lt().Matmul(handle_, desc_, alpha, a, a_, b, b_, beta, d, d_, d, d_, &algo_, workspace,
                       workspace_size, stream),
           "cublasLtMatmul");
}

Pipeline::Pipeline(int device, int max_chunks) : device_(device) {
  DeviceGuard guard(device);
  check_cuda(cudaStreamCreateWithFlags(&side_, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
  check_cuda(cudaEventCreateWithFlags(&fork_, cudaEventDisableTiming), "cudaEventCreateWithFlags");
  for (int i = 0; i < max_chunks; ++i) {
    cudaEvent_t e = nullptr;
    check_cuda(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "cudaEventCreateWithFlags");
    chunks_.push_back(e);
  }
}

Pipeline::~Pipeline() {
  for (cudaEvent_t e : chunks_) cudaEventDestroy(e);
  if (fork_) cudaEventDestroy(fork_);
  if (side_) cudaStreamDestroy(side_);
}

WorkspaceLayout workspace_layout(int64_t m, int64_t n, int64_t k, bool dequant_a, bool dequant_w, DType ab_type,
                                 bool scratch, size_t lt_bytes) {
  WorkspaceLayout w;
  size_t off = 256;  // alpha, beta
  w.alpha_vec = off;  // n floats: the per-row alpha of the vector pointer mode
  off = round_up(off + size_t(n) * 4, 256);
  const size_t es = dtype_size(ab_type);
  w.a_deq = off;
  if (dequant_a) off = round_up(off + size_t(m) * size_t(k) * es, 256);
  w.w_deq = off;
  if (dequant_w) off = round_up(off + size_t(n) * size_t(k) * es, 256);
  w.scratch = off;
  if (scratch) off = round_up(off + size_t(m) * size_t(n) * 4, 256);
  w.lt = off;
  w.lt_size = lt_bytes;
  off = round_up(off + lt_bytes, 256);
  w.total = off;
  return w;
}

void run_gemm(int device, Plan& plan, const GemmArgs& g, Pipeline* pipeline, cudaStream_t stream) {
  DeviceGuard guard(device);
  const PlanShape& s = plan.shape();
  const bool fp4 = s.path == Path::FP4;
  const bool dequant_a = !fp4 && g.a_dense == nullptr;
  // Offsets of the fixed regions; the cuBLASLt workspace is whatever the buffer holds after them.
  const WorkspaceLayout w = workspace_layout(g.m, g.n, g.k, dequant_a, !fp4, s.ab_type, g.scratch, 0);
  if (g.workspace_size < w.total) throw std::invalid_argument("workspace too small");
  const size_t lt_size = g.workspace_size - w.lt;
  uint8_t* ws = g.workspace;
  float* alpha_beta = reinterpret_cast<float*>(ws + w.alpha);
  float* alpha_vec = s.alpha_vector ? reinterpret_cast<float*>(ws + w.alpha_vec) : nullptr;
  const float* beta = alpha_beta + 1;
  // The alpha cuBLASLt reads for output rows [row, ...): the scalar, or the vector from that row on.
  auto alpha_at = [&](int64_t row) -> const float* { return alpha_vec ? alpha_vec + row : alpha_beta; };
  void* d = g.scratch ? static_cast<void*>(ws + w.scratch) : g.out;
  const size_t d_es = dtype_size(s.d_type);
  const int chunks = g.chunks;
  if (chunks < 1 || g.n % chunks != 0 || s.n != g.n / chunks || s.m != g.m || s.k != g.k)
    throw std::invalid_argument("plan does not match the problem's chunking");
  const int64_t nc = g.n / chunks;
  const size_t ab_es = dtype_size(s.ab_type);
  const void* act = dequant_a ? static_cast<const void*>(ws + w.a_deq) : g.a_dense;

  if (fp4) {
    if (s.alpha_vector) throw std::invalid_argument("the FP4 path uses a scalar alpha");
    check_cuda(launch_alpha(g.a_gs, g.b_gs, alpha_beta, stream), "alpha kernel");
    plan.matmul(g.b_data, g.a_data, d, g.bias, g.b_scale, g.a_scale, alpha_beta, beta, ws + w.lt, lt_size, stream);
  } else if (chunks == 1) {
    if (dequant_a)
      check_cuda(launch_dequant(g.a_data, g.a_scale, ws + w.a_deq, s.ab_type, 0, g.m, g.k, g.swizzled, nullptr,
                                nullptr, nullptr, nullptr, stream),
                 "dequantize (activation)");
    check_cuda(launch_dequant(g.b_data, g.b_scale, ws + w.w_deq, s.ab_type, 0, g.n, g.k, g.swizzled, g.a_gs, g.b_gs,
                              alpha_beta, alpha_vec, stream),
               "dequantize (weight)");
    plan.matmul(ws + w.w_deq, act, d, g.scratch ? nullptr : g.bias, nullptr, nullptr, alpha_at(0), beta, ws + w.lt,
                lt_size, stream);
  } else {
    if (pipeline == nullptr || pipeline->max_chunks() < chunks)
      throw std::invalid_argument("a pipelined GEMM needs a Pipeline with enough chunks");
    cudaStream_t side = pipeline->side();
    // Fork: the side stream starts after everything already queued on the caller's stream (the inputs,
    // and the previous call's matmuls that read this same workspace).
    check_cuda(cudaEventRecord(pipeline->fork(), stream), "cudaEventRecord");
    check_cuda(cudaStreamWaitEvent(side, pipeline->fork(), 0), "cudaStreamWaitEvent");
    if (dequant_a)
      check_cuda(launch_dequant(g.a_data, g.a_scale, ws + w.a_deq, s.ab_type, 0, g.m, g.k, g.swizzled, nullptr,
                                nullptr, nullptr, nullptr, side),
                 "dequantize (activation)");
    for (int i = 0; i < chunks; ++i) {
      check_cuda(launch_dequant(g.b_data, g.b_scale, ws + w.w_deq, s.ab_type, i * nc, nc, g.k, g.swizzled, g.a_gs,
                                g.b_gs, i == 0 ? alpha_beta : nullptr, alpha_vec ? alpha_vec + i * nc : nullptr, side),
                 "dequantize (weight chunk)");
      check_cuda(cudaEventRecord(pipeline->chunk(i), side), "cudaEventRecord");
    }
    // Join: each matmul waits for its chunk; the last wait joins the side stream back into the caller's.
    for (int i = 0; i < chunks; ++i) {
      check_cuda(cudaStreamWaitEvent(stream, pipeline->chunk(i), 0), "cudaStreamWaitEvent");
      const uint8_t* wchunk = ws + w.w_deq + size_t(i) * nc * g.k * ab_es;
      uint8_t* dchunk = static_cast<uint8_t*>(d) + size_t(i) * nc * d_es;
      const void* bchunk =
          (g.bias && !g.scratch) ? static_cast<const uint8_t*>(g.bias) + size_t(i) * nc * d_es : nullptr;
      plan.matmul(wchunk, act, dchunk, bchunk, nullptr, nullptr, alpha_at(i * nc), beta, ws + w.lt, lt_size, stream);
    }
  }
  if (g.scratch)
    check_cuda(launch_cast_bias(static_cast<const float*>(d), g.bias, g.out, g.out_type, g.m, g.n, stream),
               "cast kernel");
}

void run_dequant(int device, const uint8_t* data, const uint8_t* scale, void* out, DType out_type, int64_t rows,
                 int64_t k, bool swizzled, cudaStream_t stream) {
  DeviceGuard guard(device);
  check_cuda(launch_dequant(data, scale, out, out_type, 0, rows, k, swizzled, nullptr, nullptr, nullptr, nullptr,
                            stream),
             "dequantize");
}

}  // namespace nvfp4lt

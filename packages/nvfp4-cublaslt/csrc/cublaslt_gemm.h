// The cuBLASLt side: one handle per device, plans (descriptors + a chosen algorithm, built once and reused),
// the heuristic's algorithm list, and the call sequence of one GEMM (dequantize, then matmul).
//
// Row-major out[M, N] = A[M, K] @ W[N, K]^T is, read column-major, out^T[N, M] = W^T' x A^T': cuBLASLt's
// "TN" case with the weight as its A operand (K x N, ld K, transposed) and the activation as its B
// operand (K x M, ld K), and D = out^T with leading dimension N.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dequant.h"
#include "lt_library.h"

namespace nvfp4lt {

// A cuBLASLt algorithm named by its configuration (never an index into a list that may change).
struct AlgoConfig {
  int32_t algo_id = 0;
  uint32_t tile = 0;
  uint32_t stages = 0;
  int32_t splitk = 1;
  uint32_t reduction = 0;
  uint32_t swizzle = 0;
  uint32_t custom_option = 0;
  uint16_t inner_shape = 0;
  uint16_t cluster_shape = 0;
};

struct HeuristicResult {
  AlgoConfig config;
  size_t workspace = 0;
  float waves = 0;
};

enum class Path : int { Dequant = 0, FP4 = 1 };

// What a plan computes: D[n, m] (ld ldd) = alpha * op(A)[n, k] x B[k, m] (+ bias[n]).
struct PlanShape {
  Path path = Path::Dequant;
  int64_t m = 0, n = 0, k = 0, ldd = 0;
  DType ab_type = DType::BF16;  // Dequant path: the dense GEMM's operand dtype (FP4 path: ignored)
  DType d_type = DType::BF16;   // D (and bias) dtype
  bool bias = false;
  // alpha as a per-row device vector with beta zero (CUBLASLT_POINTER_MODE_ALPHA_DEVICE_VECTOR_BETA_ZERO):
  // kernels then never read C. Otherwise alpha and beta are device scalars (CUBLASLT_POINTER_MODE_DEVICE).
  bool alpha_vector = false;
  // Guaranteed alignments (bytes, powers of two) of the B (activation), D and bias pointers.
  int align_b = 256, align_d = 256, align_bias = 256;
};

class Plan {
 public:
  // config == nullptr: the heuristic's first algorithm.
  Plan(int device, const PlanShape& shape, const AlgoConfig* config, size_t max_workspace);
  ~Plan();
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;

  const PlanShape& shape() const { return shape_; }
  const AlgoConfig& config() const { return config_; }
  size_t workspace() const { return workspace_; }

  // One matmul on `stream`. bias/scale pointers may be null when unused. alpha: the [alpha, beta] device
  // scalars, or the alpha vector (n floats) when shape().alpha_vector; beta: the device scalar 0.
  void matmul(const void* a, const void* b, void* d, const void* bias, const void* a_scale, const void* b_scale,
              const float* alpha, const float* beta, void* workspace, size_t workspace_size, cudaStream_t stream);

  static std::vector<HeuristicResult> heuristics(int device, const PlanShape& shape, int count,
                                                 size_t max_workspace);

 private:
  void build_descriptors();
  PlanShape shape_;
  AlgoConfig config_;
  int device_;
  cublasLtHandle_t handle_ = nullptr;
  cublasLtMatmulDesc_t desc_ = nullptr;
  cublasLtMatrixLayout_t a_ = nullptr, b_ = nullptr, d_ = nullptr;
  cublasLtMatmulAlgo_t algo_{};
  size_t workspace_ = 0;
};

// The side stream and events of a pipelined GEMM on one (device, caller stream): chunk i's matmul on the
// caller's stream overlaps the dequantization of chunk i+1 on the side stream.
class Pipeline {
 public:
  Pipeline(int device, int max_chunks);
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;
  cudaStream_t side() const { return side_; }
  cudaEvent_t fork() const { return fork_; }
  cudaEvent_t chunk(int i) const { return chunks_.at(i); }
  int max_chunks() const { return static_cast<int>(chunks_.size()); }

 private:
  int device_;
  cudaStream_t side_ = nullptr;
  cudaEvent_t fork_ = nullptr;
  std::vector<cudaEvent_t> chunks_;
};

// Byte offsets inside the caller's workspace buffer (each 256-aligned).
struct WorkspaceLayout {
  size_t alpha = 0, alpha_vec = 0, a_deq = 0, w_deq = 0, lt = 0, scratch = 0, total = 0;
  size_t lt_size = 0;
};
WorkspaceLayout workspace_layout(int64_t m, int64_t n, int64_t k, bool dequant_a, bool dequant_w, DType ab_type,
                                 bool scratch, size_t lt_bytes);

struct GemmArgs {
  // Activation: NVFP4 (a_data/a_scale/a_gs) or dense (a_dense).
  const uint8_t* a_data = nullptr;
  const uint8_t* a_scale = nullptr;
  const float* a_gs = nullptr;
  const void* a_dense = nullptr;
  const uint8_t* b_data = nullptr;
  const uint8_t* b_scale = nullptr;
  const float* b_gs = nullptr;
  const void* bias = nullptr;
  void* out = nullptr;
  DType out_type = DType::BF16;
  bool swizzled = false;
  bool scratch = false;  // D is an FP32 scratch in the workspace; a cast kernel writes out (+ bias)
  int64_t m = 0, n = 0, k = 0;
  int chunks = 1;
  uint8_t* workspace = nullptr;
  size_t workspace_size = 0;
};

// The whole GEMM on `stream`; plan is for one chunk (n / chunks columns of out^T).
void run_gemm(int device, Plan& plan, const GemmArgs& args, Pipeline* pipeline, cudaStream_t stream);

// Dequantize only (benchmarks and tests).
void run_dequant(int device, const uint8_t* data, const uint8_t* scale, void* out, DType out_type, int64_t rows,
                 int64_t k, bool swizzled, cudaStream_t stream);

void check_cuda(cudaError_t e, const char* what);

class DeviceGuard {
 public:
  explicit DeviceGuard(int device);
  ~DeviceGuard();

 private:
  int previous_ = -1;
  bool changed_ = false;
};

}  // namespace nvfp4lt

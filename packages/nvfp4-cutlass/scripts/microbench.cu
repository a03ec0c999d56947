// Kernel-level timing of the sm_90a kernels without Python: every compiled GEMM configuration and split-K over
// decode-sized problems, the quantize kernel, and a plain streaming read of the same bytes (what the memory
// system gives this access volume, launch included). CUDA events around each launch, L2 flushed by a 256 MiB read
// before every repetition (as nvfp4's tuner and benchmark flush it), median of the repetitions.
//
//   bash scripts/build_microbench.sh microbench [--xz]   # the same flags, one nvcc a translation unit in parallel:
//   nvcc -arch=sm_90a -O3 -std=c++17 --expt-relaxed-constexpr -I<cutlass include> -Icsrc -DNVFP4_CUTLASS_ALL_TACTICS \
//        scripts/microbench.cu csrc/gemm_sm90*.cu csrc/quantize_sm90.cu -o microbench
//   ./microbench                       # the sweep (M 1..256, memory probes, quantize)
//   ./microbench gemm                  # GEMMs only, M 16..1024 (the wgmma range)
//   ./microbench wgmma                 # the wgmma kernels only, M 64..4096
//   ./microbench decode                # GEMMs only, M 1, 8 and 16
//   ./microbench m1                    # M = 1 and the memory probes
//   ./microbench read                  # memory-pattern probes only
//   ./microbench quantize              # the quantize kernel (bf16/fp16, both scale layouts) against a copy
//   ./microbench N K M tile_m warps unroll stages kernel split [warp_rows]   (kernel: GemmKernel)   # one case (for ncu)
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "kernels.h"

using namespace nvfp4_cutlass;

#define CK(x)                                                                                  \
  do {                                                                                         \
    cudaError_t e_ = (x);                                                                      \
    if (e_ != cudaSuccess) {                                                                   \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
      std::exit(1);                                                                            \
    }                                                                                          \
  } while (0)

namespace {

__global__ void fill_bytes(uint8_t* p, size_t n, uint32_t seed, uint8_t lo, uint8_t span) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    uint32_t h = (uint32_t)i * 2654435761u ^ seed;
    h ^= h >> 15; h *= 2246822519u; h ^= h >> 13;
    p[i] = span ? (uint8_t)(lo + h % span) : (uint8_t)h;
  }
}

template <typename T>
__global__ void fill_uniform(T* p, size_t n, uint32_t seed) {  // values in [-1, 1]
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    uint32_t h = (uint32_t)i * 2654435761u ^ seed;
    h ^= h >> 15; h *= 2246822519u; h ^= h >> 13;
    p[i] = T((float)(h % 2001) / 1000.f - 1.f);
  }
}
void fill_bf16(__nv_bfloat16* p, size_t n, uint32_t seed) { fill_uniform<<<1024, 256>>>(p, n, seed); }

// Streaming read roofline: every byte once, 16-byte loads, grid-stride.
__global__ void read_kernel(const uint4* __restrict__ p, size_t n16, uint32_t* sink) {
  uint32_t acc = 0;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n16; i += (size_t)gridDim.x * blockDim.x) {
    uint4 v;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p + i));
    acc ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  if (acc == 0x12345678u) sink[0] = acc;
}


// The GEMM's weight access pattern without the math: each warp walks 16 rows, B contiguous bytes of each row
// per step, U steps of loads in flight; grid (N/64, 1, split) like the GEMM. Tells whether the per-row
// segment length, not the decode, limits the weight stream.
template <int B, int U>
__global__ void __launch_bounds__(128) read_rows_kernel(const uint8_t* __restrict__ w, int n, int rowbytes,
                                                        int bytes_per_split, uint32_t* sink) {
  constexpr int LPR = B / 16;          // lanes per row
  constexpr int RPL = 32 / LPR;        // rows per load instruction
  constexpr int J = 16 / RPL;          // loads per lane per step
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int row0 = blockIdx.x * 64 + warp * 16 + lane / LPR;
  const int b0 = blockIdx.z * bytes_per_split, b1 = min(b0 + bytes_per_split, rowbytes);
  uint32_t acc = 0;
  for (int b = b0; b < b1; b += B * U) {
    uint4 v[U][J];
#pragma unroll
    for (int u = 0; u < U; ++u)
#pragma unroll
      for (int j = 0; j < J; ++j) {
        const int r = min(row0 + j * RPL, n - 1);
        const int off = b + u * B + (lane % LPR) * 16;
        v[u][j] = off < b1 ? __ldg(reinterpret_cast<const uint4*>(w + (size_t)r * rowbytes + off)) : make_uint4(0, 0, 0, 0);
      }
#pragma unroll
    for (int u = 0; u < U; ++u)
#pragma unroll
      for (int j = 0; j < J; ++j) acc ^= v[u][j].x ^ v[u][j].y ^ v[u][j].z ^ v[u][j].w;
  }
  if (acc == 0x12345678u) sink[0] = acc;
}

// The flush is a read, as in nvfp4's tuner (nvfp4/tuning/profiler.py): a memset leaves L2 full of dirty lines whose
// write-back the timed kernel pays, and it charges configurations unequally. With the memset this program ranked the
// one-warpgroup 256-wide tile 7% ahead of the 128 x 128 one at 8192x8192 M = 256 (68.7 against 73.3 us) where the
// tuner, same build, another H100, measured it 2% behind (80.0 against 78.1; 2026-12-07,
// results/h100-2026-12-07-tm256-{ab,tuner-check}.txt). The read flush did not close it (2026-12-08, one H100:
// 66.4 us here, 78.8 against 78.0 in the tuner, results/h100-2026-12-08-shfl-ab.txt): the inputs differ too (uniform
// random bytes here, quantized randn there).
constexpr size_t kFlushBytes = 256u << 20;

struct Timer {
  uint4* flush;
  uint32_t* sink;
  cudaEvent_t a, b;
  Timer() {
    CK(cudaMalloc(&flush, kFlushBytes));
    CK(cudaMemset(flush, 0, kFlushBytes));
    CK(cudaMalloc(&sink, 4));
    CK(cudaEventCreate(&a));
    CK(cudaEventCreate(&b));
  }
  template <class F>
  float median_us(F&& f, int reps = 30) {
    std::vector<float> t;
    for (int i = 0; i < reps + 3; ++i) {
      read_kernel<<<1024, 512>>>(flush, kFlushBytes / 16, sink);
      CK(cudaEventRecord(a));
      f();
      CK(cudaEventRecord(b));
      CK(cudaEventSynchronize(b));
      float ms = 0;
      CK(cudaEventElapsedTime(&ms, a, b));
      if (i >= 3) t.push_back(ms * 1e3f);
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
  }
};

struct Problem {
  int n, k, m;
  uint8_t *w, *ws, *x, *xs;
  float *gs, *partials;
  unsigned* counters;
  void* out;
  Problem(int n_, int k_, int m_) : n(n_), k(k_), m(m_) {
    CK(cudaMalloc(&w, (size_t)n * k / 2));
    CK(cudaMalloc(&ws, (size_t)n * k / 16));
    CK(cudaMalloc(&x, (size_t)m * k * 2));
    CK(cudaMalloc(&xs, (size_t)m * k / 16 + 16));
    CK(cudaMalloc(&gs, 16));
    CK(cudaMalloc(&out, (size_t)m * n * 4));
    CK(cudaMalloc(&partials, (size_t)(m >= 1024 ? 2 : 64) * m * n * 4));  // splits: see main()
    CK(cudaMalloc(&counters, 1u << 20));
    CK(cudaMemset(counters, 0, 1u << 20));
    fill_bytes<<<1024, 256>>>(w, (size_t)n * k / 2, 1u, 0, 0);
    fill_bytes<<<1024, 256>>>(ws, (size_t)n * k / 16, 2u, 0x28, 0x20);  // E4M3 2^-3 .. 2^1
    fill_bf16(reinterpret_cast<__nv_bfloat16*>(x), (size_t)m * k, 3u);
    float one = 1.f;
    CK(cudaMemcpy(gs, &one, 4, cudaMemcpyHostToDevice));
    CK(cudaDeviceSynchronize());
  }
  ~Problem() {
    cudaFree(w); cudaFree(ws); cudaFree(x); cudaFree(xs); cudaFree(gs); cudaFree(out); cudaFree(partials);
    cudaFree(counters);
  }
  GemmParams params(int split) const {
    GemmParams p{};
    p.b_data = w; p.b_scale = ws; p.b_gs = gs; p.a = x; p.out = out; p.partials = partials; p.counters = counters;
    p.m = m; p.n = n; p.k = k; p.out_dtype = kOutBF16;
    const int chunks = (k + 127) / 128;
    const int cps = (chunks + split - 1) / split;
    p.chunks_per_split = cps;
    p.split_k = (chunks + cps - 1) / cps;
    return p;
  }
  double weight_bytes() const { return (double)n * k / 2 + (double)n * k / 16; }
};


// Host reference for a small problem: every compiled configuration must match it before anything is timed.
float host_e4m3(uint8_t b) {
  const int s = b >> 7, e = (b >> 3) & 15, m = b & 7;
  const float v = e ? std::ldexp(1.f + m / 8.f, e - 7) : std::ldexp(m / 8.f, -6);
  return s ? -v : v;
}
float host_bf16(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
std::string config_name(const GemmConfig& c) {
  return "tm" + std::to_string(c.tile_m) + "_w" + std::to_string(c.warps) + "_u" + std::to_string(c.unroll) + "_s" +
         std::to_string(c.stages) + (c.kernel == kKernelTmaM1 ? "_tma" : c.kernel == kKernelWgmma ? "_wgmma" : c.kernel == kKernelGemv ? "_gemv" : "") +
         (c.warp_rows != 16 ? "_r" + std::to_string(c.warp_rows) : "");
}

int check_all(const GemmConfig* cfgs, int ncfg) {
  const float e2m1[8] = {0.f, .5f, 1.f, 1.5f, 2.f, 3.f, 4.f, 6.f};
  int bad = 0;
  for (int m : {1, 5, 16, 40, 100, 130})
  for (int k : {512, 640, 3200}) {  // 4 and 5 chunks (the wgmma kernel pairs chunks); 25 (3+ GEMV steps)
    if (k == 3200 && m > 16) continue;
    Problem pr(200, k, m);  // N not a multiple of the tile
    std::vector<uint8_t> w((size_t)pr.n * pr.k / 2), sc((size_t)pr.n * pr.k / 16);
    std::vector<uint16_t> x((size_t)m * pr.k);
    CK(cudaMemcpy(w.data(), pr.w, w.size(), cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(sc.data(), pr.ws, sc.size(), cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(x.data(), pr.x, x.size() * 2, cudaMemcpyDeviceToHost));
    std::vector<double> ref((size_t)m * pr.n), mag((size_t)m * pr.n);
    for (int i = 0; i < m; ++i)
      for (int n = 0; n < pr.n; ++n) {
        double acc = 0, a = 0;
        for (int k = 0; k < pr.k; ++k) {
          const uint8_t byte = w[(size_t)n * pr.k / 2 + k / 2];
          const int code = k & 1 ? byte >> 4 : byte & 15;
          const double wv = (code & 8 ? -1 : 1) * e2m1[code & 7] * host_e4m3(sc[(size_t)n * pr.k / 16 + k / 16]);
          const double t = wv * host_bf16(x[(size_t)i * pr.k + k]);
          acc += t; a += std::fabs(t);
        }
        ref[(size_t)i * pr.n + n] = acc; mag[(size_t)i * pr.n + n] = a;
      }
    for (int c = 0; c < ncfg; ++c)
      for (int split : {1, 3}) {
        GemmParams p = pr.params(split);
        p.out_dtype = kOutFP32;
        CK(cudaMemset(pr.out, 0xFF, (size_t)m * pr.n * 4));  // NaN
        if (launch_gemm(p, kActBF16, cfgs[c], 0) != cudaSuccess) { cudaGetLastError(); continue; }
        std::vector<float> out((size_t)m * pr.n);
        CK(cudaMemcpy(out.data(), pr.out, out.size() * 4, cudaMemcpyDeviceToHost));
        double worst = 0;
        for (size_t i = 0; i < out.size(); ++i) {
          const double err = std::fabs(out[i] - ref[i]) / (mag[i] * 1e-4 + 1e-30);
          if (!(err <= worst)) worst = err;  // NaN counts
        }
        if (!(worst <= 1.0)) {
          ++bad;
          std::printf("MISMATCH m=%d k=%d %s split=%d: worst error %.3g x 1e-4 of sum|terms|\n", m, k,
                      config_name(cfgs[c]).c_str(), split, worst);
        }
      }
  }
  std::printf("check: %d mismatches over %d configurations\n", bad, ncfg);
  return bad;
}

// Quantize against a device-to-device copy of the input (read + write, the bandwidth the benchmark calls HBM's).
// Bandwidth counts the bytes read and written: 2 per value in, 0.5 + 1/16 out.
void time_quantize(Timer& tm) {
  const int shapes[][2] = {{8192, 8192}, {57344, 8192}, {8192, 28672}, {6144, 4096}};
  std::printf("shape,what,us,TBps,fraction_of_copy\n");
  for (auto& s : shapes) {
    const size_t n = (size_t)s[0] * s[1];
    void *src, *dst, *data, *scale;
    float* gs;
    CK(cudaMalloc(&src, n * 2));
    CK(cudaMalloc(&dst, n * 2));
    CK(cudaMalloc(&data, n / 2));
    CK(cudaMalloc(&scale, n / 16 + 65536));
    CK(cudaMalloc(&gs, 4));
    const float one = 1.f;
    CK(cudaMemcpy(gs, &one, 4, cudaMemcpyHostToDevice));
    const float copy_us = tm.median_us([&] { cudaMemcpyAsync(dst, src, n * 2, cudaMemcpyDeviceToDevice, 0); });
    const double copy_tbps = 2.0 * n * 2 / copy_us / 1e6;
    std::printf("%dx%d,copy,%.2f,%.3f,1.00\n", s[0], s[1], copy_us, copy_tbps);
    for (int dtype : {kOutBF16, kOutFP16}) {
      if (dtype == kOutBF16) fill_uniform<<<1024, 256>>>(static_cast<__nv_bfloat16*>(src), n, 9u);
      else fill_uniform<<<1024, 256>>>(static_cast<__half*>(src), n, 9u);
      for (int swz : {0, 1}) {
        auto run = [&] {
          return launch_quantize(src, dtype, gs, static_cast<uint8_t*>(data), static_cast<uint8_t*>(scale), s[0],
                                 s[1], swz, 0);
        };
        CK(run());
        const float us = tm.median_us([&] { run(); });
        const double tbps = n * (2 + 0.5 + 1.0 / 16) / us / 1e6;
        std::printf("%dx%d,quantize_%s_%s,%.2f,%.3f,%.2f\n", s[0], s[1], dtype == kOutBF16 ? "bf16" : "fp16",
                    swz ? "swizzled" : "linear", us, tbps, tbps / copy_tbps);
      }
    }
    CK(cudaFree(src)); CK(cudaFree(dst)); CK(cudaFree(data)); CK(cudaFree(scale)); CK(cudaFree(gs));
  }
}

float time_gemm(Timer& tm, const Problem& pr, GemmConfig c, int split) {
  const GemmParams p = pr.params(split);
  if (launch_gemm(p, kActBF16, c, 0) != cudaSuccess) { cudaGetLastError(); return -1.f; }
  CK(cudaDeviceSynchronize());
  return tm.median_us([&] { launch_gemm(p, kActBF16, c, 0); });
}

}  // namespace

int main(int argc, char** argv) {
  Timer tm;
  uint32_t* sink;
  CK(cudaMalloc(&sink, 4));
  if (argc == 2 && std::strcmp(argv[1], "quantize") == 0) {
    time_quantize(tm);
    return 0;
  }
  int ncfg = 0;
  const GemmConfig* cfgs = gemm_configs(&ncfg);
  if (!std::getenv("MICROBENCH_NO_CHECK") && check_all(cfgs, ncfg)) return 1;  // set it for ncu runs
  if (argc == 10 || argc == 11) {  // one case, a few launches (ncu); argv[10]: warp_rows (default 16)
    Problem pr(atoi(argv[1]), atoi(argv[2]), atoi(argv[3]));
    GemmConfig c{atoi(argv[4]), atoi(argv[5]), atoi(argv[6]), atoi(argv[7]), atoi(argv[8]), argc == 11 ? atoi(argv[10]) : 16};
    std::printf("%.1f us\n", time_gemm(tm, pr, c, atoi(argv[9])));
    return 0;
  }
  const bool read_only = argc == 2 && std::strcmp(argv[1], "read") == 0;  // memory-pattern probes only
  const bool decode_only = argc == 2 && std::strcmp(argv[1], "decode") == 0;  // GEMMs only, M 1, 8, 16
  const bool m1_only = argc == 2 && std::strcmp(argv[1], "m1") == 0;  // M = 1 and the memory probes
  const bool wgmma_only = argc == 2 && std::strcmp(argv[1], "wgmma") == 0;  // wgmma kernels, M 64..4096
  const bool gemm_only = decode_only || wgmma_only || (argc == 2 && std::strcmp(argv[1], "gemm") == 0);  // M 16..1024
  const int shapes[][2] = {{8192, 8192}, {57344, 8192}, {8192, 28672}, {6144, 4096}};
  const std::vector<int> ms = decode_only ? std::vector<int>{1, 8, 16}
                              : m1_only   ? std::vector<int>{1}
                              : wgmma_only ? std::vector<int>{64, 256, 1024, 4096}
                              : gemm_only ? std::vector<int>{16, 64, 128, 256, 1024}
                                        : std::vector<int>{1, 8, 16, 32, 64, 128, 256};
  const int splits[] = {1, 2, 3, 4, 6, 8, 12, 16};
  std::printf("shape,M,config,split,us,weight_TBps\n");
  for (auto& s : shapes) {
    if (!gemm_only) {
      Problem pr(s[0], s[1], 1);
      const size_t n16 = (size_t)pr.n * pr.k / 2 / 16;
      for (int blocks : {132 * 4, 132 * 8, 132 * 16}) {
        const float us = tm.median_us([&] { read_kernel<<<blocks, 512>>>(reinterpret_cast<uint4*>(pr.w), n16, sink); });
        std::printf("%dx%d,read,blocks=%d,0,%.2f,%.3f\n", s[0], s[1], blocks, us, n16 * 16 / us / 1e6);
      }
      for (int sp : {1, 2, 4, 8}) {
        const int rb = pr.k / 2, bps = (rb + sp - 1) / sp;
        const dim3 grid((pr.n + 63) / 64, 1, sp);
#define NVFP4_RR(B, U)                                                                                         \
  {                                                                                                           \
    const float us = tm.median_us([&] { read_rows_kernel<B, U><<<grid, 128>>>(pr.w, pr.n, rb, bps, sink); }); \
    std::printf("%dx%d,rows,B%d_U%d,%d,%.2f,%.3f\n", s[0], s[1], B, U, sp, us, n16 * 16 / us / 1e6);       \
  }
        NVFP4_RR(64, 2) NVFP4_RR(64, 4) NVFP4_RR(128, 2) NVFP4_RR(128, 4) NVFP4_RR(256, 2) NVFP4_RR(512, 1)
        NVFP4_RR(512, 2)
      }
      // quantize: bf16 -> NVFP4 linear
      __nv_bfloat16* src;
      CK(cudaMalloc(&src, (size_t)pr.n * pr.k * 2));
      fill_bf16(src, (size_t)pr.n * pr.k, 9u);
      const float us = tm.median_us([&] { launch_quantize(src, kOutBF16, pr.gs, pr.w, pr.ws, pr.n, pr.k, 0, 0); });
      const double qb = (double)pr.n * pr.k * (2 + 0.5 + 1.0 / 16);
      std::printf("%dx%d,quantize,linear,0,%.2f,%.3f\n", s[0], s[1], us, qb / us / 1e6);
      CK(cudaFree(src));
    }
    for (int m : ms) {
      if (read_only) break;
      Problem pr(s[0], s[1], m);
      for (int i = 0; i < ncfg; ++i) {
        const int tile = cfgs[i].tile_m;  // the tiles the Python heuristic would offer for this M
        if (wgmma_only && cfgs[i].kernel != kKernelWgmma) continue;
        const bool wg = cfgs[i].kernel == kKernelWgmma;
        if (cfgs[i].kernel == kKernelTmaM1 || cfgs[i].kernel == kKernelGemv ? m != 1
            : wg && tile <= 16 ? (m > 16 || tile != std::max(8, m))
            : wg                          ? m < 16
            : m <= 32                     ? tile != std::max(8, m)
                                          : (tile < 32 || tile > 2 * m || 4 * tile < m))
          continue;
        float best = 1e30f; int best_split = 0;
        for (int sp : splits) {
          if (m >= 1024 && sp > 2) break;  // compute-bound: the grid already fills the GPU
          const float us = time_gemm(tm, pr, cfgs[i], sp);
          if (us > 0 && us < best) { best = us; best_split = sp; }
        }
        std::printf("%dx%d,%d,%s,%d,%.2f,%.3f\n", s[0], s[1], m, config_name(cfgs[i]).c_str(), best_split, best,
                    pr.weight_bytes() / best / 1e6);
      }
    }
  }
  return 0;
}

#include "lt_library.h"

#include <dlfcn.h>

#include <mutex>
#include <stdexcept>

namespace nvfp4lt {
namespace {

LtApi g_api;
bool g_loaded = false;
std::string g_path;
std::mutex g_mutex;

template <typename F>
bool resolve(void* lib, const char* name, F& slot, std::string& missing) {
  slot = reinterpret_cast<F>(dlsym(lib, name));
  if (!slot) missing += std::string(missing.empty() ? "" : ", ") + name;
  return slot != nullptr;
}

}  // namespace

const LtApi& lt() {
  if (!g_loaded) throw std::runtime_error("cuBLASLt is not loaded (call load_library first)");
  return g_api;
}

bool lt_loaded() { return g_loaded; }
std::string lt_loaded_path() { return g_path; }
int lt_header_major() { return CUBLAS_VER_MAJOR; }
int lt_header_version() { return CUBLAS_VERSION; }

std::string lt_load(const std::string& path) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_loaded) return "";
  // RTLD_LOCAL: our symbols never clash with a cuBLASLt that torch or another library loaded.
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char* err = dlerror();
    return err ? err : ("dlopen failed for " + path);
  }
  LtApi api;
  std::string missing;
  resolve(lib, "cublasLtCreate", api.Create, missing);
  resolve(lib, "cublasLtDestroy", api.Destroy, missing);
  resolve(lib, "cublasLtGetVersion", api.GetVersion, missing);
  resolve(lib, "cublasLtGetStatusString", api.GetStatusString, missing);
  resolve(lib, "cublasLtMatmulDescCreate", api.MatmulDescCreate, missing);
  resolve(lib, "cublasLtMatmulDescDestroy", api.MatmulDescDestroy, missing);
  resolve(lib, "cublasLtMatmulDescSetAttribute", api.MatmulDescSetAttribute, missing);
  resolve(lib, "cublasLtMatrixLayoutCreate", api.MatrixLayoutCreate, missing);
  resolve(lib, "cublasLtMatrixLayoutDestroy", api.MatrixLayoutDestroy, missing);
  resolve(lib, "cublasLtMatmulPreferenceCreate", api.MatmulPreferenceCreate, missing);
  resolve(lib, "cublasLtMatmulPreferenceDestroy", api.MatmulPreferenceDestroy, missing);
  resolve(lib, "cublasLtMatmulPreferenceSetAttribute", api.MatmulPreferenceSetAttribute, missing);
  resolve(lib, "cublasLtMatmulAlgoGetHeuristic", api.MatmulAlgoGetHeuristic, missing);
  resolve(lib, "cublasLtMatmulAlgoInit", api.MatmulAlgoInit, missing);
  resolve(lib, "cublasLtMatmulAlgoConfigSetAttribute", api.MatmulAlgoConfigSetAttribute, missing);
  resolve(lib, "cublasLtMatmulAlgoConfigGetAttribute", api.MatmulAlgoConfigGetAttribute, missing);
  resolve(lib, "cublasLtMatmulAlgoCheck", api.MatmulAlgoCheck, missing);
  resolve(lib, "cublasLtMatmul", api.Matmul, missing);
  if (!missing.empty()) {
    dlclose(lib);
    return path + " lacks " + missing;
  }
  size_t version = api.GetVersion();
  if (static_cast<int>(version / 10000) != CUBLAS_VER_MAJOR) {
    dlclose(lib);
    return path + " is cuBLASLt " + std::to_string(version) + ", but this module was built against major version " +
           std::to_string(CUBLAS_VER_MAJOR);
  }
  g_api = api;
  g_path = path;
  g_loaded = true;  // never dlclose'd: plans and handles hold pointers into it
  return "";
}

std::string lt_status_string(cublasStatus_t s) {
  if (g_loaded && g_api.GetStatusString) return g_api.GetStatusString(s);
  return "cublasStatus " + std::to_string(static_cast<int>(s));
}

}  // namespace nvfp4lt

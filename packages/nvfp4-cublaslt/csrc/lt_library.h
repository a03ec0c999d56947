// cuBLASLt opened at run time (dlopen): a missing or unloadable library is an availability reason the
// Python side reports, never an import failure. The function pointers carry the header's own types.
#pragma once

#include <cublasLt.h>

#include <string>

namespace nvfp4lt {

struct LtApi {
  decltype(&cublasLtCreate) Create = nullptr;
  decltype(&cublasLtDestroy) Destroy = nullptr;
  decltype(&cublasLtGetVersion) GetVersion = nullptr;
  decltype(&cublasLtGetStatusString) GetStatusString = nullptr;
  decltype(&cublasLtMatmulDescCreate) MatmulDescCreate = nullptr;
  decltype(&cublasLtMatmulDescDestroy) MatmulDescDestroy = nullptr;
  decltype(&cublasLtMatmulDescSetAttribute) MatmulDescSetAttribute = nullptr;
  decltype(&cublasLtMatrixLayoutCreate) MatrixLayoutCreate = nullptr;
  decltype(&cublasLtMatrixLayoutDestroy) MatrixLayoutDestroy = nullptr;
  decltype(&cublasLtMatmulPreferenceCreate) MatmulPreferenceCreate = nullptr;
  decltype(&cublasLtMatmulPreferenceDestroy) MatmulPreferenceDestroy = nullptr;
  decltype(&cublasLtMatmulPreferenceSetAttribute) MatmulPreferenceSetAttribute = nullptr;
  decltype(&cublasLtMatmulAlgoGetHeuristic) MatmulAlgoGetHeuristic = nullptr;
  decltype(&cublasLtMatmulAlgoInit) MatmulAlgoInit = nullptr;
  decltype(&cublasLtMatmulAlgoConfigSetAttribute) MatmulAlgoConfigSetAttribute = nullptr;
  decltype(&cublasLtMatmulAlgoConfigGetAttribute) MatmulAlgoConfigGetAttribute = nullptr;
  decltype(&cublasLtMatmulAlgoCheck) MatmulAlgoCheck = nullptr;
  decltype(&cublasLtMatmul) Matmul = nullptr;
};

// The loaded API; throws std::runtime_error when no library is loaded.
const LtApi& lt();
bool lt_loaded();
// Opens `path` (a file path or a soname) and resolves every symbol. Returns "" on success, else why not.
// A library already loaded stays loaded: the first success wins.
std::string lt_load(const std::string& path);
std::string lt_loaded_path();
// Major version of the headers this module was built against: the soname to load is libcublasLt.so.<major>.
int lt_header_major();
int lt_header_version();

// "CUBLAS_STATUS_..." for a status, through the library when it is loaded.
std::string lt_status_string(cublasStatus_t s);

}  // namespace nvfp4lt

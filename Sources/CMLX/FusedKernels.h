// Internal C++ interface of the fused row-wise kernels (FusedKernels.cpp) for the C shim.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "mlx/array.h"

namespace cmlx_fused {
namespace mx = mlx::core;

/// Each over the last axis. Float32 on the CPU goes through one fused primitive (with its
/// own VJP); anything else gets MLX's own expression, the same one as `reference_*`.
mx::array softmax(const mx::array &x);
mx::array log_softmax(const mx::array &x);
mx::array logsumexp(const mx::array &x, bool keepdims);
mx::array layer_norm(const mx::array &x, const std::optional<mx::array> &w,
                     const std::optional<mx::array> &b, float eps);
mx::array rms_norm(const mx::array &x, const std::optional<mx::array> &w, float eps);

/// MLX's scaled dot-product attention (q [B, H, Lq, D], k/v [B, Hkv, Lk, D]; mode "",
/// "causal" or "array") built from matmuls and the fused softmax for float32 on the CPU.
mx::array attention(const mx::array &q, const mx::array &k, const mx::array &v, float scale,
                    const std::string &mode, const std::optional<mx::array> &mask);

/// MLX's own ops for the same results (what TensorKit built before the fused kernels).
mx::array reference_softmax(const mx::array &x);
mx::array reference_log_softmax(const mx::array &x);
mx::array reference_logsumexp(const mx::array &x, bool keepdims);

/// Runs a row kernel over host buffers (tests): see cmlx_fused_rows_host in CMLX.h.
int rows_host(int kind, const float *const *inputs, float *const *outputs, size_t rows,
              size_t d, float eps, bool simd);
}  // namespace cmlx_fused

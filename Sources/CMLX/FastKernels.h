// Internal C++ interface of the fast kernels (FastKernels.cpp) for the C shim.
#pragma once

#include <cstddef>

#include "mlx/array.h"

namespace cmlx_fast {
/// The op through the fast primitive (float32 on the CPU), else MLX's own expression.
mlx::core::array fast_unary(int op, const mlx::core::array &x);
/// MLX's own expression for the op (what TensorKit computed before the fast path).
mlx::core::array reference(int op, const mlx::core::array &x);
/// Runs kernel `op` over host buffers (threads for large n); `in` may equal `out`.
/// simd = false forces the scalar code (which must give the same bits).
void apply(int op, const float *in, float *out, size_t n, bool simd = true);
bool simd_available();
bool is_enabled();
void set_enabled(bool on);
}  // namespace cmlx_fast

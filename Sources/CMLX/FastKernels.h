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
/// task(ctx, lo, hi) over [0, units): split across the pool's threads when `work` (elements
/// touched) is large enough, else run inline. Ranges are contiguous and cover every unit once.
using RangeTask = void (*)(const void *ctx, size_t lo, size_t hi);
void parallel_for(size_t units, size_t work, RangeTask task, const void *ctx);
bool is_enabled();
void set_enabled(bool on);
}  // namespace cmlx_fast

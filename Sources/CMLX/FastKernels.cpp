// Fast float32 CPU kernels for transcendental activations, registered as an MLX primitive
// so autodiff, vmap and compile still see one op. MLX's own CPU versions of these ops were
// 30-80x slower than NumPy's SIMD ones on this machine (see FINDINGS.md).
#include "FastKernels.h"

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "CMLX.h"
#include "mlx/backend/common/unary.h"
#include "mlx/backend/cpu/encoder.h"
#include "mlx/mlx.h"
#include "mlx/primitives.h"

#include "FastKernelsLanes.h"

namespace mx = mlx::core;

namespace cmlx_fast {

using Kernel = void (*)(const float *, float *, size_t);

namespace scalar {
template <F (*fn)(F)>
void run(const float *in, float *out, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = fn(in[i]);
}
}  // namespace scalar

#ifdef CMLX_HAVE_AVX2_PATH
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
namespace avx2 {
// The tail goes through the same 8-lane code (padded), so every element's result is
// independent of where a thread's chunk starts.
template <F (*fn)(F)>
void run(const float *in, float *out, size_t n) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    F a = fn(F{_mm256_loadu_ps(in + i)});
    F b = fn(F{_mm256_loadu_ps(in + i + 8)});
    _mm256_storeu_ps(out + i, a.v);
    _mm256_storeu_ps(out + i + 8, b.v);
  }
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, fn(F{_mm256_loadu_ps(in + i)}).v);
  if (i < n) {
    alignas(32) float buf[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    std::memcpy(buf, in + i, (n - i) * sizeof(float));
    _mm256_store_ps(buf, fn(F{_mm256_load_ps(buf)}).v);
    std::memcpy(out + i, buf, (n - i) * sizeof(float));
  }
}
}  // namespace avx2
#pragma clang attribute pop
#endif

#define CMLX_KERNEL_TABLE(NS)                                                           \
  {NS::run<NS::k_exp>,       NS::run<NS::k_tanh>,      NS::run<NS::k_sigmoid>,          \
   NS::run<NS::k_silu>,      NS::run<NS::k_erf>,       NS::run<NS::k_gelu>,             \
   NS::run<NS::k_gelu_tanh>, NS::run<NS::k_silu_grad>, NS::run<NS::k_erf_grad>,         \
   NS::run<NS::k_gelu_grad>, NS::run<NS::k_gelu_tanh_grad>}

static_assert(CMLX_FAST_GELU_TANH_GRAD == 10, "kernel table order follows cmlx_fast_op");

bool simd_available() {
#ifdef CMLX_HAVE_AVX2_PATH
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return ok;
#else
  return false;
#endif
}

Kernel kernel_for(int op, bool simd) {
  static const Kernel scalar_table[] = CMLX_KERNEL_TABLE(scalar);
#ifdef CMLX_HAVE_AVX2_PATH
  static const Kernel simd_table[] = CMLX_KERNEL_TABLE(avx2);
  if (simd && simd_available()) return simd_table[op];
#endif
  return scalar_table[op];
}

// ---- a tiny pool: the caller runs part 0, parked workers run the rest ----
namespace {
class Pool {
 public:
  explicit Pool(int workers) : workers_(workers) {
    for (int w = 0; w < workers; ++w) std::thread([this, w] { loop(w + 1); }).detach();
  }
  int parts() const { return workers_ + 1; }

  // Splits [0, units) into parts() contiguous ranges. Returns false (and runs nothing) when
  // another caller holds the pool.
  bool run(RangeTask task, const void *ctx, size_t units) {
    std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
    if (!busy.owns_lock()) return false;
    {
      std::lock_guard<std::mutex> lock(m_);
      task_ = task, ctx_ = ctx, units_ = units;
      pending_ = workers_;
      ++generation_;
    }
    wake_.notify_all();
    chunk(0);
    std::unique_lock<std::mutex> lock(m_);
    done_.wait(lock, [this] { return pending_ == 0; });
    return true;
  }

 private:
  void chunk(int part) {
    size_t lo = units_ * part / parts();
    size_t hi = units_ * (part + 1) / parts();
    if (hi > lo) task_(ctx_, lo, hi);
  }
  void loop(int part) {
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(m_);
        wake_.wait(lock, [&] { return generation_ != seen; });
        seen = generation_;
      }
      chunk(part);
      std::lock_guard<std::mutex> lock(m_);
      if (--pending_ == 0) done_.notify_one();
    }
  }

  int workers_;
  std::mutex busy_, m_;
  std::condition_variable wake_, done_;
  uint64_t generation_ = 0;
  int pending_ = 0;
  RangeTask task_ = nullptr;
  const void *ctx_ = nullptr;
  size_t units_ = 0;
};

Pool &pool() {
  // Leaked on purpose: parked workers must not race static destruction at exit.
  static Pool *p = new Pool(std::max(1u, std::min(std::thread::hardware_concurrency(), 8u)) - 1);
  return *p;
}

// Below this the whole job takes tens of µs, comparable to waking a parked thread.
constexpr size_t kParallelThreshold = 1 << 16;

struct ElementwiseJob {
  Kernel k;
  const float *in;
  float *out;
  size_t n;
};
// Units are blocks of 16 floats (64 bytes) so threads never share a cache line.
void elementwise_range(const void *ctx, size_t lo, size_t hi) {
  auto &job = *static_cast<const ElementwiseJob *>(ctx);
  size_t a = std::min(job.n, lo * 16), b = std::min(job.n, hi * 16);
  if (b > a) job.k(job.in + a, job.out + a, b - a);
}
}  // namespace

void parallel_for(size_t units, size_t work, RangeTask task, const void *ctx) {
  if (work >= kParallelThreshold && units > 1 && pool().parts() > 1 && pool().run(task, ctx, units))
    return;
  if (units > 0) task(ctx, 0, units);
}

void apply(int op, const float *in, float *out, size_t n, bool simd) {
  ElementwiseJob job{kernel_for(op, simd), in, out, n};
  parallel_for((n + 15) / 16, n, elementwise_range, &job);
}

// ---- the MLX primitive ----
// MLX's CommandEncoder::dispatch uses std::bind, which libstdc++ 12 flags as deprecated
// under C++20 (MLX's own unary ops compile the same code). Templates instantiate at the end
// of the file, so the warning is silenced from here on rather than pushed and popped.
#pragma clang diagnostic ignored "-Wdeprecated-declarations"
namespace {

const char *const kNames[] = {
    "FastExp",      "FastTanh",     "FastSigmoid",  "FastSiLU",        "FastErf",
    "FastGELU",     "FastGELUTanh", "FastSiLUGrad", "FastErfGrad",     "FastGELUGrad",
    "FastGELUTanhGrad",
};

mx::array fast(int op, const mx::array &x);

class FastUnary : public mx::UnaryPrimitive {
 public:
  FastUnary(mx::Stream s, int op) : mx::UnaryPrimitive(s), op_(op) {}

  void eval_cpu(const std::vector<mx::array> &inputs, mx::array &out) override {
    const auto &in = inputs[0];
    mx::set_unary_output_data(in, out);
    auto &encoder = mx::cpu::get_command_encoder(stream());
    encoder.set_input_array(in);
    encoder.set_output_array(out);
    // Same pattern as MLX's own unary ops: the work runs later on the stream's thread.
    encoder.dispatch([in = mx::array::unsafe_weak_copy(in),
                      out = mx::array::unsafe_weak_copy(out), op = op_]() mutable {
      if (in.flags().contiguous) {
        apply(op, in.data<float>(), out.data<float>(), in.data_size());
        return;
      }
      // Strided input (e.g. a transposed view): gather row-major, then run in place.
      float *dst = out.data<float>();
      const float *src = in.data<float>();
      const auto &shape = in.shape();
      const auto &strides = in.strides();
      std::vector<int64_t> idx(shape.size(), 0);
      int64_t offset = 0;
      for (size_t e = 0; e < in.size(); ++e) {
        dst[e] = src[offset];
        for (int d = static_cast<int>(shape.size()) - 1; d >= 0; --d) {
          offset += strides[d];
          if (++idx[d] < shape[d]) break;
          offset -= strides[d] * shape[d];
          idx[d] = 0;
        }
      }
      apply(op, dst, dst, in.size());
    });
  }
  void eval_gpu(const std::vector<mx::array> &, mx::array &) override {
    throw std::runtime_error("fast kernels run on the CPU only");
  }

  std::vector<mx::array> vjp(const std::vector<mx::array> &primals,
                             const std::vector<mx::array> &cotangents, const std::vector<int> &,
                             const std::vector<mx::array> &outputs) override {
    return {mx::multiply(cotangents[0], derivative(primals[0], &outputs[0]))};
  }
  std::vector<mx::array> jvp(const std::vector<mx::array> &primals,
                             const std::vector<mx::array> &tangents,
                             const std::vector<int> &) override {
    return {mx::multiply(tangents[0], derivative(primals[0], nullptr))};
  }
  std::pair<std::vector<mx::array>, std::vector<int>> vmap(
      const std::vector<mx::array> &inputs, const std::vector<int> &axes) override {
    return {{fast(op_, inputs[0])}, axes};
  }
  const char *name() const override { return kNames[op_]; }
  bool is_equivalent(const mx::Primitive &other) const override {
    auto o = dynamic_cast<const FastUnary *>(&other);
    return o != nullptr && o->op_ == op_;
  }
  std::vector<mx::Shape> output_shapes(const std::vector<mx::array> &inputs) override {
    return {inputs[0].shape()};
  }

 private:
  // f'(x), from the forward output where that is cheapest. Second derivatives (of the
  // *_GRAD ops) are plain MLX expressions over fast first-order ops.
  mx::array derivative(const mx::array &x, const mx::array *out) const {
    auto y = [&] { return out ? *out : fast(op_, x); };
    auto one = mx::array(1.0f);
    switch (op_) {
      case CMLX_FAST_EXP: return y();
      case CMLX_FAST_TANH: { auto t = y(); return mx::subtract(one, mx::multiply(t, t)); }
      case CMLX_FAST_SIGMOID: { auto s = y(); return mx::multiply(s, mx::subtract(one, s)); }
      case CMLX_FAST_SILU: return fast(CMLX_FAST_SILU_GRAD, x);
      case CMLX_FAST_ERF: return fast(CMLX_FAST_ERF_GRAD, x);
      case CMLX_FAST_GELU: return fast(CMLX_FAST_GELU_GRAD, x);
      case CMLX_FAST_GELU_TANH: return fast(CMLX_FAST_GELU_TANH_GRAD, x);
      case CMLX_FAST_SILU_GRAD: {  // σ(1-σ)(2 + x(1-2σ))
        auto s = fast(CMLX_FAST_SIGMOID, x);
        auto g = mx::multiply(s, mx::subtract(one, s));
        auto inner = mx::add(mx::array(2.0f),
                             mx::multiply(x, mx::subtract(one, mx::multiply(mx::array(2.0f), s))));
        return mx::multiply(g, inner);
      }
      case CMLX_FAST_ERF_GRAD:  // -2x·erf'(x)
        return mx::multiply(mx::multiply(mx::array(-2.0f), x), fast(CMLX_FAST_ERF_GRAD, x));
      case CMLX_FAST_GELU_GRAD: {  // φ(x)(2 - x²)
        auto pdf = mx::multiply(mx::array(0.398942280f),
                                fast(CMLX_FAST_EXP, mx::multiply(mx::array(-0.5f), mx::square(x))));
        return mx::multiply(pdf, mx::subtract(mx::array(2.0f), mx::square(x)));
      }
      case CMLX_FAST_GELU_TANH_GRAD: {  // g(2v' + x(1-2σ)v'² + x v''), g = σ(1-σ), v = 2u
        auto z = mx::square(x);
        auto v = mx::multiply(x, mx::add(mx::array(1.59576912f), mx::multiply(mx::array(0.0713548162f), z)));
        auto dv = mx::add(mx::array(1.59576912f), mx::multiply(mx::array(0.214064449f), z));
        auto ddv = mx::multiply(mx::array(0.428128898f), x);
        auto s = fast(CMLX_FAST_SIGMOID, v);
        auto g = mx::multiply(s, mx::subtract(one, s));
        auto t1 = mx::multiply(mx::array(2.0f), dv);
        auto t2 = mx::multiply(mx::multiply(x, mx::subtract(one, mx::multiply(mx::array(2.0f), s))),
                               mx::square(dv));
        auto t3 = mx::multiply(x, ddv);
        return mx::multiply(g, mx::add(mx::add(t1, t2), t3));
      }
    }
    throw std::invalid_argument("unknown fast op");
  }

  int op_;
};

mx::array fast(int op, const mx::array &x) {
  auto s = mx::default_stream(mx::Device::cpu);
  return mx::array(x.shape(), mx::float32, std::make_shared<FastUnary>(s, op), {x});
}

}  // namespace

// MLX's own ops, the same expressions TensorKit used before the fast path.
mx::array reference(int op, const mx::array &x) {
  auto half = [&](double v) { return mx::astype(mx::array(v), x.dtype()); };
  switch (op) {
    case CMLX_FAST_EXP: return mx::exp(x);
    case CMLX_FAST_TANH: return mx::tanh(x);
    case CMLX_FAST_SIGMOID: return mx::sigmoid(x);
    case CMLX_FAST_SILU: return mx::multiply(x, mx::sigmoid(x));
    case CMLX_FAST_ERF: return mx::erf(x);
    case CMLX_FAST_GELU:
      return mx::multiply(mx::multiply(x, mx::add(mx::erf(mx::multiply(x, half(0.7071067811865476))),
                                                  half(1))),
                          half(0.5));
    case CMLX_FAST_GELU_TANH: {
      auto inner = mx::multiply(mx::add(x, mx::multiply(mx::multiply(mx::multiply(x, x), x),
                                                        half(0.044715))),
                                half(0.7978845608028654));
      return mx::multiply(mx::multiply(x, mx::add(mx::tanh(inner), half(1))), half(0.5));
    }
    case CMLX_FAST_SILU_GRAD: {
      auto s = mx::sigmoid(x);
      return mx::multiply(s, mx::add(half(1), mx::multiply(x, mx::subtract(half(1), s))));
    }
    case CMLX_FAST_ERF_GRAD:
      return mx::multiply(half(1.1283791670955126), mx::exp(mx::negative(mx::square(x))));
    case CMLX_FAST_GELU_GRAD: {
      auto cdf = mx::multiply(mx::add(mx::erf(mx::multiply(x, half(0.7071067811865476))), half(1)),
                              half(0.5));
      auto pdf = mx::multiply(half(0.3989422804014327),
                              mx::exp(mx::multiply(half(-0.5), mx::square(x))));
      return mx::add(cdf, mx::multiply(x, pdf));
    }
    case CMLX_FAST_GELU_TANH_GRAD: {
      auto z = mx::square(x);
      auto v = mx::multiply(x, mx::add(half(1.5957691216057308), mx::multiply(half(0.0713548162), z)));
      auto dv = mx::add(half(1.5957691216057308), mx::multiply(half(0.2140644487), z));
      auto s = mx::sigmoid(v);
      return mx::add(s, mx::multiply(mx::multiply(x, mx::multiply(s, mx::subtract(half(1), s))), dv));
    }
  }
  throw std::invalid_argument("unknown fast op " + std::to_string(op));
}

mx::array fast_unary(int op, const mx::array &x) {
  if (op < 0 || op > CMLX_FAST_GELU_TANH_GRAD)
    throw std::invalid_argument("unknown fast op " + std::to_string(op));
  // The kernels are float32 CPU code; anything else takes MLX's path.
  if (x.dtype() != mx::float32 || mx::default_device() != mx::Device::cpu) return reference(op, x);
  return fast(op, x);
}

namespace {
std::atomic<bool> enabled{true};
}
bool is_enabled() { return enabled.load(std::memory_order_relaxed); }
void set_enabled(bool on) { enabled.store(on, std::memory_order_relaxed); }

}  // namespace cmlx_fast

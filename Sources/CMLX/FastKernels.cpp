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

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define CMLX_HAVE_AVX2_PATH 1
#endif

namespace mx = mlx::core;

namespace cmlx_fast {

using Kernel = void (*)(const float *, float *, size_t);

// ---- scalar lane type (fallback, and the reference shape of the vector code) ----
namespace scalar {
using F = float;
static inline F splat(float v) { return v; }
static inline F fmadd(F a, F b, F c) { return std::fma(a, b, c); }
// minps/maxps semantics: the second operand wins when the first is NaN.
static inline F fmin_(F a, F b) { return a < b ? a : b; }
static inline F fmax_(F a, F b) { return a > b ? a : b; }
static inline F fabs_(F a) { return std::fabs(a); }
static inline F round_(F a) { return std::nearbyint(a); }
static inline bool lt(F a, F b) { return a < b; }
static inline bool ge(F a, F b) { return a >= b; }
static inline bool isnan_(F a) { return a != a; }
static inline bool all_(bool m) { return m; }
static inline F select(bool m, F a, F b) { return m ? a : b; }
static inline F copysign_(F mag, F sign) { return std::copysign(mag, sign); }
static inline F pow2(int k) {
  uint32_t bits = static_cast<uint32_t>(k + 127) << 23;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
static inline F scale2(F p, F n) {
  int k = static_cast<int>(n);
  int k1 = k >> 1;
  return p * pow2(k1) * pow2(k - k1);
}
#include "FastKernelsMath.h"

template <F (*fn)(F)>
void run(const float *in, float *out, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = fn(in[i]);
}
}  // namespace scalar

#ifdef CMLX_HAVE_AVX2_PATH
// Compiled for AVX2+FMA whatever the target's flags; used only when the CPU reports both.
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
namespace avx2 {
struct F {
  __m256 v;
};
static inline F splat(float v) { return {_mm256_set1_ps(v)}; }
static inline F operator+(F a, F b) { return {_mm256_add_ps(a.v, b.v)}; }
static inline F operator-(F a, F b) { return {_mm256_sub_ps(a.v, b.v)}; }
static inline F operator*(F a, F b) { return {_mm256_mul_ps(a.v, b.v)}; }
static inline F operator/(F a, F b) { return {_mm256_div_ps(a.v, b.v)}; }
static inline F operator-(F a) { return {_mm256_xor_ps(a.v, _mm256_set1_ps(-0.0f))}; }
static inline F fmadd(F a, F b, F c) { return {_mm256_fmadd_ps(a.v, b.v, c.v)}; }
static inline F fmin_(F a, F b) { return {_mm256_min_ps(a.v, b.v)}; }
static inline F fmax_(F a, F b) { return {_mm256_max_ps(a.v, b.v)}; }
static inline F fabs_(F a) { return {_mm256_andnot_ps(_mm256_set1_ps(-0.0f), a.v)}; }
static inline F round_(F a) {
  return {_mm256_round_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)};
}
static inline F lt(F a, F b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_LT_OQ)}; }
static inline F ge(F a, F b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_GE_OQ)}; }
static inline F isnan_(F a) { return {_mm256_cmp_ps(a.v, a.v, _CMP_UNORD_Q)}; }
static inline bool all_(F m) { return _mm256_movemask_ps(m.v) == 0xFF; }
static inline F select(F m, F a, F b) { return {_mm256_blendv_ps(b.v, a.v, m.v)}; }
static inline F copysign_(F mag, F sign) {
  __m256 s = _mm256_set1_ps(-0.0f);
  return {_mm256_or_ps(_mm256_andnot_ps(s, mag.v), _mm256_and_ps(s, sign.v))};
}
static inline F scale2(F p, F n) {
  __m256i k = _mm256_cvtps_epi32(n.v);
  __m256i k1 = _mm256_srai_epi32(k, 1);
  __m256i k2 = _mm256_sub_epi32(k, k1);
  __m256i bias = _mm256_set1_epi32(127);
  __m256 f1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k1, bias), 23));
  __m256 f2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k2, bias), 23));
  return {_mm256_mul_ps(_mm256_mul_ps(p.v, f1), f2)};
}
#include "FastKernelsMath.h"

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

// ---- a tiny pool: the caller runs chunk 0, parked workers run the rest ----
namespace {
class Pool {
 public:
  explicit Pool(int workers) : workers_(workers) {
    for (int w = 0; w < workers; ++w) std::thread([this, w] { loop(w + 1); }).detach();
  }
  int parts() const { return workers_ + 1; }

  // Returns false (and runs nothing) when another caller holds the pool.
  bool run(Kernel k, const float *in, float *out, size_t n) {
    std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
    if (!busy.owns_lock()) return false;
    {
      std::lock_guard<std::mutex> lock(m_);
      k_ = k, in_ = in, out_ = out, n_ = n;
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
    // Chunk bounds are multiples of 16 floats (64 bytes) so threads never share a line.
    size_t blocks = (n_ + 15) / 16;
    size_t lo = std::min(n_, blocks * part / parts() * 16);
    size_t hi = std::min(n_, blocks * (part + 1) / parts() * 16);
    if (hi > lo) k_(in_ + lo, out_ + lo, hi - lo);
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
  Kernel k_ = nullptr;
  const float *in_ = nullptr;
  float *out_ = nullptr;
  size_t n_ = 0;
};

Pool &pool() {
  // Leaked on purpose: parked workers must not race static destruction at exit.
  static Pool *p = new Pool(std::max(1u, std::min(std::thread::hardware_concurrency(), 8u)) - 1);
  return *p;
}

// Below this the whole job takes tens of µs, comparable to waking a parked thread.
constexpr size_t kParallelThreshold = 1 << 16;
}  // namespace

void apply(int op, const float *in, float *out, size_t n, bool simd) {
  Kernel k = kernel_for(op, simd);
  if (n >= kParallelThreshold && pool().parts() > 1 && pool().run(k, in, out, n)) return;
  k(in, out, n);
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

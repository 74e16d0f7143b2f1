// Fused row-wise float32 CPU kernels over the last axis: softmax, log-softmax, logsumexp,
// LayerNorm and RMSNorm, with fused backward kernels. Each is an MLX primitive so autodiff
// and compile see one op. MLX's CPU softmax/logsumexp go through its scalar exp (~17-20
// ns/element here); the fused kernels reuse the AVX2 exp of FastKernelsMath.h.
#include "FusedKernels.h"

#include <algorithm>
#include <functional>
#include <stdexcept>
#include <vector>

#include "CMLX.h"
#include "FastKernels.h"
#include "FastKernelsLanes.h"
#include "mlx/backend/cpu/encoder.h"
#include "mlx/fast.h"
#include "mlx/mlx.h"
#include "mlx/primitives.h"

namespace cmlx_fast {

// 8 floats through the scalar math lane by lane: the fallback, bit-identical to avx2.
namespace emu8 {
struct F {
  float l[8];
};
#define CMLX_LANEWISE(expr)              \
  F r;                                   \
  for (int k = 0; k < 8; ++k) r.l[k] = expr; \
  return r
static inline F splat(float v) { CMLX_LANEWISE(v); }
static inline F operator+(F a, F b) { CMLX_LANEWISE(a.l[k] + b.l[k]); }
static inline F operator-(F a, F b) { CMLX_LANEWISE(a.l[k] - b.l[k]); }
static inline F operator*(F a, F b) { CMLX_LANEWISE(a.l[k] * b.l[k]); }
static inline F fmadd(F a, F b, F c) { CMLX_LANEWISE(std::fma(a.l[k], b.l[k], c.l[k])); }
static inline F fmax_(F a, F b) { CMLX_LANEWISE(scalar::fmax_(a.l[k], b.l[k])); }
static inline F vexp(F a) { CMLX_LANEWISE(scalar::k_exp(a.l[k])); }
#undef CMLX_LANEWISE
static inline F load(const float *p) {
  F r;
  std::memcpy(r.l, p, sizeof r.l);
  return r;
}
static inline void store(float *p, F v) { std::memcpy(p, v.l, sizeof v.l); }
static inline F load_n(const float *p, size_t n, float fill) {
  F r = splat(fill);
  std::memcpy(r.l, p, n * sizeof(float));
  return r;
}
static inline void store_n(float *p, F v, size_t n) { std::memcpy(p, v.l, n * sizeof(float)); }
// The lane order of avx2's hsum/hmax: (l_i ∘ l_i+4), then (∘ +2), then (∘ +1).
template <float (*op)(float, float)>
static inline float fold(F v) {
  float s[4], t[2];
  for (int k = 0; k < 4; ++k) s[k] = op(v.l[k], v.l[k + 4]);
  for (int k = 0; k < 2; ++k) t[k] = op(s[k], s[k + 2]);
  return op(t[0], t[1]);
}
static inline float add_(float a, float b) { return a + b; }
static inline float hsum(F v) { return fold<add_>(v); }
static inline float hmax(F v) { return fold<scalar::fmax_>(v); }
#include "FusedKernelsRows.h"
}  // namespace emu8

#ifdef CMLX_HAVE_AVX2_PATH
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
namespace avx2 {
static inline F vexp(F a) { return k_exp(a); }
static inline F load(const float *p) { return {_mm256_loadu_ps(p)}; }
static inline void store(float *p, F v) { _mm256_storeu_ps(p, v.v); }
static inline F load_n(const float *p, size_t n, float fill) {
  alignas(32) float buf[8] = {fill, fill, fill, fill, fill, fill, fill, fill};
  std::memcpy(buf, p, n * sizeof(float));
  return {_mm256_load_ps(buf)};
}
static inline void store_n(float *p, F v, size_t n) {
  alignas(32) float buf[8];
  _mm256_store_ps(buf, v.v);
  std::memcpy(p, buf, n * sizeof(float));
}
static inline float hsum(F v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v.v), _mm256_extractf128_ps(v.v, 1));
  __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}
static inline float hmax(F v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v.v), _mm256_extractf128_ps(v.v, 1));
  __m128 t = _mm_max_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_max_ss(t, _mm_shuffle_ps(t, t, 1)));
}
#include "FusedKernelsRows.h"
}  // namespace avx2
#pragma clang attribute pop
#endif

}  // namespace cmlx_fast

namespace cmlx_fused {
namespace {

using cmlx_fast::parallel_for;

struct RowFns {
  void (*softmax)(const float *, float *, size_t);
  void (*log_softmax)(const float *, float *, size_t);
  float (*logsumexp)(const float *, size_t);
  void (*softmax_bwd)(const float *, const float *, float *, size_t);
  void (*log_softmax_bwd)(const float *, const float *, float *, size_t);
  void (*layer_norm)(const float *, const float *, const float *, float *, size_t, float);
  void (*rms_norm)(const float *, const float *, float *, size_t, float);
  void (*ln_bwd)(const float *, const float *, const float *, float *, float *, float *, size_t, float);
  void (*rms_bwd)(const float *, const float *, const float *, float *, float *, float *, size_t, float);
};
#define CMLX_ROW_FNS(NS)                                                                     \
  RowFns {                                                                                   \
    NS::softmax_row, NS::log_softmax_row, NS::logsumexp_row, NS::softmax_bwd_row,            \
        NS::log_softmax_bwd_row, NS::layer_norm_row, NS::rms_norm_row, NS::norm_bwd_row<false>, \
        NS::norm_bwd_row<true>                                                               \
  }

const RowFns &row_fns(bool simd) {
  static const RowFns scalar_fns = CMLX_ROW_FNS(cmlx_fast::emu8);
#ifdef CMLX_HAVE_AVX2_PATH
  static const RowFns simd_fns = CMLX_ROW_FNS(cmlx_fast::avx2);
  if (simd && cmlx_fast::simd_available()) return simd_fns;
#endif
  return scalar_fns;
}

// Rows per partial sum of the norm backward: dw/db are summed per chunk and then over chunks
// in order, so the bits never depend on how rows were split over threads.
constexpr size_t kChunkRows = 16;

struct Job {
  int kind;
  const RowFns *fns;
  const float *in[4];  // kind's inputs (see cmlx_fused_rows_host); w/b never null here
  float *out[3];
  float *pw, *pb;  // norm backward: per-chunk partials [chunks, d]
  size_t rows, d;
  float eps;
};

void run_range(const void *ctx, size_t lo, size_t hi) {
  const Job &j = *static_cast<const Job *>(ctx);
  const size_t d = j.d;
  const RowFns &f = *j.fns;
  if (j.kind == CMLX_FUSED_LAYER_NORM_BWD || j.kind == CMLX_FUSED_RMS_NORM_BWD) {
    auto bwd = j.kind == CMLX_FUSED_LAYER_NORM_BWD ? f.ln_bwd : f.rms_bwd;
    for (size_t c = lo; c < hi; ++c) {
      float *pw = j.pw + c * d, *pb = j.pb ? j.pb + c * d : nullptr;
      for (size_t r = c * kChunkRows; r < std::min(j.rows, (c + 1) * kChunkRows); ++r)
        bwd(j.in[0] + r * d, j.in[1], j.in[2] + r * d, j.out[0] + r * d, pw, pb, d, j.eps);
    }
    return;
  }
  for (size_t r = lo; r < hi; ++r) {
    const float *x = j.in[0] + r * d;
    float *y = j.out[0] + r * d;
    switch (j.kind) {
      case CMLX_FUSED_SOFTMAX: f.softmax(x, y, d); break;
      case CMLX_FUSED_LOG_SOFTMAX: f.log_softmax(x, y, d); break;
      case CMLX_FUSED_LOGSUMEXP: j.out[0][r] = f.logsumexp(x, d); break;
      case CMLX_FUSED_LAYER_NORM: f.layer_norm(x, j.in[1], j.in[2], y, d, j.eps); break;
      case CMLX_FUSED_RMS_NORM: f.rms_norm(x, j.in[1], y, d, j.eps); break;
      case CMLX_FUSED_SOFTMAX_BWD: f.softmax_bwd(x, j.in[1] + r * d, y, d); break;
      case CMLX_FUSED_LOG_SOFTMAX_BWD: f.log_softmax_bwd(x, j.in[1] + r * d, y, d); break;
    }
  }
}

// Host-buffer core shared by the primitive and the tests. Inputs and outputs as in
// cmlx_fused_rows_host; a null weight/bias means ones/zeros, a null dw/db is not computed.
void run_rows(int kind, const float *const *in, float *const *out, size_t rows, size_t d,
              float eps, bool simd) {
  if (rows == 0 || d == 0) return;
  Job j{kind, &row_fns(simd), {in[0], nullptr, nullptr, nullptr}, {out[0], nullptr, nullptr},
        nullptr, nullptr, rows, d, eps};
  std::vector<float> ones, zeros;
  auto or_fill = [&](const float *p, std::vector<float> &buf, float v) {
    if (p) return p;
    buf.assign(d, v);
    return static_cast<const float *>(buf.data());
  };
  switch (kind) {
    case CMLX_FUSED_LAYER_NORM:
      j.in[1] = or_fill(in[1], ones, 1.0f);
      j.in[2] = or_fill(in[2], zeros, 0.0f);
      break;
    case CMLX_FUSED_RMS_NORM: j.in[1] = or_fill(in[1], ones, 1.0f); break;
    case CMLX_FUSED_SOFTMAX_BWD:
    case CMLX_FUSED_LOG_SOFTMAX_BWD: j.in[1] = in[1]; break;
    case CMLX_FUSED_LAYER_NORM_BWD:
    case CMLX_FUSED_RMS_NORM_BWD: {
      j.in[1] = or_fill(in[1], ones, 1.0f);
      j.in[2] = in[2];
      size_t chunks = (rows + kChunkRows - 1) / kChunkRows;
      bool ln = kind == CMLX_FUSED_LAYER_NORM_BWD;
      std::vector<float> pw(chunks * d, 0.0f), pb(ln ? chunks * d : 0, 0.0f);
      j.pw = pw.data();
      j.pb = ln ? pb.data() : nullptr;
      parallel_for(chunks, rows * d, run_range, &j);
      // Chunk partials summed in chunk order (deterministic whatever the thread split).
      for (int o = 1; o <= (ln ? 2 : 1); ++o) {
        float *dst = out[o];
        if (!dst) continue;
        const float *src = o == 1 ? pw.data() : pb.data();
        std::memcpy(dst, src, d * sizeof(float));
        for (size_t c = 1; c < chunks; ++c)
          for (size_t k = 0; k < d; ++k) dst[k] += src[c * d + k];
      }
      return;
    }
  }
  parallel_for(rows, rows * d, run_range, &j);
}

// ---- the MLX primitive ----
#pragma clang diagnostic ignored "-Wdeprecated-declarations"  // std::bind in dispatch, as in FastKernels.cpp

const char *const kNames[] = {"FusedSoftmax",     "FusedLogSoftmax",    "FusedLogSumExp",
                              "FusedLayerNorm",   "FusedRMSNorm",       "FusedSoftmaxVJP",
                              "FusedLogSoftmaxVJP", "FusedLayerNormVJP", "FusedRMSNormVJP"};

using Fn = std::function<std::vector<mx::array>(const std::vector<mx::array> &)>;
std::vector<mx::array> make(int kind, std::vector<mx::array> inputs, bool has_w, bool has_b, float eps);

mx::array last_axis_sum(const mx::array &a) { return mx::sum(a, std::vector<int>{-1}, true); }

// Inputs of a primitive: x (or y), then the weight if has_w, the bias if has_b (forward
// norms and their VJPs), then the cotangent g (VJP kinds). Outputs: the result; the VJPs of
// the norms give dx, then dw / db for the inputs that exist.
class FusedRows : public mx::Primitive {
 public:
  FusedRows(mx::Stream s, int kind, bool has_w, bool has_b, float eps)
      : mx::Primitive(s), kind_(kind), has_w_(has_w), has_b_(has_b), eps_(eps) {}

  void eval_cpu(const std::vector<mx::array> &inputs, std::vector<mx::array> &outputs) override {
    for (auto &o : outputs) o.set_data(mx::allocator::malloc(o.nbytes()));
    auto &encoder = mx::cpu::get_command_encoder(stream());
    for (auto &i : inputs) encoder.set_input_array(i);
    for (auto &o : outputs) encoder.set_output_array(o);
    std::vector<mx::array> ins, outs;
    for (auto &i : inputs) ins.push_back(mx::array::unsafe_weak_copy(i));
    for (auto &o : outputs) outs.push_back(mx::array::unsafe_weak_copy(o));
    encoder.dispatch([ins = std::move(ins), outs = std::move(outs), kind = kind_, has_w = has_w_,
                      has_b = has_b_, eps = eps_]() mutable {
      for (auto &i : ins)
        if (!i.flags().row_contiguous) throw std::runtime_error("fused kernels need row-contiguous inputs");
      size_t d = ins[0].shape().back();
      size_t rows = d ? ins[0].size() / d : 0;
      const float *in[4] = {ins[0].data<float>(), nullptr, nullptr, nullptr};
      float *out[3] = {outs[0].data<float>(), nullptr, nullptr};
      size_t k = 1;
      bool norm = kind == CMLX_FUSED_LAYER_NORM || kind == CMLX_FUSED_RMS_NORM ||
                  kind == CMLX_FUSED_LAYER_NORM_BWD || kind == CMLX_FUSED_RMS_NORM_BWD;
      if (norm) {
        if (has_w) in[1] = ins[k++].data<float>();
        if (has_b) {
          if (kind == CMLX_FUSED_LAYER_NORM) in[2] = ins[k].data<float>();
          ++k;  // the backward does not read the bias
        }
      }
      if (kind >= CMLX_FUSED_SOFTMAX_BWD) {
        const float *g = ins[k].data<float>();
        if (norm) in[2] = g;
        else in[1] = g;
      }
      if (kind == CMLX_FUSED_LAYER_NORM_BWD || kind == CMLX_FUSED_RMS_NORM_BWD) {
        size_t o = 1;
        if (has_w) out[1] = outs[o++].data<float>();
        if (has_b && kind == CMLX_FUSED_LAYER_NORM_BWD) out[2] = outs[o++].data<float>();
      }
      run_rows(kind, in, out, rows, d, eps, true);
    });
  }
  void eval_gpu(const std::vector<mx::array> &, std::vector<mx::array> &) override {
    throw std::runtime_error("fused kernels run on the CPU only");
  }

  std::vector<mx::array> vjp(const std::vector<mx::array> &primals,
                             const std::vector<mx::array> &cotangents,
                             const std::vector<int> &argnums,
                             const std::vector<mx::array> &outputs) override {
    std::vector<mx::array> all;
    switch (kind_) {
      case CMLX_FUSED_SOFTMAX:
      case CMLX_FUSED_LOG_SOFTMAX:
        all = make(kind_ + CMLX_FUSED_SOFTMAX_BWD, {outputs[0], cotangents[0]}, false, false, 0);
        break;
      case CMLX_FUSED_LOGSUMEXP: {  // g·e^(x − lse)
        auto lse = mx::expand_dims(outputs[0], -1);
        auto p = cmlx_fast::fast_unary(CMLX_FAST_EXP, mx::subtract(primals[0], lse));
        all = {mx::multiply(mx::expand_dims(cotangents[0], -1), p)};
        break;
      }
      case CMLX_FUSED_LAYER_NORM:
      case CMLX_FUSED_RMS_NORM: {
        auto in = primals;
        in.push_back(cotangents[0]);
        all = make(kind_ == CMLX_FUSED_LAYER_NORM ? CMLX_FUSED_LAYER_NORM_BWD : CMLX_FUSED_RMS_NORM_BWD,
                   in, has_w_, has_b_, eps_);
        break;
      }
      default: {  // VJPs of VJPs: MLX's autodiff of the same expression
        auto cot = cotangents;
        all = mx::vjp(reference(), primals, cot).second;
      }
    }
    std::vector<mx::array> picked;
    for (int a : argnums) picked.push_back(all[a]);
    return picked;
  }

  std::vector<mx::array> jvp(const std::vector<mx::array> &primals,
                             const std::vector<mx::array> &tangents,
                             const std::vector<int> &argnums) override {
    std::vector<mx::array> full;
    for (size_t i = 0; i < primals.size(); ++i) full.push_back(mx::zeros_like(primals[i]));
    for (size_t k = 0; k < argnums.size(); ++k) full[argnums[k]] = tangents[k];
    return mx::jvp(reference(), primals, full).second;
  }

  const char *name() const override { return kNames[kind_]; }
  bool is_equivalent(const mx::Primitive &other) const override {
    auto o = dynamic_cast<const FusedRows *>(&other);
    return o && o->kind_ == kind_ && o->has_w_ == has_w_ && o->has_b_ == has_b_ && o->eps_ == eps_;
  }
  std::vector<mx::Shape> output_shapes(const std::vector<mx::array> &inputs) override {
    return shapes(kind_, inputs, has_w_, has_b_);
  }

  static std::vector<mx::Shape> shapes(int kind, const std::vector<mx::array> &inputs, bool has_w,
                                       bool has_b) {
    auto x = inputs[0].shape();
    if (kind == CMLX_FUSED_LOGSUMEXP) return {mx::Shape(x.begin(), x.end() - 1)};
    std::vector<mx::Shape> s{x};
    if (kind == CMLX_FUSED_LAYER_NORM_BWD || kind == CMLX_FUSED_RMS_NORM_BWD) {
      if (has_w) s.push_back(inputs[1].shape());
      if (has_b && kind == CMLX_FUSED_LAYER_NORM_BWD) s.push_back(inputs[has_w ? 2 : 1].shape());
    }
    return s;
  }

 private:
  // MLX's own expression for this primitive's outputs from its inputs.
  Fn reference() const {
    int kind = kind_;
    bool hw = has_w_, hb = has_b_;
    float eps = eps_;
    auto norm = [=](const std::vector<mx::array> &in) {
      std::optional<mx::array> w, b;
      size_t k = 1;
      if (hw) w = in[k++];
      if (hb) b = in[k++];
      return kind == CMLX_FUSED_LAYER_NORM || kind == CMLX_FUSED_LAYER_NORM_BWD
                 ? mx::fast::layer_norm(in[0], w, b, eps)
                 : mx::fast::rms_norm(in[0], w, eps);
    };
    switch (kind) {
      case CMLX_FUSED_SOFTMAX: return [](const auto &in) { return std::vector{reference_softmax(in[0])}; };
      case CMLX_FUSED_LOG_SOFTMAX:
        return [](const auto &in) { return std::vector{reference_log_softmax(in[0])}; };
      case CMLX_FUSED_LOGSUMEXP:
        return [](const auto &in) { return std::vector{reference_logsumexp(in[0], false)}; };
      case CMLX_FUSED_LAYER_NORM:
      case CMLX_FUSED_RMS_NORM: return [=](const auto &in) { return std::vector{norm(in)}; };
      case CMLX_FUSED_SOFTMAX_BWD:
        return [](const auto &in) {
          return std::vector{mx::multiply(in[0], mx::subtract(in[1], last_axis_sum(mx::multiply(in[1], in[0]))))};
        };
      case CMLX_FUSED_LOG_SOFTMAX_BWD:
        return [](const auto &in) {
          return std::vector{mx::subtract(in[1], mx::multiply(mx::exp(in[0]), last_axis_sum(in[1])))};
        };
      default:  // norm VJPs: MLX's autodiff of MLX's norm, w.r.t. x, w, b
        return [=](const std::vector<mx::array> &in) {
          std::vector<mx::array> primals(in.begin(), in.end() - 1);
          auto grads = mx::vjp([&](const std::vector<mx::array> &p) { return std::vector{norm(p)}; },
                               primals, {in.back()})
                           .second;
          return grads;  // dx, then dw / db for the inputs that exist
        };
    }
  }

  int kind_;
  bool has_w_, has_b_;
  float eps_;
};

std::vector<mx::array> make(int kind, std::vector<mx::array> inputs, bool has_w, bool has_b, float eps) {
  auto s = mx::default_stream(mx::Device::cpu);
  for (auto &i : inputs) i = mx::contiguous(i, false, s);  // a no-op copy when already row-major
  auto shapes = FusedRows::shapes(kind, inputs, has_w, has_b);
  std::vector<mx::Dtype> dtypes(shapes.size(), mx::float32);
  return mx::array::make_arrays(std::move(shapes), dtypes,
                                std::make_shared<FusedRows>(s, kind, has_w, has_b, eps), inputs);
}

// The fused path takes float32 on the CPU with a non-empty last axis; norms also need
// float32 weight/bias of shape [d].
bool fusable(const mx::array &x) {
  return x.dtype() == mx::float32 && x.ndim() >= 1 && x.shape().back() > 0 &&
         mx::default_device() == mx::Device::cpu;
}
bool fusable_param(const std::optional<mx::array> &p, const mx::array &x) {
  return !p || (p->dtype() == mx::float32 && p->ndim() == 1 && p->shape(0) == x.shape().back());
}

}  // namespace

mx::array reference_softmax(const mx::array &x) { return mx::softmax(x, std::vector<int>{-1}); }
mx::array reference_log_softmax(const mx::array &x) {
  return mx::subtract(x, mx::logsumexp(x, std::vector<int>{-1}, true));
}
mx::array reference_logsumexp(const mx::array &x, bool keepdims) {
  return mx::logsumexp(x, std::vector<int>{-1}, keepdims);
}

mx::array softmax(const mx::array &x) {
  if (!fusable(x)) return reference_softmax(x);
  return make(CMLX_FUSED_SOFTMAX, {x}, false, false, 0)[0];
}
mx::array log_softmax(const mx::array &x) {
  if (!fusable(x)) return reference_log_softmax(x);
  return make(CMLX_FUSED_LOG_SOFTMAX, {x}, false, false, 0)[0];
}
mx::array logsumexp(const mx::array &x, bool keepdims) {
  if (!fusable(x)) return reference_logsumexp(x, keepdims);
  auto r = make(CMLX_FUSED_LOGSUMEXP, {x}, false, false, 0)[0];
  return keepdims ? mx::expand_dims(r, -1) : r;
}
mx::array layer_norm(const mx::array &x, const std::optional<mx::array> &w,
                     const std::optional<mx::array> &b, float eps) {
  if (!fusable(x) || !fusable_param(w, x) || !fusable_param(b, x))
    return mx::fast::layer_norm(x, w, b, eps);
  std::vector<mx::array> in{x};
  if (w) in.push_back(*w);
  if (b) in.push_back(*b);
  return make(CMLX_FUSED_LAYER_NORM, in, w.has_value(), b.has_value(), eps)[0];
}
mx::array rms_norm(const mx::array &x, const std::optional<mx::array> &w, float eps) {
  if (!fusable(x) || !fusable_param(w, x)) return mx::fast::rms_norm(x, w, eps);
  std::vector<mx::array> in{x};
  if (w) in.push_back(*w);
  return make(CMLX_FUSED_RMS_NORM, in, w.has_value(), false, eps)[0];
}

// MLX's attention on the CPU is a composed fallback whose softmax runs MLX's scalar exp;
// this builds the same graph (scale·Q·Kᵀ, mask, softmax, ·V; grouped heads by unflattening)
// with the fused softmax instead.
mx::array attention(const mx::array &q, const mx::array &k, const mx::array &v, float scale,
                    const std::string &mode, const std::optional<mx::array> &mask) {
  auto mlx = [&] { return mx::fast::scaled_dot_product_attention(q, k, v, scale, mode, mask); };
  bool shapes_ok = q.ndim() == 4 && k.ndim() == 4 && v.ndim() == 4 && k.shape(1) > 0 &&
                   q.shape(1) % k.shape(1) == 0 && k.shape(1) == v.shape(1) &&
                   q.shape(-1) == k.shape(-1) && k.shape(2) == v.shape(2);
  bool mode_ok = mode.empty() || mode == "causal" || (mode == "array" && mask);
  if (!fusable(q) || k.dtype() != mx::float32 || v.dtype() != mx::float32 || !shapes_ok || !mode_ok)
    return mlx();
  int kv_heads = k.shape(1), repeats = q.shape(1) / kv_heads;
  auto qs = mx::multiply(mx::array(scale, mx::float32), q);
  auto kk = k, vv = v;
  if (repeats > 1) {
    qs = mx::unflatten(qs, 1, {kv_heads, repeats});
    kk = mx::expand_dims(k, 2);
    vv = mx::expand_dims(v, 2);
  }
  auto scores = mx::matmul(qs, mx::swapaxes(kk, -1, -2));
  if (mode == "causal") {
    int lq = q.shape(2), lk = k.shape(2), off = std::max(0, lk - lq);
    auto allowed = mx::greater_equal(mx::expand_dims(mx::arange(off, off + lq, mx::int32), 1),
                                     mx::expand_dims(mx::arange(0, lk, mx::int32), 0));
    scores = mx::where(allowed, scores, mx::array(-INFINITY, mx::float32));
  } else if (mode == "array") {
    auto m = *mask;
    if (repeats > 1 && m.ndim() >= 3)
      m = m.shape(-3) == 1 ? mx::expand_dims(m, -3) : mx::unflatten(m, -3, {kv_heads, repeats});
    scores = m.dtype() == mx::bool_ ? mx::where(m, scores, mx::array(-INFINITY, mx::float32))
                                    : mx::add(scores, m);
  }
  auto out = mx::matmul(cmlx_fused::softmax(scores), vv);
  return repeats > 1 ? mx::flatten(out, 1, 2) : out;
}

int rows_host(int kind, const float *const *inputs, float *const *outputs, size_t rows, size_t d,
              float eps, bool simd) {
  if (kind < CMLX_FUSED_SOFTMAX || kind > CMLX_FUSED_RMS_NORM_BWD) return 1;
  run_rows(kind, inputs, outputs, rows, d, eps, simd);
  return 0;
}

}  // namespace cmlx_fused

// Row kernels of the fused ops, written once over an 8-lane type `F`. FusedKernels.cpp
// includes this twice: in `avx2` (F = __m256) and in `emu8` (F = 8 floats, each lane
// through the scalar math), so both give the same bits. The includer provides, beside
// FastKernelsMath.h's helpers: load(p), store(p, v), load_n(p, n, fill) / store_n(p, v, n)
// for a tail of n < 8 floats, hsum/hmax (a fixed lane order), and vexp (k_exp).
// A tail is padded with a value that makes it drop out of every reduction.

static inline float row_max(const float *x, size_t d) {
  F m = splat(-INFINITY);
  size_t i = 0;
  for (; i + 8 <= d; i += 8) m = fmax_(load(x + i), m);
  if (i < d) m = fmax_(load_n(x + i, d - i, -INFINITY), m);
  return hmax(m);
}

// Σ e^(x - shift) over the row; writes the terms to `e` when it is non-null.
static inline float row_sum_exp(const float *x, float *e, size_t d, float shift) {
  F s = splat(0.0f), sh = splat(shift);
  size_t i = 0;
  for (; i + 8 <= d; i += 8) {
    F t = vexp(load(x + i) - sh);
    if (e) store(e + i, t);
    s = s + t;
  }
  if (i < d) {
    F t = vexp(load_n(x + i, d - i, -INFINITY) - sh);  // e^-inf = 0
    if (e) store_n(e + i, t, d - i);
    s = s + t;
  }
  return hsum(s);
}

// The shift is the row max, except that ±inf maxima shift by 0 (as MLX's logsumexp does),
// so an all -inf row gives logsumexp -inf instead of NaN.
static inline float row_shift(const float *x, size_t d) {
  float m = row_max(x, d);
  return std::isinf(m) ? 0.0f : m;
}

static inline void softmax_row(const float *x, float *y, size_t d) {
  float s = row_sum_exp(x, y, d, row_shift(x, d));
  F r = splat(1.0f / s);
  size_t i = 0;
  for (; i + 8 <= d; i += 8) store(y + i, load(y + i) * r);
  if (i < d) store_n(y + i, load_n(y + i, d - i, 0.0f) * r, d - i);
}

static inline void log_softmax_row(const float *x, float *y, size_t d) {
  float shift = row_shift(x, d);
  F sh = splat(shift), l = splat(std::log(row_sum_exp(x, nullptr, d, shift)));
  size_t i = 0;
  for (; i + 8 <= d; i += 8) store(y + i, (load(x + i) - sh) - l);
  if (i < d) store_n(y + i, (load_n(x + i, d - i, 0.0f) - sh) - l, d - i);
}

static inline float logsumexp_row(const float *x, size_t d) {
  float shift = row_shift(x, d);
  return shift + std::log(row_sum_exp(x, nullptr, d, shift));
}

// dx = y ⊙ (g − Σ g⊙y)
static inline void softmax_bwd_row(const float *y, const float *g, float *dx, size_t d) {
  F a = splat(0.0f);
  size_t i = 0;
  for (; i + 8 <= d; i += 8) a = fmadd(load(g + i), load(y + i), a);
  if (i < d) a = fmadd(load_n(g + i, d - i, 0.0f), load_n(y + i, d - i, 0.0f), a);
  F s = splat(hsum(a));
  for (i = 0; i + 8 <= d; i += 8) store(dx + i, load(y + i) * (load(g + i) - s));
  if (i < d) store_n(dx + i, load_n(y + i, d - i, 0.0f) * (load_n(g + i, d - i, 0.0f) - s), d - i);
}

// y = log softmax(x): dx = g − e^y Σ g
static inline void log_softmax_bwd_row(const float *y, const float *g, float *dx, size_t d) {
  F a = splat(0.0f);
  size_t i = 0;
  for (; i + 8 <= d; i += 8) a = a + load(g + i);
  if (i < d) a = a + load_n(g + i, d - i, 0.0f);
  F ms = splat(-hsum(a));
  for (i = 0; i + 8 <= d; i += 8) store(dx + i, fmadd(vexp(load(y + i)), ms, load(g + i)));
  if (i < d)
    store_n(dx + i, fmadd(vexp(load_n(y + i, d - i, 0.0f)), ms, load_n(g + i, d - i, 0.0f)), d - i);
}

// Row mean and 1/√(var + eps), two passes (no cancellation for rows far from 0).
static inline void ln_stats(const float *x, size_t d, float eps, float &mean, float &rstd) {
  F s = splat(0.0f);
  size_t i = 0;
  for (; i + 8 <= d; i += 8) s = s + load(x + i);
  if (i < d) s = s + load_n(x + i, d - i, 0.0f);
  mean = hsum(s) / static_cast<float>(d);
  F m = splat(mean), v = splat(0.0f);
  for (i = 0; i + 8 <= d; i += 8) {
    F c = load(x + i) - m;
    v = fmadd(c, c, v);
  }
  if (i < d) {
    F c = load_n(x + i, d - i, mean) - m;  // pad with the mean: c = 0
    v = fmadd(c, c, v);
  }
  rstd = 1.0f / std::sqrt(hsum(v) / static_cast<float>(d) + eps);
}

static inline float rms_rstd(const float *x, size_t d, float eps) {
  F v = splat(0.0f);
  size_t i = 0;
  for (; i + 8 <= d; i += 8) {
    F t = load(x + i);
    v = fmadd(t, t, v);
  }
  if (i < d) {
    F t = load_n(x + i, d - i, 0.0f);
    v = fmadd(t, t, v);
  }
  return 1.0f / std::sqrt(hsum(v) / static_cast<float>(d) + eps);
}

// y = (x − mean)·rstd·w + b (w, b are full rows: the caller supplies ones/zeros)
static inline void layer_norm_row(const float *x, const float *w, const float *b, float *y,
                                  size_t d, float eps) {
  float mean, rstd;
  ln_stats(x, d, eps, mean, rstd);
  F m = splat(mean), r = splat(rstd);
  size_t i = 0;
  for (; i + 8 <= d; i += 8) store(y + i, fmadd((load(x + i) - m) * r, load(w + i), load(b + i)));
  if (i < d) {
    size_t n = d - i;
    store_n(y + i, fmadd((load_n(x + i, n, 0.0f) - m) * r, load_n(w + i, n, 0.0f), load_n(b + i, n, 0.0f)), n);
  }
}

static inline void rms_norm_row(const float *x, const float *w, float *y, size_t d, float eps) {
  F r = splat(rms_rstd(x, d, eps));
  size_t i = 0;
  for (; i + 8 <= d; i += 8) store(y + i, (load(x + i) * r) * load(w + i));
  if (i < d) store_n(y + i, (load_n(x + i, d - i, 0.0f) * r) * load_n(w + i, d - i, 0.0f), d - i);
}

// LayerNorm backward for one row. x̂ = (x − mean)·rstd, ĝ = g⊙w:
// dx = rstd·(ĝ − mean(ĝ) − x̂·mean(ĝ⊙x̂)); adds g⊙x̂ to pw and g to pb (per-chunk partials).
// rms = true gives RMSNorm's (x̂ = x·rstd, no mean terms; pb unused).
template <bool rms>
static inline void norm_bwd_row(const float *x, const float *w, const float *g, float *dx,
                                float *pw, float *pb, size_t d, float eps) {
  float mean = 0.0f, rstd;
  if (rms) rstd = rms_rstd(x, d, eps);
  else ln_stats(x, d, eps, mean, rstd);
  F m = splat(mean), r = splat(rstd);
  F a1 = splat(0.0f), a2 = splat(0.0f);
  size_t i = 0;
  for (; i + 8 <= d; i += 8) {
    F xh = (load(x + i) - m) * r, gv = load(g + i), gw = gv * load(w + i);
    a1 = a1 + gw;
    a2 = fmadd(gw, xh, a2);
    store(pw + i, fmadd(gv, xh, load(pw + i)));
    if (!rms) store(pb + i, load(pb + i) + gv);
  }
  if (i < d) {
    size_t n = d - i;
    F xh = (load_n(x + i, n, mean) - m) * r, gv = load_n(g + i, n, 0.0f), gw = gv * load_n(w + i, n, 0.0f);
    a1 = a1 + gw;
    a2 = fmadd(gw, xh, a2);
    store_n(pw + i, fmadd(gv, xh, load_n(pw + i, n, 0.0f)), n);
    if (!rms) store_n(pb + i, load_n(pb + i, n, 0.0f) + gv, n);
  }
  float inv_d = 1.0f / static_cast<float>(d);
  F m1 = splat(rms ? 0.0f : hsum(a1) * inv_d), m2 = splat(hsum(a2) * inv_d);
  for (i = 0; i + 8 <= d; i += 8) {
    F xh = (load(x + i) - m) * r, gw = load(g + i) * load(w + i);
    store(dx + i, r * ((gw - m1) - xh * m2));
  }
  if (i < d) {
    size_t n = d - i;
    F xh = (load_n(x + i, n, mean) - m) * r, gw = load_n(g + i, n, 0.0f) * load_n(w + i, n, 0.0f);
    store_n(dx + i, r * ((gw - m1) - xh * m2), n);
  }
}

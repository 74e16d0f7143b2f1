// The math of the fast float32 kernels, written once over a lane type `F`.
// FastKernels.cpp includes this file twice: inside an AVX2+FMA region with F = 8 floats and
// as plain scalar code with F = float. The includer provides: splat, fmadd(a, b, c) = a*b+c,
// fmin_/fmax_ (return the second operand when the first is NaN, like minps/maxps), fabs_,
// round_ (to nearest even), select(mask, a, b), lt/ge, isnan_, copysign_, all_(mask), and
// scale2(p, n)
// = p * 2^n for integral n in [-188, 153].
//
// Coefficients were fitted for this project (weighted least squares on Chebyshev nodes,
// iterated toward minimax, against mpmath at 40 digits); the fit errors are quoted.
// Every kernel returns its NaN input unchanged; callers apply `keep_nan` last.

static inline F keep_nan(F x, F r) { return select(isnan_(x), x, r); }

// e^x. x = n·ln2 + r with |r| <= ln2/2; e^r = 1 + r + r²·P(r) (fit error 3e-10 relative);
// 2^n is applied in two halves so that results down to the smallest denormal round once.
// `shift` (an integer in [0, 24]) returns e^x·2^shift, for callers that must not round a
// denormal e^x before multiplying it by something large.
static inline F exp_core(F x, float shift = 0.0f) {
  F xc = fmin_(fmax_(x, splat(-130.0f)), splat(89.0f));  // e^-130·2^24 still underflows
  F n = round_(xc * splat(1.44269502163f));
  F r = fmadd(n, splat(-0.693147182465f), xc);  // ln2 split: float(ln2) + remainder
  r = fmadd(n, splat(1.90465421e-9f), r);
  F p = splat(1.98577844e-4f);
  p = fmadd(p, r, splat(1.39336044e-3f));
  p = fmadd(p, r, splat(8.33336075e-3f));
  p = fmadd(p, r, splat(4.16664655e-2f));
  p = fmadd(p, r, splat(1.66666665e-1f));
  p = fmadd(p, r, splat(5.00000001e-1f));
  p = fmadd(p, r * r, r) + splat(1.0f);
  return scale2(p, n + splat(shift));
}

// σ(v) and σ(-v) = 1 - σ(v), both without cancellation: t = e^-|v| never overflows.
static inline void sigmoid_pair(F v, F &sp, F &sm) {
  F t = exp_core(-fabs_(v));
  F inv = splat(1.0f) / (splat(1.0f) + t);
  auto pos = ge(v, splat(0.0f));
  sp = select(pos, inv, t * inv);
  sm = select(pos, t * inv, inv);
}

// x·y where x = -inf must give -0 (the limit of x·σ(x), x·Φ(x)), not -inf·0 = NaN.
static inline F times_finite(F x, F y) { return fmax_(x, splat(-3.40282347e38f)) * y; }

// erfc(a) for a >= 1: e^{-a²}·R(1/a), R of degree 10 in 1/a on [1/11, 1] (fit error 2e-8
// relative, ~4e-7 after float32 Horner). a² is split hi + lo so large a loses nothing.
static inline F erfc_tail(F a) {
  F ac = fmin_(a, splat(20.0f));  // e^{-400} = 0; keeps inf·inf out of the split below
  F t = splat(1.0f) / ac;
  F R = splat(-4.51689856e-2f);
  R = fmadd(R, t, splat(3.12269631e-1f));
  R = fmadd(R, t, splat(-9.51932161e-1f));
  R = fmadd(R, t, splat(1.66359920e+0f));
  R = fmadd(R, t, splat(-1.78088043e+0f));
  R = fmadd(R, t, splat(1.08126411e+0f));
  R = fmadd(R, t, splat(-1.55242590e-1f));
  R = fmadd(R, t, splat(-2.58372593e-1f));
  R = fmadd(R, t, splat(-2.26068494e-3f));
  R = fmadd(R, t, splat(5.64310870e-1f));
  R = fmadd(R, t, splat(-2.77830072e-6f));
  F hi = ac * ac;
  F lo = fmadd(ac, ac, -hi);
  return exp_core(-hi) * fmadd(-lo, R, R);
}

// erf(x) for |x| < 1: x·P(x²), P of degree 6 (fit error 1.2e-9 relative).
static inline F erf_small(F x) {
  F z = x * x;
  F p = splat(7.85384705e-5f);
  p = fmadd(p, z, splat(-8.01018929e-4f));
  p = fmadd(p, z, splat(5.18832719e-3f));
  p = fmadd(p, z, splat(-2.68538117e-2f));
  p = fmadd(p, z, splat(1.12835851e-1f));
  p = fmadd(p, z, splat(-3.76126258e-1f));
  p = fmadd(p, z, splat(1.12837917e+0f));
  return x * p;
}

// Φ(x) = ½(1 + erf(x/√2)); the lower tail comes from erfc directly, so it keeps relative
// accuracy down to denormals instead of cancelling in 1 + erf.
static inline F normal_cdf(F x) {
  F z = x * splat(0.707106781f);
  F a = fabs_(z);
  F small = fmadd(erf_small(z), splat(0.5f), splat(0.5f));
  auto is_small = lt(a, splat(1.0f));
  if (all_(is_small)) return small;  // most activations: skip the tail (same result)
  F half_tail = splat(0.5f) * erfc_tail(a);
  F big = select(ge(z, splat(0.0f)), splat(1.0f) - half_tail, half_tail);
  return select(is_small, small, big);
}

// φ(x) = e^{-x²/2}/√(2π) with x² split hi + lo.
static inline F normal_pdf(F x) {
  F xc = fmin_(fmax_(x, splat(-20.0f)), splat(20.0f));
  F hi = xc * xc;
  F lo = fmadd(xc, xc, -hi);
  F e = exp_core(splat(-0.5f) * hi);
  return fmadd(splat(0.5f) * lo, -e, e) * splat(0.398942280f);
}

static inline F k_exp(F x) { return keep_nan(x, exp_core(x)); }

// tanh|x| = -m/(2 + m) with m = expm1(-2|x|) ∈ (-1, 0]: one exp-like evaluation, no
// cancellation near 0 because expm1 keeps relative accuracy there. expm1(y) = 2^n(e^r - 1)
// + (2^n - 1), with e^r - 1 = r + r²P(r) from the exp fit; 2^n - 1 is exact for n >= -29.
static inline F k_tanh(F x) {
  F y = fmax_(splat(-2.0f) * fabs_(x), splat(-20.0f));  // tanh(10) rounds to 1
  F n = round_(y * splat(1.44269502163f));
  F r = fmadd(n, splat(-0.693147182465f), y);
  r = fmadd(n, splat(1.90465421e-9f), r);
  F p = splat(1.98577844e-4f);
  p = fmadd(p, r, splat(1.39336044e-3f));
  p = fmadd(p, r, splat(8.33336075e-3f));
  p = fmadd(p, r, splat(4.16664655e-2f));
  p = fmadd(p, r, splat(1.66666665e-1f));
  p = fmadd(p, r, splat(5.00000001e-1f));
  p = fmadd(p, r * r, r);
  F two_n = scale2(splat(1.0f), n);
  F m = fmadd(two_n, p, two_n - splat(1.0f));
  return keep_nan(x, copysign_(-m / (splat(2.0f) + m), x));
}

static inline F k_sigmoid(F x) {
  F sp, sm;
  sigmoid_pair(x, sp, sm);
  return keep_nan(x, sp);
}

// x·σ(x). For x < 0 this is x·t/(1+t), t = e^x; below -87 t is denormal, so t is made
// 2^24 larger and the product scaled back once at the end (keeps normal results ≤ 4 ulp).
static inline F k_silu(F x) {
  F ts = exp_core(-fabs_(x), 24.0f);
  F t = ts * splat(5.96046448e-8f);  // 2^-24
  F inv = splat(1.0f) / (splat(1.0f) + t);
  auto pos = ge(x, splat(0.0f));
  F r = times_finite(x, select(pos, splat(1.0f), ts)) * inv;
  return keep_nan(x, select(pos, r, r * splat(5.96046448e-8f)));
}

static inline F k_erf(F x) {
  F a = fabs_(x);
  if (all_(lt(a, splat(1.0f)))) return erf_small(x);
  F big = copysign_(splat(1.0f) - erfc_tail(a), x);
  return keep_nan(x, select(lt(a, splat(1.0f)), erf_small(x), big));
}

static inline F k_gelu(F x) { return keep_nan(x, times_finite(x, normal_cdf(x))); }

// ½x(1 + tanh(u)) = x·σ(2u) exactly, and σ has no cancellation for negative x.
static inline F k_gelu_tanh(F x) {
  F v = x * fmadd(x * x, splat(0.0713548162f), splat(1.59576912f));  // 2u
  F sp, sm;
  sigmoid_pair(v, sp, sm);
  return keep_nan(x, times_finite(x, sp));
}

// ---- derivatives (used by the VJPs) ----

// d/dx x·σ(x) = σ(x)(1 + x·σ(-x)); x clamped where the result is already exactly 0 or 1.
static inline F k_silu_grad(F x) {
  F xc = fmin_(fmax_(x, splat(-1e4f)), splat(1e4f));
  F sp, sm;
  sigmoid_pair(xc, sp, sm);
  return keep_nan(x, sp * fmadd(xc, sm, splat(1.0f)));
}

// d/dx erf(x) = 2/√π·e^{-x²}
static inline F k_erf_grad(F x) {
  F xc = fmin_(fmax_(x, splat(-20.0f)), splat(20.0f));
  F hi = xc * xc;
  F lo = fmadd(xc, xc, -hi);
  F e = exp_core(-hi);
  return keep_nan(x, fmadd(lo, -e, e) * splat(1.12837917f));
}

// d/dx x·Φ(x) = Φ(x) + x·φ(x)
static inline F k_gelu_grad(F x) {
  F xc = fmin_(fmax_(x, splat(-1e4f)), splat(1e4f));
  return keep_nan(x, fmadd(xc, normal_pdf(xc), normal_cdf(xc)));
}

// d/dx x·σ(v), v = 2u(x): σ(v) + x·σ(v)σ(-v)·v'
static inline F k_gelu_tanh_grad(F x) {
  F xc = fmin_(fmax_(x, splat(-1e4f)), splat(1e4f));
  F z = xc * xc;
  F v = xc * fmadd(z, splat(0.0713548162f), splat(1.59576912f));
  F dv = fmadd(z, splat(0.214064449f), splat(1.59576912f));
  F sp, sm;
  sigmoid_pair(v, sp, sm);
  return keep_nan(x, fmadd(xc * sp, sm * dv, sp));
}

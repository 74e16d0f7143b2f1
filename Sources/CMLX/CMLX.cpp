// The C shim over MLX: every entry point catches C++ exceptions and reports them through
// cmlx_last_error, so Swift only ever sees NULL / non-zero plus a message.
#include "CMLX.h"

#include <cstring>
#include <map>
#include <sstream>
#include <string>

#include "FastKernels.h"
#include "FusedKernels.h"
#include "mlx/compile_impl.h"
#include "mlx/mlx.h"
#include "mlx/distributed/distributed.h"
#include "mlx/distributed/ops.h"

namespace mx = mlx::core;

#if defined(__linux__)
// OpenBLAS's CBLAS entry point (linked ahead of libmlx, see Package.swift).
extern "C" void cblas_sgemm(int order, int transa, int transb, int m, int n, int k, float alpha,
                            const float *a, int lda, const float *b, int ldb, float beta, float *c,
                            int ldc);
#endif

struct cmlx_array_s {
  mx::array value;
};
struct cmlx_vec_s {
  std::vector<mx::array> items;
};
struct cmlx_tensor_file_s {
  std::vector<std::string> names;
  std::vector<mx::array> arrays;
  std::vector<std::string> meta_keys;
  std::vector<std::string> meta_values;
};
struct cmlx_compiled_s {
  std::function<std::vector<mx::array>(const std::vector<mx::array>&)> fn;
};

namespace {

thread_local std::string last_error;

/// Thrown when a Swift callback reports failure; its own error is kept on the Swift side.
struct CallbackFailed : std::runtime_error {
  CallbackFailed() : std::runtime_error("callback failed") {}
};

cmlx_array wrap(mx::array a) { return new cmlx_array_s{std::move(a)}; }

mx::Shape to_shape(const int *shape, int ndim) {
  return mx::Shape(shape, shape + ndim);
}
std::vector<int> to_axes(const int *axes, int naxes) {
  return std::vector<int>(axes, axes + naxes);
}
std::optional<mx::array> optional_array(cmlx_array a) {
  if (a == nullptr) return std::nullopt;
  return a->value;
}

mx::Dtype to_dtype(int d) {
  switch (d) {
    case CMLX_BOOL: return mx::bool_;
    case CMLX_UINT8: return mx::uint8;
    case CMLX_UINT16: return mx::uint16;
    case CMLX_UINT32: return mx::uint32;
    case CMLX_UINT64: return mx::uint64;
    case CMLX_INT8: return mx::int8;
    case CMLX_INT16: return mx::int16;
    case CMLX_INT32: return mx::int32;
    case CMLX_INT64: return mx::int64;
    case CMLX_FLOAT16: return mx::float16;
    case CMLX_FLOAT32: return mx::float32;
    case CMLX_FLOAT64: return mx::float64;
    case CMLX_BFLOAT16: return mx::bfloat16;
    case CMLX_COMPLEX64: return mx::complex64;
  }
  throw std::invalid_argument("unknown dtype code " + std::to_string(d));
}

int from_dtype(mx::Dtype d) {
  switch (d.val()) {
    case mx::Dtype::Val::bool_: return CMLX_BOOL;
    case mx::Dtype::Val::uint8: return CMLX_UINT8;
    case mx::Dtype::Val::uint16: return CMLX_UINT16;
    case mx::Dtype::Val::uint32: return CMLX_UINT32;
    case mx::Dtype::Val::uint64: return CMLX_UINT64;
    case mx::Dtype::Val::int8: return CMLX_INT8;
    case mx::Dtype::Val::int16: return CMLX_INT16;
    case mx::Dtype::Val::int32: return CMLX_INT32;
    case mx::Dtype::Val::int64: return CMLX_INT64;
    case mx::Dtype::Val::float16: return CMLX_FLOAT16;
    case mx::Dtype::Val::float32: return CMLX_FLOAT32;
    case mx::Dtype::Val::float64: return CMLX_FLOAT64;
    case mx::Dtype::Val::bfloat16: return CMLX_BFLOAT16;
    case mx::Dtype::Val::complex64: return CMLX_COMPLEX64;
  }
  return -1;
}

template <typename F>
cmlx_array guard_array(F &&f) {
  try {
    return wrap(f());
  } catch (const std::exception &e) {
    last_error = e.what();
  } catch (...) {
    last_error = "unknown C++ exception";
  }
  return nullptr;
}

template <typename F>
int guard_status(F &&f) {
  try {
    f();
    return 0;
  } catch (const std::exception &e) {
    last_error = e.what();
  } catch (...) {
    last_error = "unknown C++ exception";
  }
  return 1;
}

/// Adapts a C callback to the std::function shape MLX transforms take.
std::function<std::vector<mx::array>(const std::vector<mx::array>&)> adapt(
    cmlx_function f, void *context) {
  return [f, context](const std::vector<mx::array> &inputs) {
    cmlx_vec_s in{inputs};
    cmlx_vec_s out;
    if (f(context, &in, &out) != 0) throw CallbackFailed();
    return out.items;
  };
}

}  // namespace

extern "C" {

const char *cmlx_last_error(void) { return last_error.c_str(); }
void cmlx_free(cmlx_array a) { delete a; }
cmlx_array cmlx_copy_handle(cmlx_array a) { return wrap(a->value); }
int cmlx_ndim(cmlx_array a) { return static_cast<int>(a->value.ndim()); }
int cmlx_shape(cmlx_array a, int *shape, int capacity) {
  int n = static_cast<int>(a->value.ndim());
  for (int i = 0; i < n && i < capacity; ++i) shape[i] = a->value.shape(i);
  return n;
}
int cmlx_dtype_of(cmlx_array a) { return from_dtype(a->value.dtype()); }
size_t cmlx_size(cmlx_array a) { return a->value.size(); }
size_t cmlx_itemsize(cmlx_array a) { return a->value.itemsize(); }
char *cmlx_describe(cmlx_array a) {
  try {
    std::ostringstream os;
    os << a->value;
    return strdup(os.str().c_str());
  } catch (const std::exception &e) {
    last_error = e.what();
    return nullptr;
  }
}
void cmlx_free_string(char *s) { free(s); }

// ---- creation ----
cmlx_array cmlx_from_data(const void *data, const int *shape, int ndim, int dtype) {
  return guard_array([&] {
    auto dt = to_dtype(dtype);
    auto sh = to_shape(shape, ndim);
    switch (dtype) {
      case CMLX_BOOL: return mx::array(static_cast<const bool *>(data), sh, dt);
      case CMLX_UINT8: return mx::array(static_cast<const uint8_t *>(data), sh, dt);
      case CMLX_UINT16: return mx::array(static_cast<const uint16_t *>(data), sh, dt);
      case CMLX_UINT32: return mx::array(static_cast<const uint32_t *>(data), sh, dt);
      case CMLX_UINT64: return mx::array(static_cast<const uint64_t *>(data), sh, dt);
      case CMLX_INT8: return mx::array(static_cast<const int8_t *>(data), sh, dt);
      case CMLX_INT16: return mx::array(static_cast<const int16_t *>(data), sh, dt);
      case CMLX_INT32: return mx::array(static_cast<const int32_t *>(data), sh, dt);
      case CMLX_INT64: return mx::array(static_cast<const int64_t *>(data), sh, dt);
      case CMLX_FLOAT16: return mx::array(static_cast<const mx::float16_t *>(data), sh, dt);
      case CMLX_FLOAT32: return mx::array(static_cast<const float *>(data), sh, dt);
      case CMLX_FLOAT64: return mx::array(static_cast<const double *>(data), sh, dt);
      case CMLX_BFLOAT16: return mx::array(static_cast<const mx::bfloat16_t *>(data), sh, dt);
      case CMLX_COMPLEX64: return mx::array(static_cast<const mx::complex64_t *>(data), sh, dt);
    }
    throw std::invalid_argument("unknown dtype code " + std::to_string(dtype));
  });
}
cmlx_array cmlx_full(const int *shape, int ndim, double value, int dtype) {
  return guard_array([&] {
    auto dt = to_dtype(dtype);
    return mx::full(to_shape(shape, ndim), mx::astype(mx::array(value), dt), dt);
  });
}
cmlx_array cmlx_arange(double start, double stop, double step, int dtype) {
  return guard_array([&] { return mx::arange(start, stop, step, to_dtype(dtype)); });
}
cmlx_array cmlx_eye(int n, int m, int k, int dtype) {
  return guard_array([&] { return mx::eye(n, m, k, to_dtype(dtype)); });
}

// ---- eval ----
int cmlx_eval(const cmlx_array *arrays, int n) {
  return guard_status([&] {
    std::vector<mx::array> v;
    v.reserve(n);
    for (int i = 0; i < n; ++i) v.push_back(arrays[i]->value);
    mx::eval(v);
  });
}
int cmlx_async_eval(const cmlx_array *arrays, int n) {
  return guard_status([&] {
    std::vector<mx::array> v;
    for (int i = 0; i < n; ++i) v.push_back(arrays[i]->value);
    mx::async_eval(v);
  });
}
int cmlx_to_buffer(cmlx_array a, void *out, size_t nbytes) {
  return guard_status([&] {
    // A contiguous copy makes the row-major layout explicit whatever the strides are.
    auto c = mx::contiguous(a->value);
    c.eval();
    if (c.nbytes() != nbytes)
      throw std::invalid_argument("to_buffer: expected " + std::to_string(c.nbytes()) +
                                  " bytes, got a buffer of " + std::to_string(nbytes));
    if (nbytes > 0) std::memcpy(out, c.data<void>(), nbytes);
  });
}
int cmlx_item(cmlx_array a, double *out) {
  return guard_status([&] {
    if (a->value.size() != 1)
      throw std::invalid_argument("item: array has " + std::to_string(a->value.size()) +
                                  " elements, expected 1");
    auto f = mx::astype(a->value, mx::float64, mx::Device::cpu);
    f.eval();
    *out = f.item<double>();
  });
}

// ---- elementwise ----
cmlx_array cmlx_unary(int op, cmlx_array a) {
  return guard_array([&]() -> mx::array {
    const auto &x = a->value;
    switch (op) {
      case CMLX_NEG: return mx::negative(x);
      case CMLX_ABS: return mx::abs(x);
      case CMLX_EXP: return mx::exp(x);
      case CMLX_LOG: return mx::log(x);
      case CMLX_SQRT: return mx::sqrt(x);
      case CMLX_RSQRT: return mx::rsqrt(x);
      case CMLX_SIN: return mx::sin(x);
      case CMLX_COS: return mx::cos(x);
      case CMLX_TANH: return mx::tanh(x);
      case CMLX_SIGMOID: return mx::sigmoid(x);
      case CMLX_SQUARE: return mx::square(x);
      case CMLX_FLOOR: return mx::floor(x);
      case CMLX_CEIL: return mx::ceil(x);
      case CMLX_ROUND: return mx::round(x, 0);
      case CMLX_SIGN: return mx::sign(x);
      case CMLX_LOGICAL_NOT: return mx::logical_not(x);
      case CMLX_ERF: return mx::erf(x);
      case CMLX_ERFINV: return mx::erfinv(x);
      case CMLX_LOG1P: return mx::log1p(x);
      case CMLX_EXPM1: return mx::expm1(x);
      case CMLX_RECIPROCAL: return mx::reciprocal(x);
      case CMLX_STOP_GRADIENT: return mx::stop_gradient(x);
      case CMLX_ISNAN: return mx::isnan(x);
      case CMLX_ISINF: return mx::isinf(x);
      case CMLX_ARCTAN: return mx::arctan(x);
      case CMLX_ARCSIN: return mx::arcsin(x);
      case CMLX_ARCCOS: return mx::arccos(x);
    }
    throw std::invalid_argument("unknown unary op " + std::to_string(op));
  });
}
cmlx_array cmlx_binary(int op, cmlx_array a, cmlx_array b) {
  return guard_array([&]() -> mx::array {
    const auto &x = a->value;
    const auto &y = b->value;
    switch (op) {
      case CMLX_ADD: return mx::add(x, y);
      case CMLX_SUBTRACT: return mx::subtract(x, y);
      case CMLX_MULTIPLY: return mx::multiply(x, y);
      case CMLX_DIVIDE: return mx::divide(x, y);
      case CMLX_POWER: return mx::power(x, y);
      case CMLX_MAXIMUM: return mx::maximum(x, y);
      case CMLX_MINIMUM: return mx::minimum(x, y);
      case CMLX_EQUAL: return mx::equal(x, y);
      case CMLX_NOT_EQUAL: return mx::not_equal(x, y);
      case CMLX_LESS: return mx::less(x, y);
      case CMLX_LESS_EQUAL: return mx::less_equal(x, y);
      case CMLX_GREATER: return mx::greater(x, y);
      case CMLX_GREATER_EQUAL: return mx::greater_equal(x, y);
      case CMLX_LOGICAL_AND: return mx::logical_and(x, y);
      case CMLX_LOGICAL_OR: return mx::logical_or(x, y);
      case CMLX_FLOOR_DIVIDE: return mx::floor_divide(x, y);
      case CMLX_REMAINDER: return mx::remainder(x, y);
      case CMLX_ARCTAN2: return mx::arctan2(x, y);
    }
    throw std::invalid_argument("unknown binary op " + std::to_string(op));
  });
}
cmlx_array cmlx_where(cmlx_array cond, cmlx_array a, cmlx_array b) {
  return guard_array([&] { return mx::where(cond->value, a->value, b->value); });
}
cmlx_array cmlx_astype(cmlx_array a, int dtype) {
  return guard_array([&] { return mx::astype(a->value, to_dtype(dtype)); });
}
cmlx_array cmlx_clip(cmlx_array a, cmlx_array lo, cmlx_array hi) {
  return guard_array([&] { return mx::clip(a->value, optional_array(lo), optional_array(hi)); });
}

// ---- reductions ----
cmlx_array cmlx_reduce(int op, cmlx_array a, const int *axes, int naxes, int keepdims) {
  return guard_array([&]() -> mx::array {
    const auto &x = a->value;
    std::vector<int> ax;
    if (naxes < 0) {
      for (int i = 0; i < static_cast<int>(x.ndim()); ++i) ax.push_back(i);
    } else {
      ax = to_axes(axes, naxes);
    }
    bool k = keepdims != 0;
    switch (op) {
      case CMLX_SUM: return mx::sum(x, ax, k);
      case CMLX_MEAN: return mx::mean(x, ax, k);
      case CMLX_MAX: return mx::max(x, ax, k);
      case CMLX_MIN: return mx::min(x, ax, k);
      case CMLX_PROD: return mx::prod(x, ax, k);
      case CMLX_LOGSUMEXP: return mx::logsumexp(x, ax, k);
      case CMLX_ALL: return mx::all(x, ax, k);
      case CMLX_ANY: return mx::any(x, ax, k);
      case CMLX_VAR: return mx::var(x, ax, k);
    }
    throw std::invalid_argument("unknown reduction " + std::to_string(op));
  });
}
cmlx_array cmlx_argmax(cmlx_array a, int axis, int keepdims) {
  return guard_array([&] { return mx::argmax(a->value, axis, keepdims != 0); });
}
cmlx_array cmlx_argmin(cmlx_array a, int axis, int keepdims) {
  return guard_array([&] { return mx::argmin(a->value, axis, keepdims != 0); });
}
cmlx_array cmlx_cumsum(cmlx_array a, int axis, int reverse, int inclusive) {
  return guard_array([&] { return mx::cumsum(a->value, axis, reverse != 0, inclusive != 0); });
}
cmlx_array cmlx_sort(cmlx_array a, int axis) {
  return guard_array([&] { return mx::sort(a->value, axis); });
}
cmlx_array cmlx_argsort(cmlx_array a, int axis) {
  return guard_array([&] { return mx::argsort(a->value, axis); });
}

// ---- linear algebra / nn ----
cmlx_array cmlx_matmul(cmlx_array a, cmlx_array b) {
  return guard_array([&] { return mx::matmul(a->value, b->value); });
}
cmlx_array cmlx_addmm(cmlx_array c, cmlx_array a, cmlx_array b, float alpha, float beta) {
  return guard_array([&] { return mx::addmm(c->value, a->value, b->value, alpha, beta); });
}
cmlx_array cmlx_conv2d(cmlx_array input, cmlx_array weight, int stride_h, int stride_w,
                       int pad_h, int pad_w, int dil_h, int dil_w, int groups) {
  return guard_array([&] {
    return mx::conv2d(input->value, weight->value, {stride_h, stride_w}, {pad_h, pad_w},
                      {dil_h, dil_w}, groups);
  });
}
cmlx_array cmlx_softmax(cmlx_array a, const int *axes, int naxes, int precise) {
  return guard_array([&] { return mx::softmax(a->value, to_axes(axes, naxes), precise != 0); });
}
cmlx_array cmlx_layer_norm(cmlx_array x, cmlx_array weight, cmlx_array bias, float eps) {
  return guard_array([&] {
    return mx::fast::layer_norm(x->value, optional_array(weight), optional_array(bias), eps);
  });
}
cmlx_array cmlx_rms_norm(cmlx_array x, cmlx_array weight, float eps) {
  return guard_array([&] { return mx::fast::rms_norm(x->value, optional_array(weight), eps); });
}
cmlx_array cmlx_attention(cmlx_array q, cmlx_array k, cmlx_array v, float scale,
                          const char *mask_mode, cmlx_array mask) {
  return guard_array([&] {
    return mx::fast::scaled_dot_product_attention(q->value, k->value, v->value, scale,
                                                  mask_mode ? mask_mode : "",
                                                  optional_array(mask));
  });
}

// ---- shapes / indexing ----
cmlx_array cmlx_reshape(cmlx_array a, const int *shape, int ndim) {
  return guard_array([&] { return mx::reshape(a->value, to_shape(shape, ndim)); });
}
cmlx_array cmlx_transpose(cmlx_array a, const int *axes, int naxes) {
  return guard_array([&] {
    return naxes == 0 ? mx::transpose(a->value) : mx::transpose(a->value, to_axes(axes, naxes));
  });
}
cmlx_array cmlx_broadcast_to(cmlx_array a, const int *shape, int ndim) {
  return guard_array([&] { return mx::broadcast_to(a->value, to_shape(shape, ndim)); });
}
cmlx_array cmlx_expand_dims(cmlx_array a, const int *axes, int naxes) {
  return guard_array([&] { return mx::expand_dims(a->value, to_axes(axes, naxes)); });
}
cmlx_array cmlx_squeeze(cmlx_array a, const int *axes, int naxes) {
  return guard_array([&] {
    return naxes == 0 ? mx::squeeze(a->value) : mx::squeeze(a->value, to_axes(axes, naxes));
  });
}
cmlx_array cmlx_concatenate(const cmlx_array *arrays, int n, int axis) {
  return guard_array([&] {
    std::vector<mx::array> v;
    for (int i = 0; i < n; ++i) v.push_back(arrays[i]->value);
    return mx::concatenate(v, axis);
  });
}
cmlx_array cmlx_stack(const cmlx_array *arrays, int n, int axis) {
  return guard_array([&] {
    std::vector<mx::array> v;
    for (int i = 0; i < n; ++i) v.push_back(arrays[i]->value);
    return mx::stack(v, axis);
  });
}
int cmlx_split_at(cmlx_array a, const int *indices, int nindices, int axis, cmlx_vec out) {
  return guard_status([&] {
    auto parts = mx::split(a->value, to_shape(indices, nindices), axis);
    for (auto &p : parts) out->items.push_back(p);
  });
}
int cmlx_split_equal(cmlx_array a, int parts, int axis, cmlx_vec out) {
  return guard_status([&] {
    auto ps = mx::split(a->value, parts, axis);
    for (auto &p : ps) out->items.push_back(p);
  });
}
cmlx_array cmlx_slice(cmlx_array a, const int *start, const int *stop, const int *strides,
                      int ndim) {
  return guard_array([&] {
    return mx::slice(a->value, to_shape(start, ndim), to_shape(stop, ndim),
                     to_shape(strides, ndim));
  });
}
cmlx_array cmlx_slice_update(cmlx_array src, cmlx_array update, const int *start,
                             const int *stop, const int *strides, int ndim) {
  return guard_array([&] {
    return mx::slice_update(src->value, update->value, to_shape(start, ndim),
                            to_shape(stop, ndim), to_shape(strides, ndim));
  });
}
cmlx_array cmlx_take(cmlx_array a, cmlx_array indices, int axis) {
  return guard_array([&] { return mx::take(a->value, indices->value, axis); });
}
cmlx_array cmlx_take_along_axis(cmlx_array a, cmlx_array indices, int axis) {
  return guard_array([&] { return mx::take_along_axis(a->value, indices->value, axis); });
}
cmlx_array cmlx_put_along_axis(cmlx_array a, cmlx_array indices, cmlx_array values, int axis) {
  return guard_array(
      [&] { return mx::put_along_axis(a->value, indices->value, values->value, axis); });
}
cmlx_array cmlx_pad(cmlx_array a, const int *pad_low, const int *pad_high, int ndim,
                    double value) {
  return guard_array([&] {
    std::vector<std::pair<int, int>> widths;
    for (int i = 0; i < ndim; ++i) widths.emplace_back(pad_low[i], pad_high[i]);
    return mx::pad(a->value, widths, mx::astype(mx::array(value), a->value.dtype()));
  });
}
cmlx_array cmlx_tril(cmlx_array a, int k) {
  return guard_array([&] { return mx::tril(a->value, k); });
}
cmlx_array cmlx_triu(cmlx_array a, int k) {
  return guard_array([&] { return mx::triu(a->value, k); });
}

// ---- random ----
cmlx_array cmlx_random_key(uint64_t seed) {
  return guard_array([&] { return mx::random::key(seed); });
}
cmlx_array cmlx_random_split(cmlx_array key, int num) {
  return guard_array([&] { return mx::random::split(key->value, num); });
}
cmlx_array cmlx_random_normal(const int *shape, int ndim, int dtype, cmlx_array key) {
  return guard_array([&] {
    return mx::random::normal(to_shape(shape, ndim), to_dtype(dtype), optional_array(key));
  });
}
cmlx_array cmlx_random_uniform(cmlx_array low, cmlx_array high, const int *shape, int ndim,
                               int dtype, cmlx_array key) {
  return guard_array([&] {
    return mx::random::uniform(low->value, high->value, to_shape(shape, ndim), to_dtype(dtype),
                               optional_array(key));
  });
}
cmlx_array cmlx_random_bernoulli(cmlx_array p, const int *shape, int ndim, cmlx_array key) {
  return guard_array([&] {
    return mx::random::bernoulli(p->value, to_shape(shape, ndim), optional_array(key));
  });
}
cmlx_array cmlx_random_categorical(cmlx_array logits, int axis, cmlx_array key) {
  return guard_array(
      [&] { return mx::random::categorical(logits->value, axis, optional_array(key)); });
}
cmlx_array cmlx_random_randint(cmlx_array low, cmlx_array high, const int *shape, int ndim,
                               int dtype, cmlx_array key) {
  return guard_array([&] {
    return mx::random::randint(low->value, high->value, to_shape(shape, ndim), to_dtype(dtype),
                               optional_array(key));
  });
}
cmlx_array cmlx_random_gumbel(const int *shape, int ndim, int dtype, cmlx_array key) {
  return guard_array([&] {
    return mx::random::gumbel(to_shape(shape, ndim), to_dtype(dtype), optional_array(key));
  });
}
cmlx_array cmlx_random_permutation(int n, cmlx_array key) {
  return guard_array([&] { return mx::random::permutation(n, optional_array(key)); });
}

// ---- vec ----
cmlx_vec cmlx_vec_new(void) { return new cmlx_vec_s{}; }
void cmlx_vec_free(cmlx_vec v) { delete v; }
void cmlx_vec_push(cmlx_vec v, cmlx_array a) { v->items.push_back(a->value); }
int cmlx_vec_size(cmlx_vec v) { return static_cast<int>(v->items.size()); }
cmlx_array cmlx_vec_get(cmlx_vec v, int i) {
  if (i < 0 || i >= static_cast<int>(v->items.size())) {
    last_error = "vec index " + std::to_string(i) + " out of range";
    return nullptr;
  }
  return wrap(v->items[i]);
}

// ---- transforms ----
int cmlx_value_and_grad(cmlx_function f, void *context, cmlx_vec inputs, const int *argnums,
                        int nargnums, cmlx_vec values, cmlx_vec grads) {
  return guard_status([&] {
    auto vg = mx::value_and_grad(adapt(f, context), to_axes(argnums, nargnums));
    auto [vals, gs] = vg(inputs->items);
    for (auto &v : vals) values->items.push_back(v);
    for (auto &g : gs) grads->items.push_back(g);
  });
}
int cmlx_vjp(cmlx_function f, void *context, cmlx_vec primals, cmlx_vec cotangents,
             cmlx_vec outputs, cmlx_vec vjps) {
  return guard_status([&] {
    auto [outs, vs] = mx::vjp(adapt(f, context), primals->items, cotangents->items);
    for (auto &o : outs) outputs->items.push_back(o);
    for (auto &v : vs) vjps->items.push_back(v);
  });
}
int cmlx_jvp(cmlx_function f, void *context, cmlx_vec primals, cmlx_vec tangents,
             cmlx_vec outputs, cmlx_vec jvps) {
  return guard_status([&] {
    auto [outs, js] = mx::jvp(adapt(f, context), primals->items, tangents->items);
    for (auto &o : outs) outputs->items.push_back(o);
    for (auto &j : js) jvps->items.push_back(j);
  });
}
cmlx_compiled cmlx_compile(cmlx_function f, void *context, int shapeless) {
  try {
    auto c = new cmlx_compiled_s{};
    // The handle's address is the cache id, so each compiled function traces separately.
    c->fn = mx::detail::compile(adapt(f, context), reinterpret_cast<std::uintptr_t>(c),
                                shapeless != 0);
    return c;
  } catch (const std::exception &e) {
    last_error = e.what();
    return nullptr;
  }
}
int cmlx_compiled_call(cmlx_compiled c, cmlx_vec inputs, cmlx_vec outputs) {
  return guard_status([&] {
    auto outs = c->fn(inputs->items);
    for (auto &o : outs) outputs->items.push_back(o);
  });
}
void cmlx_compiled_free(cmlx_compiled c) {
  if (c == nullptr) return;
  try {
    mx::detail::compile_erase(mx::detail::compile_cache(), reinterpret_cast<std::uintptr_t>(c));
  } catch (...) {
  }
  delete c;
}
void cmlx_set_compile_enabled(int enabled) {
  if (enabled) mx::enable_compile(); else mx::disable_compile();
}

// ---- safetensors ----
int cmlx_save_safetensors(const char *path, const char *const *names, const cmlx_array *arrays,
                          int n, const char *const *meta_keys, const char *const *meta_values,
                          int nmeta) {
  return guard_status([&] {
    std::unordered_map<std::string, mx::array> tensors;
    for (int i = 0; i < n; ++i) tensors.insert_or_assign(names[i], arrays[i]->value);
    std::unordered_map<std::string, std::string> meta;
    for (int i = 0; i < nmeta; ++i) meta[meta_keys[i]] = meta_values[i];
    mx::save_safetensors(std::string(path), tensors, meta);
  });
}
cmlx_tensor_file cmlx_load_safetensors(const char *path) {
  try {
    auto [tensors, meta] = mx::load_safetensors(std::string(path));
    auto f = new cmlx_tensor_file_s{};
    std::map<std::string, mx::array> sorted(tensors.begin(), tensors.end());
    for (auto &[k, v] : sorted) {
      f->names.push_back(k);
      f->arrays.push_back(v);
    }
    std::map<std::string, std::string> sorted_meta(meta.begin(), meta.end());
    for (auto &[k, v] : sorted_meta) {
      f->meta_keys.push_back(k);
      f->meta_values.push_back(v);
    }
    return f;
  } catch (const std::exception &e) {
    last_error = e.what();
    return nullptr;
  }
}
void cmlx_tensor_file_free(cmlx_tensor_file f) { delete f; }
int cmlx_tensor_file_count(cmlx_tensor_file f) { return static_cast<int>(f->names.size()); }
const char *cmlx_tensor_file_name(cmlx_tensor_file f, int i) { return f->names[i].c_str(); }
cmlx_array cmlx_tensor_file_array(cmlx_tensor_file f, int i) { return wrap(f->arrays[i]); }
int cmlx_tensor_file_meta_count(cmlx_tensor_file f) {
  return static_cast<int>(f->meta_keys.size());
}
const char *cmlx_tensor_file_meta_key(cmlx_tensor_file f, int i) {
  return f->meta_keys[i].c_str();
}
const char *cmlx_tensor_file_meta_value(cmlx_tensor_file f, int i) {
  return f->meta_values[i].c_str();
}

// ---- runtime ----
size_t cmlx_active_memory(void) { return mx::get_active_memory(); }
size_t cmlx_peak_memory(void) { return mx::get_peak_memory(); }
void cmlx_clear_cache(void) { mx::clear_cache(); }
const char *cmlx_version(void) { return mx::version(); }
int cmlx_reference_sgemm(int m, int n, int k, const float *a, const float *b, float *c) {
#if defined(__linux__)
  const int row_major = 101, no_trans = 111;
  cblas_sgemm(row_major, no_trans, no_trans, m, n, k, 1.0f, a, k, b, n, 0.0f, c, n);
  return 0;
#else
  return 1;
#endif
}

// ---- fast kernels ----
cmlx_array cmlx_fast_unary(int op, cmlx_array a) {
  return guard_array([&] {
    return cmlx_fast::is_enabled() ? cmlx_fast::fast_unary(op, a->value)
                                   : cmlx_fast::reference(op, a->value);
  });
}
cmlx_array cmlx_fast_unary_kernel(int op, cmlx_array a) {
  return guard_array([&] { return cmlx_fast::fast_unary(op, a->value); });
}
cmlx_array cmlx_fast_unary_reference(int op, cmlx_array a) {
  return guard_array([&] { return cmlx_fast::reference(op, a->value); });
}
void cmlx_set_fast_kernels(int enabled) { cmlx_fast::set_enabled(enabled != 0); }
int cmlx_fast_kernels_enabled(void) { return cmlx_fast::is_enabled() ? 1 : 0; }
int cmlx_fast_kernels_simd(void) { return cmlx_fast::simd_available() ? 1 : 0; }
int cmlx_fast_apply(int op, const float *in, float *out, size_t n, int simd) {
  if (op < 0 || op > CMLX_FAST_GELU_TANH_GRAD) return 1;
  cmlx_fast::apply(op, in, out, n, simd != 0);
  return 0;
}

// ---- fused row kernels ----
cmlx_array cmlx_fused_row_op(int op, cmlx_array a) {
  return guard_array([&] {
    switch (op) {
      case CMLX_FUSED_SOFTMAX: return cmlx_fused::softmax(a->value);
      case CMLX_FUSED_LOG_SOFTMAX: return cmlx_fused::log_softmax(a->value);
      case CMLX_FUSED_LOGSUMEXP: return cmlx_fused::logsumexp(a->value, false);
    }
    throw std::invalid_argument("unknown fused row op " + std::to_string(op));
  });
}
cmlx_array cmlx_fused_row_op_reference(int op, cmlx_array a) {
  return guard_array([&] {
    switch (op) {
      case CMLX_FUSED_SOFTMAX: return cmlx_fused::reference_softmax(a->value);
      case CMLX_FUSED_LOG_SOFTMAX: return cmlx_fused::reference_log_softmax(a->value);
      case CMLX_FUSED_LOGSUMEXP: return cmlx_fused::reference_logsumexp(a->value, false);
    }
    throw std::invalid_argument("unknown fused row op " + std::to_string(op));
  });
}
cmlx_array cmlx_fused_layer_norm(cmlx_array x, cmlx_array weight, cmlx_array bias, float eps) {
  return guard_array([&] {
    return cmlx_fused::layer_norm(x->value, optional_array(weight), optional_array(bias), eps);
  });
}
cmlx_array cmlx_fused_attention(cmlx_array q, cmlx_array k, cmlx_array v, float scale,
                                const char *mask_mode, cmlx_array mask) {
  return guard_array([&] {
    return cmlx_fused::attention(q->value, k->value, v->value, scale, mask_mode ? mask_mode : "",
                                 optional_array(mask));
  });
}
cmlx_array cmlx_fused_rms_norm(cmlx_array x, cmlx_array weight, float eps) {
  return guard_array([&] { return cmlx_fused::rms_norm(x->value, optional_array(weight), eps); });
}
int cmlx_fused_rows_host(int op, const float *const *inputs, float *const *outputs, size_t rows,
                         size_t d, float eps, int simd) {
  return cmlx_fused::rows_host(op, inputs, outputs, rows, d, eps, simd != 0);
}

}  // extern "C"

// ---- distributed ------------------------------------------------------------------------

namespace {
std::optional<mx::distributed::Group> &world() {
  static std::optional<mx::distributed::Group> group;
  return group;
}
}  // namespace

int cmlx_distributed_init(int strict, const char *backend, int *rank, int *size) {
  return guard_status([&] {
    auto group = mx::distributed::init(strict != 0, backend ? std::string(backend) : std::string("any"));
    world() = group;
    if (rank) *rank = group.rank();
    if (size) *size = group.size();
  });
}

int cmlx_distributed_is_available(const char *backend) {
  try {
    return mx::distributed::is_available(backend ? std::string(backend) : std::string("any")) ? 1 : 0;
  } catch (...) {
    return 0;
  }
}

cmlx_array cmlx_distributed_all_sum(cmlx_array a) {
  return guard_array([&] { return mx::distributed::all_sum(a->value, world()); });
}

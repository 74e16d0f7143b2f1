// CMLX: a plain-C face over the MLX C++ library (the only C++ in SwiftVLA).
//
// Conventions
// - Arrays are opaque handles (`cmlx_array`). Every function that returns one returns a
//   new handle the caller owns and must release with `cmlx_free`; NULL means failure.
// - Functions returning `int` return 0 on success and non-zero on failure.
// - On failure the MLX exception message is kept per thread: read it with
//   `cmlx_last_error`. No C++ exception ever crosses this header.
// - Shapes are `const int *shape, int ndim`; axes are `const int *axes, int naxes`.
#ifndef CMLX_H
#define CMLX_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cmlx_array_s *cmlx_array;
/// A growable list of arrays (std::vector<mlx::core::array> inside).
typedef struct cmlx_vec_s *cmlx_vec;
/// Result of loading a safetensors file: named arrays plus string metadata.
typedef struct cmlx_tensor_file_s *cmlx_tensor_file;
/// A compiled function (mlx::core::compile over a C callback).
typedef struct cmlx_compiled_s *cmlx_compiled;

typedef enum {
  CMLX_BOOL = 0,
  CMLX_UINT8,
  CMLX_UINT16,
  CMLX_UINT32,
  CMLX_UINT64,
  CMLX_INT8,
  CMLX_INT16,
  CMLX_INT32,
  CMLX_INT64,
  CMLX_FLOAT16,
  CMLX_FLOAT32,
  CMLX_FLOAT64,
  CMLX_BFLOAT16,
  CMLX_COMPLEX64,
} cmlx_dtype;

typedef enum {
  CMLX_NEG = 0, CMLX_ABS, CMLX_EXP, CMLX_LOG, CMLX_SQRT, CMLX_RSQRT, CMLX_SIN, CMLX_COS,
  CMLX_TANH, CMLX_SIGMOID, CMLX_SQUARE, CMLX_FLOOR, CMLX_CEIL, CMLX_ROUND, CMLX_SIGN,
  CMLX_LOGICAL_NOT, CMLX_ERF, CMLX_ERFINV, CMLX_LOG1P, CMLX_EXPM1, CMLX_RECIPROCAL,
  CMLX_STOP_GRADIENT, CMLX_ISNAN, CMLX_ISINF, CMLX_ARCTAN, CMLX_ARCSIN, CMLX_ARCCOS,
} cmlx_unary_op;

typedef enum {
  CMLX_ADD = 0, CMLX_SUBTRACT, CMLX_MULTIPLY, CMLX_DIVIDE, CMLX_POWER, CMLX_MAXIMUM,
  CMLX_MINIMUM, CMLX_EQUAL, CMLX_NOT_EQUAL, CMLX_LESS, CMLX_LESS_EQUAL, CMLX_GREATER,
  CMLX_GREATER_EQUAL, CMLX_LOGICAL_AND, CMLX_LOGICAL_OR, CMLX_FLOOR_DIVIDE,
  CMLX_REMAINDER, CMLX_ARCTAN2,
} cmlx_binary_op;

typedef enum {
  CMLX_SUM = 0, CMLX_MEAN, CMLX_MAX, CMLX_MIN, CMLX_PROD, CMLX_LOGSUMEXP, CMLX_ALL,
  CMLX_ANY, CMLX_VAR,
} cmlx_reduce_op;

// ---- errors, lifetime, info ---------------------------------------------------------
const char *cmlx_last_error(void);
void cmlx_free(cmlx_array a);
/// A second handle to the same (immutable) array.
cmlx_array cmlx_copy_handle(cmlx_array a);
int cmlx_ndim(cmlx_array a);
/// Writes min(ndim, capacity) dimensions; returns ndim.
int cmlx_shape(cmlx_array a, int *shape, int capacity);
int cmlx_dtype_of(cmlx_array a);
size_t cmlx_size(cmlx_array a);
size_t cmlx_itemsize(cmlx_array a);
/// Human-readable printout (MLX's formatting); free with cmlx_free_string.
char *cmlx_describe(cmlx_array a);
void cmlx_free_string(char *s);

// ---- creation -----------------------------------------------------------------------
/// Copies `data` (dense, row-major, `dtype` elements) into a new array.
cmlx_array cmlx_from_data(const void *data, const int *shape, int ndim, int dtype);
cmlx_array cmlx_full(const int *shape, int ndim, double value, int dtype);
cmlx_array cmlx_arange(double start, double stop, double step, int dtype);
cmlx_array cmlx_eye(int n, int m, int k, int dtype);

// ---- evaluation and readback ---------------------------------------------------------
int cmlx_eval(const cmlx_array *arrays, int n);
int cmlx_async_eval(const cmlx_array *arrays, int n);
/// Evaluates and copies the row-major contents (in the array's dtype) into `out`.
int cmlx_to_buffer(cmlx_array a, void *out, size_t nbytes);
/// Evaluates a one-element array and returns it as a double.
int cmlx_item(cmlx_array a, double *out);

// ---- elementwise ----------------------------------------------------------------------
cmlx_array cmlx_unary(int op, cmlx_array a);
cmlx_array cmlx_binary(int op, cmlx_array a, cmlx_array b);
cmlx_array cmlx_where(cmlx_array cond, cmlx_array a, cmlx_array b);
cmlx_array cmlx_astype(cmlx_array a, int dtype);
/// lo or hi may be NULL.
cmlx_array cmlx_clip(cmlx_array a, cmlx_array lo, cmlx_array hi);

// ---- reductions (naxes < 0: all axes) -------------------------------------------------
cmlx_array cmlx_reduce(int op, cmlx_array a, const int *axes, int naxes, int keepdims);
cmlx_array cmlx_argmax(cmlx_array a, int axis, int keepdims);
cmlx_array cmlx_argmin(cmlx_array a, int axis, int keepdims);
cmlx_array cmlx_cumsum(cmlx_array a, int axis, int reverse, int inclusive);
cmlx_array cmlx_sort(cmlx_array a, int axis);
cmlx_array cmlx_argsort(cmlx_array a, int axis);

// ---- linear algebra and neural-network ops -------------------------------------------
cmlx_array cmlx_matmul(cmlx_array a, cmlx_array b);
/// beta * c + alpha * (a @ b)
cmlx_array cmlx_addmm(cmlx_array c, cmlx_array a, cmlx_array b, float alpha, float beta);
/// input [N, H, W, Cin], weight [Cout, kH, kW, Cin / groups] -> [N, H', W', Cout]
cmlx_array cmlx_conv2d(cmlx_array input, cmlx_array weight, int stride_h, int stride_w,
                       int pad_h, int pad_w, int dil_h, int dil_w, int groups);
cmlx_array cmlx_softmax(cmlx_array a, const int *axes, int naxes, int precise);
/// weight and bias may be NULL (normalisation over the last axis).
cmlx_array cmlx_layer_norm(cmlx_array x, cmlx_array weight, cmlx_array bias, float eps);
cmlx_array cmlx_rms_norm(cmlx_array x, cmlx_array weight, float eps);
/// q [B, H, Lq, D], k/v [B, Hkv, Lk, D]. mask_mode "" or "causal"; mask may be NULL
/// (boolean: true = attend, or additive float).
cmlx_array cmlx_attention(cmlx_array q, cmlx_array k, cmlx_array v, float scale,
                          const char *mask_mode, cmlx_array mask);

// ---- shapes and indexing -----------------------------------------------------------------
cmlx_array cmlx_reshape(cmlx_array a, const int *shape, int ndim);
/// naxes == 0 reverses the axes.
cmlx_array cmlx_transpose(cmlx_array a, const int *axes, int naxes);
cmlx_array cmlx_broadcast_to(cmlx_array a, const int *shape, int ndim);
cmlx_array cmlx_expand_dims(cmlx_array a, const int *axes, int naxes);
/// naxes == 0 removes every axis of size 1.
cmlx_array cmlx_squeeze(cmlx_array a, const int *axes, int naxes);
cmlx_array cmlx_concatenate(const cmlx_array *arrays, int n, int axis);
cmlx_array cmlx_stack(const cmlx_array *arrays, int n, int axis);
/// Splits at `indices` along axis; appends the parts to `out`.
int cmlx_split_at(cmlx_array a, const int *indices, int nindices, int axis, cmlx_vec out);
int cmlx_split_equal(cmlx_array a, int parts, int axis, cmlx_vec out);
cmlx_array cmlx_slice(cmlx_array a, const int *start, const int *stop, const int *strides,
                      int ndim);
cmlx_array cmlx_slice_update(cmlx_array src, cmlx_array update, const int *start,
                             const int *stop, const int *strides, int ndim);
cmlx_array cmlx_take(cmlx_array a, cmlx_array indices, int axis);
cmlx_array cmlx_take_along_axis(cmlx_array a, cmlx_array indices, int axis);
cmlx_array cmlx_put_along_axis(cmlx_array a, cmlx_array indices, cmlx_array values,
                               int axis);
/// pad_low/pad_high per axis, constant value.
cmlx_array cmlx_pad(cmlx_array a, const int *pad_low, const int *pad_high, int ndim,
                    double value);
cmlx_array cmlx_tril(cmlx_array a, int k);
cmlx_array cmlx_triu(cmlx_array a, int k);

// ---- random (explicit keys: a key is a uint32 array [2]) -------------------------------
cmlx_array cmlx_random_key(uint64_t seed);
/// Returns [num, 2] keys.
cmlx_array cmlx_random_split(cmlx_array key, int num);
cmlx_array cmlx_random_normal(const int *shape, int ndim, int dtype, cmlx_array key);
cmlx_array cmlx_random_uniform(cmlx_array low, cmlx_array high, const int *shape, int ndim,
                               int dtype, cmlx_array key);
cmlx_array cmlx_random_bernoulli(cmlx_array p, const int *shape, int ndim, cmlx_array key);
cmlx_array cmlx_random_categorical(cmlx_array logits, int axis, cmlx_array key);
cmlx_array cmlx_random_randint(cmlx_array low, cmlx_array high, const int *shape, int ndim,
                               int dtype, cmlx_array key);
cmlx_array cmlx_random_gumbel(const int *shape, int ndim, int dtype, cmlx_array key);
cmlx_array cmlx_random_permutation(int n, cmlx_array key);

// ---- array lists ----------------------------------------------------------------------
cmlx_vec cmlx_vec_new(void);
void cmlx_vec_free(cmlx_vec v);
/// Appends a second handle to `a` (the caller keeps ownership of `a`).
void cmlx_vec_push(cmlx_vec v, cmlx_array a);
int cmlx_vec_size(cmlx_vec v);
/// A new handle to element i (caller frees).
cmlx_array cmlx_vec_get(cmlx_vec v, int i);

// ---- autodiff and compilation over C callbacks ---------------------------------------------
/// A function of arrays: read `inputs`, push results to `outputs`, return 0 on success.
/// A non-zero return aborts the surrounding transform with an error.
typedef int (*cmlx_function)(void *context, cmlx_vec inputs, cmlx_vec outputs);
/// Value and gradient of outputs[0] (a scalar) w.r.t. inputs[argnums]. All outputs are
/// appended to `values`, one gradient per argnum to `grads`.
int cmlx_value_and_grad(cmlx_function f, void *context, cmlx_vec inputs, const int *argnums,
                        int nargnums, cmlx_vec values, cmlx_vec grads);
/// Vector-Jacobian product: outputs of f at `primals` and the cotangent pulled back.
int cmlx_vjp(cmlx_function f, void *context, cmlx_vec primals, cmlx_vec cotangents,
             cmlx_vec outputs, cmlx_vec vjps);
/// Jacobian-vector product.
int cmlx_jvp(cmlx_function f, void *context, cmlx_vec primals, cmlx_vec tangents,
             cmlx_vec outputs, cmlx_vec jvps);
/// `context` must outlive the compiled function.
cmlx_compiled cmlx_compile(cmlx_function f, void *context, int shapeless);
int cmlx_compiled_call(cmlx_compiled c, cmlx_vec inputs, cmlx_vec outputs);
void cmlx_compiled_free(cmlx_compiled c);
void cmlx_set_compile_enabled(int enabled);

// ---- safetensors ------------------------------------------------------------------------
int cmlx_save_safetensors(const char *path, const char *const *names,
                          const cmlx_array *arrays, int n, const char *const *meta_keys,
                          const char *const *meta_values, int nmeta);
cmlx_tensor_file cmlx_load_safetensors(const char *path);
void cmlx_tensor_file_free(cmlx_tensor_file f);
int cmlx_tensor_file_count(cmlx_tensor_file f);
/// Names are sorted; the pointer lives as long as `f`.
const char *cmlx_tensor_file_name(cmlx_tensor_file f, int i);
cmlx_array cmlx_tensor_file_array(cmlx_tensor_file f, int i);
int cmlx_tensor_file_meta_count(cmlx_tensor_file f);
const char *cmlx_tensor_file_meta_key(cmlx_tensor_file f, int i);
const char *cmlx_tensor_file_meta_value(cmlx_tensor_file f, int i);

// ---- runtime -----------------------------------------------------------------------------
size_t cmlx_active_memory(void);
size_t cmlx_peak_memory(void);
void cmlx_clear_cache(void);
const char *cmlx_version(void);
/// C = A·B with OpenBLAS's cblas_sgemm called directly (row-major, float32), as the
/// reference that benchmarks compare MLX's matmul against. Returns non-zero where the
/// build has no CBLAS.
int cmlx_reference_sgemm(int m, int n, int k, const float *a, const float *b, float *c);

// ---- fast float32 CPU kernels (FastKernels.cpp) ---------------------------------------
/// Ops with vectorized kernels; the *_GRAD codes are the first derivatives the VJPs use.
typedef enum {
  CMLX_FAST_EXP = 0, CMLX_FAST_TANH, CMLX_FAST_SIGMOID, CMLX_FAST_SILU, CMLX_FAST_ERF,
  CMLX_FAST_GELU, CMLX_FAST_GELU_TANH, CMLX_FAST_SILU_GRAD, CMLX_FAST_ERF_GRAD,
  CMLX_FAST_GELU_GRAD, CMLX_FAST_GELU_TANH_GRAD,
} cmlx_fast_op;
/// The op with the fast kernel when the switch is on, else with MLX's own ops.
cmlx_array cmlx_fast_unary(int op, cmlx_array a);
/// The op with the fast kernel whatever the switch says (float32 on the CPU; other dtypes
/// and devices still take MLX's ops).
cmlx_array cmlx_fast_unary_kernel(int op, cmlx_array a);
/// The op with MLX's own ops whatever the switch says.
cmlx_array cmlx_fast_unary_reference(int op, cmlx_array a);
/// Global switch, on by default.
void cmlx_set_fast_kernels(int enabled);
int cmlx_fast_kernels_enabled(void);
/// 1 when the kernels run the AVX2+FMA code, 0 for the scalar fallback.
int cmlx_fast_kernels_simd(void);
/// Runs kernel `op` directly over host float buffers (no MLX graph); simd = 0 forces the
/// scalar fallback. Returns non-zero for an unknown op.
int cmlx_fast_apply(int op, const float *in, float *out, size_t n, int simd);

// ---- fused row-wise float32 CPU kernels over the last axis (FusedKernels.cpp) ---------
/// Forward ops, then the VJP kernels their primitives use.
typedef enum {
  CMLX_FUSED_SOFTMAX = 0, CMLX_FUSED_LOG_SOFTMAX, CMLX_FUSED_LOGSUMEXP, CMLX_FUSED_LAYER_NORM,
  CMLX_FUSED_RMS_NORM, CMLX_FUSED_SOFTMAX_BWD, CMLX_FUSED_LOG_SOFTMAX_BWD,
  CMLX_FUSED_LAYER_NORM_BWD, CMLX_FUSED_RMS_NORM_BWD,
} cmlx_fused_op;
/// softmax / log-softmax / logsumexp (keepdims off) over the last axis as one fused op
/// (float32 on the CPU; anything else gets MLX's ops). The caller checks the switch.
cmlx_array cmlx_fused_row_op(int op, cmlx_array a);
/// MLX's own expression for the same op.
cmlx_array cmlx_fused_row_op_reference(int op, cmlx_array a);
/// LayerNorm / RMSNorm over the last axis as one fused op (weight, bias may be NULL).
cmlx_array cmlx_fused_layer_norm(cmlx_array x, cmlx_array weight, cmlx_array bias, float eps);
cmlx_array cmlx_fused_rms_norm(cmlx_array x, cmlx_array weight, float eps);
/// cmlx_attention built from matmuls and the fused softmax (float32 on the CPU; anything
/// else, and shapes MLX would reject, go to MLX's op).
cmlx_array cmlx_fused_attention(cmlx_array q, cmlx_array k, cmlx_array v, float scale,
                                const char *mask_mode, cmlx_array mask);
/// Runs one row kernel over host buffers of `rows` × `d` floats (tests); simd = 0 forces
/// the scalar fallback. inputs / outputs by op:
///   SOFTMAX, LOG_SOFTMAX: {x} → {y};  LOGSUMEXP: {x} → {lse[rows]}
///   LAYER_NORM: {x, w, b} → {y};  RMS_NORM: {x, w} → {y}   (w, b [d] or NULL)
///   SOFTMAX_BWD, LOG_SOFTMAX_BWD: {y, g} → {dx}   (y the forward output)
///   LAYER_NORM_BWD: {x, w, g} → {dx, dw, db};  RMS_NORM_BWD: {x, w, g} → {dx, dw}
///   (dw, db [d] or NULL to skip). Returns non-zero for an unknown op.
int cmlx_fused_rows_host(int op, const float *const *inputs, float *const *outputs, size_t rows,
                         size_t d, float eps, int simd);

// ---- distributed (MLX's own layer: ring over TCP, MPI) ---------------------------------
/// Initializes MLX distributed with backend `backend` ("ring", "mpi" or "any") from the
/// environment a launcher sets (ring: MLX_RANK and MLX_HOSTFILE). With `strict` 0 a missing
/// setup yields a group of size 1. Writes the rank and size; 0 on success.
int cmlx_distributed_init(int strict, const char *backend, int *rank, int *size);
/// Whether a backend ("ring", "mpi", "any") is compiled into this MLX.
int cmlx_distributed_is_available(const char *backend);
/// Sum of `a` over every process of the group `cmlx_distributed_init` made (lazy, like any op).
cmlx_array cmlx_distributed_all_sum(cmlx_array a);

#ifdef __cplusplus
}
#endif
#endif

"""NumPy's time for the ops of `vla bench tensor`, on arrays of the same shapes, for the NumPy
column: float32 elementwise ops over 2048×1024 (erf through SciPy, which `jax[cpu]` brings;
GELU as x·Φ(x) and its tanh form) and row ops over the last axis (softmax, log-softmax,
logsumexp over [32, 4, 64, 64]; LayerNorm, RMSNorm over [2048, 256]). Prints one JSON object:
op → ns/element, best of --repeats.
"""
import argparse, json, time
import numpy as np

p = argparse.ArgumentParser()
p.add_argument("--repeats", type=int, default=5)
args = p.parse_args()
rng = np.random.default_rng(0)
x = rng.uniform(-4, 4, (2048, 1024)).astype(np.float32)
rows = rng.normal(0, 2, (32, 4, 64, 64)).astype(np.float32)
norm_in = rng.normal(0, 1, (2048, 256)).astype(np.float32)
g = np.ones(256, np.float32); b = np.zeros(256, np.float32)
try:
    from scipy.special import erf
except ImportError:
    erf = None


def best(fn, n):
    t = float("inf")
    for _ in range(args.repeats + 1):
        t0 = time.perf_counter(); fn(); t = min(t, time.perf_counter() - t0)
    return t * 1e9 / n


def softmax(a):
    e = np.exp(a - a.max(-1, keepdims=True)); return e / e.sum(-1, keepdims=True)


def logsumexp(a):
    m = a.max(-1, keepdims=True); return (m + np.log(np.exp(a - m).sum(-1, keepdims=True)))[..., 0]


def layer_norm(a):
    mu = a.mean(-1, keepdims=True); var = a.var(-1, keepdims=True)
    return (a - mu) / np.sqrt(var + 1e-5) * g + b


def rms_norm(a):
    return a / np.sqrt((a * a).mean(-1, keepdims=True) + 1e-6) * g


out = {
    "exp": best(lambda: np.exp(x), x.size),
    "tanh": best(lambda: np.tanh(x), x.size),
    "sigmoid": best(lambda: 1 / (1 + np.exp(-x)), x.size),
    "silu": best(lambda: x / (1 + np.exp(-x)), x.size),
    "gelu_tanh": best(lambda: 0.5 * x * (1 + np.tanh(0.7978845608 * (x + 0.044715 * x * x * x))), x.size),
    "softmax": best(lambda: softmax(rows), rows.size),
    "logsoftmax": best(lambda: rows - logsumexp(rows)[..., None], rows.size),
    "logsumexp": best(lambda: logsumexp(rows), rows.size),
    "layernorm": best(lambda: layer_norm(norm_in), norm_in.size),
    "rmsnorm": best(lambda: rms_norm(norm_in), norm_in.size),
}
if erf is not None:
    out["erf"] = best(lambda: erf(x), x.size)
    out["gelu"] = best(lambda: 0.5 * x * (1 + erf(x * 0.70710678)), x.size)
print(json.dumps(out))

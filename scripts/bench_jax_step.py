"""The training step of `vla bench tensor` in JAX (`jax.jit`, XLA CPU: what openpi trains with),
for a side-by-side time. Same graph as TensorKit's CausalTransformer and bench_mlx_step.py:
token + learned position embeddings, 4 pre-norm blocks (LayerNorm, 4-head causal attention,
exact-GELU MLP ×4), final LayerNorm, linear head; cross-entropy; AdamW (β = 0.9/0.999,
weight decay 0.01), the whole step jitted. Prints `best_ms <float>` (best of --steps after
the compiling warm-up step).
"""
import argparse, time
import jax
import jax.numpy as jnp

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=5)
args = p.parse_args()
V, D, H, LAYERS, B, L = 512, 256, 4, 4, 32, 64


def init(key):
    def dense(k, n_in, n_out, bias=True):
        w = jax.random.normal(k, (n_in, n_out), jnp.float32) * n_in ** -0.5
        return {"w": w, "b": jnp.zeros((n_out,), jnp.float32)} if bias else {"w": w}
    keys = iter(jax.random.split(key, 4 + 6 * LAYERS))
    norm = lambda: {"g": jnp.ones((D,), jnp.float32), "b": jnp.zeros((D,), jnp.float32)}
    blocks = [{"n1": norm(), "n2": norm(), "q": dense(next(keys), D, D), "k": dense(next(keys), D, D),
               "v": dense(next(keys), D, D), "o": dense(next(keys), D, D),
               "up": dense(next(keys), D, 4 * D), "down": dense(next(keys), 4 * D, D)} for _ in range(LAYERS)]
    return {"tok": jax.random.normal(next(keys), (V, D)) * 0.02, "pos": jax.random.normal(next(keys), (L, D)) * 0.02,
            "blocks": blocks, "norm": norm(), "head": dense(next(keys), D, V, bias=False)}


def layer_norm(p, x):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) * jax.lax.rsqrt(var + 1e-5) * p["g"] + p["b"]


def linear(p, x):
    return x @ p["w"] + p["b"] if "b" in p else x @ p["w"]


def forward(params, t):
    x = params["tok"][t] + params["pos"][jnp.arange(L)]
    causal = jnp.tril(jnp.ones((L, L), bool))
    for blk in params["blocks"]:
        h = layer_norm(blk["n1"], x)
        split = lambda z: z.reshape(B, L, H, D // H).transpose(0, 2, 1, 3)
        q, k, v = split(linear(blk["q"], h)), split(linear(blk["k"], h)), split(linear(blk["v"], h))
        s = jnp.where(causal, q @ k.transpose(0, 1, 3, 2) * (D // H) ** -0.5, -jnp.inf)
        a = jax.nn.softmax(s, axis=-1) @ v
        x = x + linear(blk["o"], a.transpose(0, 2, 1, 3).reshape(B, L, D))
        x = x + linear(blk["down"], jax.nn.gelu(linear(blk["up"], layer_norm(blk["n2"], x)), approximate=False))
    return linear(params["head"], layer_norm(params["norm"], x))


def loss_fn(params, x, y):
    logits = forward(params, x)
    return (jax.nn.logsumexp(logits, -1) - jnp.take_along_axis(logits, y[..., None], -1)[..., 0]).mean()


@jax.jit
def step(params, m, v, count, x, y):
    loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
    count = count + 1
    lr, b1, b2, eps, wd = 1e-3, 0.9, 0.999, 1e-8, 0.01
    m = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, m, grads)
    v = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, v, grads)
    c1, c2 = 1 - b1 ** count, 1 - b2 ** count
    params = jax.tree.map(lambda p, m, v: p * (1 - lr * wd) - lr * (m / c1) / (jnp.sqrt(v / c2) + eps), params, m, v)
    return params, m, v, count, loss


key = jax.random.PRNGKey(0)
params = init(key)
m = jax.tree.map(jnp.zeros_like, params)
v = jax.tree.map(jnp.zeros_like, params)
count = jnp.zeros((), jnp.float32)
tokens = jax.random.randint(jax.random.PRNGKey(1), (B, L + 1), 0, V)
x, y = tokens[:, :-1], tokens[:, 1:]
best = float("inf")
for i in range(args.steps + 1):
    t0 = time.perf_counter()
    params, m, v, count, loss = step(params, m, v, count, x, y)
    jax.block_until_ready((params, loss))
    dt = time.perf_counter() - t0
    if i > 0:
        best = min(best, dt)
print(f"best_ms {best * 1000:.2f}")

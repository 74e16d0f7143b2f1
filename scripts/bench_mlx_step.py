"""The training step of `vla bench tensor` in MLX-Python, for a side-by-side time.

Same graph as TensorKit's CausalTransformer: token + learned position embeddings, 4 pre-norm
blocks (LayerNorm, 4-head attention via mx.fast.scaled_dot_product_attention with a causal
mask, exact-GELU MLP ×4), final LayerNorm, linear head; cross-entropy; AdamW. Prints
`best_ms <float>` (best of --steps after one warm-up step).
"""
import argparse, time
import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=5)
args = p.parse_args()
V, D, H, LAYERS, B, L = 512, 256, 4, 4, 32, 64

class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.n1, self.n2 = nn.LayerNorm(D), nn.LayerNorm(D)
        self.q, self.k, self.v, self.o = (nn.Linear(D, D) for _ in range(4))
        self.up, self.down = nn.Linear(D, 4 * D), nn.Linear(4 * D, D)
    def __call__(self, x):
        h = self.n1(x)
        split = lambda t: t.reshape(B, L, H, D // H).transpose(0, 2, 1, 3)
        a = mx.fast.scaled_dot_product_attention(split(self.q(h)), split(self.k(h)), split(self.v(h)),
                                                 scale=(D // H) ** -0.5, mask="causal")
        x = x + self.o(a.transpose(0, 2, 1, 3).reshape(B, L, D))
        return x + self.down(nn.gelu(self.up(self.n2(x))))

class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok, self.pos = nn.Embedding(V, D), nn.Embedding(L, D)
        self.blocks = [Block() for _ in range(LAYERS)]
        self.norm, self.head = nn.LayerNorm(D), nn.Linear(D, V, bias=False)
    def __call__(self, t):
        x = self.tok(t) + self.pos(mx.arange(L))
        for b in self.blocks: x = b(x)
        return self.head(self.norm(x))

mx.random.seed(0)
model = Model()
tokens = mx.random.randint(0, V, (B, L + 1))
x, y = tokens[:, :-1], tokens[:, 1:]
opt = optim.AdamW(learning_rate=1e-3)
loss_and_grad = nn.value_and_grad(model, lambda m: nn.losses.cross_entropy(m(x), y).mean())
best = float("inf")
for i in range(args.steps + 1):
    t0 = time.perf_counter()
    loss, grads = loss_and_grad(model)
    opt.update(model, grads)
    mx.eval(model.parameters(), opt.state, loss)
    dt = time.perf_counter() - t0
    if i > 0: best = min(best, dt)
print(f"best_ms {best * 1000:.2f}")

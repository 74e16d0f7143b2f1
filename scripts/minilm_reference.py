#!/usr/bin/env python3
"""Reference values for the Swift MiniLM text encoder and WordPiece tokenizer (the tests run this).

Reads JSON from stdin: {"model_dir": DIR, "texts": [...], "max_length": N, "forward": [indices]}.
Writes JSON to stdout:
  ids        HuggingFace `tokenizers` ids of each text ([CLS] ... [SEP], no padding or truncation)
  truncated  the same, truncated to max_length (HF keeps [CLS] and [SEP])
  hidden     for the texts at `forward`: last-layer hidden states [L][384], a float64 NumPy
             BERT forward pass written from the architecture (not from any library's model code)
  embedding  for the same texts: mean over tokens, L2-normalized (sentence-transformers' pooling)
"""
import json
import math
import sys

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer


def layer_norm(x, weight, bias, eps):
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


_erf = np.frompyfunc(math.erf, 1, 1)


def gelu(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)).astype(np.float64))


def forward(w, config, ids):
    """One unpadded sequence: ids [L] -> hidden states [L, d]."""
    d, heads = config["hidden_size"], config["num_attention_heads"]
    eps = config["layer_norm_eps"]
    hw = d // heads
    length = len(ids)
    h = (w["embeddings.word_embeddings.weight"][ids]
         + w["embeddings.position_embeddings.weight"][:length]
         + w["embeddings.token_type_embeddings.weight"][0])
    h = layer_norm(h, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)

    def dense(name, x):
        return x @ w[name + ".weight"].T + w[name + ".bias"]

    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        q = dense(p + "attention.self.query", h).reshape(length, heads, hw).transpose(1, 0, 2)
        k = dense(p + "attention.self.key", h).reshape(length, heads, hw).transpose(1, 0, 2)
        v = dense(p + "attention.self.value", h).reshape(length, heads, hw).transpose(1, 0, 2)
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(hw)
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        probs = scores / scores.sum(axis=-1, keepdims=True)
        context = (probs @ v).transpose(1, 0, 2).reshape(length, d)
        h = layer_norm(dense(p + "attention.output.dense", context) + h,
                       w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], eps)
        inner = gelu(dense(p + "intermediate.dense", h))
        h = layer_norm(dense(p + "output.dense", inner) + h,
                       w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps)
    return h


def main():
    request = json.load(sys.stdin)
    model_dir = request["model_dir"]
    texts = request["texts"]
    tokenizer = Tokenizer.from_file(f"{model_dir}/tokenizer.json")
    tokenizer.no_padding()
    tokenizer.no_truncation()
    ids = [tokenizer.encode(t).ids for t in texts]
    tokenizer.enable_truncation(max_length=request["max_length"])
    truncated = [tokenizer.encode(t).ids for t in texts]

    with open(f"{model_dir}/config.json") as f:
        config = json.load(f)
    weights = {k: v.astype(np.float64) for k, v in load_file(f"{model_dir}/model.safetensors").items()}
    hidden, embedding = [], []
    for i in request.get("forward", []):
        h = forward(weights, config, np.array(ids[i]))
        mean = h.mean(axis=0)
        hidden.append(h.tolist())
        embedding.append((mean / max(np.linalg.norm(mean), 1e-12)).tolist())
    json.dump({"ids": ids, "truncated": truncated, "hidden": hidden, "embedding": embedding}, sys.stdout)


if __name__ == "__main__":
    main()

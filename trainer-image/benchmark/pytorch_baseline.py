#!/usr/bin/env python3
"""PyTorch eager baseline for `trainer benchmark`: the same Llama architecture, sizes, batch, LoRA
configuration and optimizer, written directly in torch (no transformers), fp32 on CPU.

Run with Debian's torch (`apt-get install python3-torch libopenblas0-pthread`; without OpenBLAS
its matmul falls back to a slow reference BLAS):

  /usr/bin/python3 trainer-image/benchmark/pytorch_baseline.py --threads 2 > pytorch.json

`trainer benchmark --pytorch /usr/bin/python3` runs it and prints both side by side.
"""
import argparse
import json
import math
import resource
import time

import torch
import torch.nn.functional as F


class LoRALinear(torch.nn.Module):
    def __init__(self, base, rank, alpha):
        super().__init__()
        self.base = base
        self.base.weight.requires_grad_(False)
        self.lora_A = torch.nn.Parameter(torch.empty(rank, base.in_features))
        torch.nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.lora_B = torch.nn.Parameter(torch.zeros(base.out_features, rank))
        self.scaling = alpha / rank

    def forward(self, x):
        return self.base(x) + F.linear(F.linear(x, self.lora_A) * self.scaling, self.lora_B)


class RMSNorm(torch.nn.Module):
    def __init__(self, dim, eps=1e-5):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Layer(torch.nn.Module):
    def __init__(self, h, heads, kv_heads, inter):
        super().__init__()
        self.heads, self.kv_heads, self.hd = heads, kv_heads, h // heads
        self.q_proj = torch.nn.Linear(h, heads * self.hd, bias=False)
        self.k_proj = torch.nn.Linear(h, kv_heads * self.hd, bias=False)
        self.v_proj = torch.nn.Linear(h, kv_heads * self.hd, bias=False)
        self.o_proj = torch.nn.Linear(heads * self.hd, h, bias=False)
        self.gate_proj = torch.nn.Linear(h, inter, bias=False)
        self.up_proj = torch.nn.Linear(h, inter, bias=False)
        self.down_proj = torch.nn.Linear(inter, h, bias=False)
        self.input_layernorm = RMSNorm(h)
        self.post_attention_layernorm = RMSNorm(h)

    def forward(self, x, cos, sin, mask):
        b, t, _ = x.shape
        n = self.input_layernorm(x)
        q = self.q_proj(n).view(b, t, self.heads, self.hd).transpose(1, 2)
        k = self.k_proj(n).view(b, t, self.kv_heads, self.hd).transpose(1, 2)
        v = self.v_proj(n).view(b, t, self.kv_heads, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = self.heads // self.kv_heads
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        s = (q @ k.transpose(2, 3)) / math.sqrt(self.hd) + mask
        a = (s.softmax(-1) @ v).transpose(1, 2).reshape(b, t, -1)
        x = x + self.o_proj(a)
        n = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(n)) * self.up_proj(n))


class Llama(torch.nn.Module):
    def __init__(self, vocab, h, layers, heads, kv_heads, inter):
        super().__init__()
        self.embed_tokens = torch.nn.Embedding(vocab, h)
        self.layers = torch.nn.ModuleList(Layer(h, heads, kv_heads, inter) for _ in range(layers))
        self.norm = RMSNorm(h)
        self.hd = h // heads
        for p in self.parameters():
            if p.dim() > 1:
                torch.nn.init.normal_(p, std=0.02)

    def forward(self, ids):
        t = ids.shape[1]
        inv = 1.0 / (10000.0 ** (torch.arange(0, self.hd, 2, dtype=torch.float32) / self.hd))
        freqs = torch.outer(torch.arange(t, dtype=torch.float32), inv)
        emb = torch.cat((freqs, freqs), -1)
        cos, sin = emb.cos(), emb.sin()
        mask = torch.full((t, t), -1e9).triu(1)
        x = self.embed_tokens(ids)
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        return F.linear(self.norm(x), self.embed_tokens.weight)  # tied head


def apply_lora(model, rank, alpha):
    for p in model.parameters():
        p.requires_grad_(False)
    for layer in model.layers:
        for name in ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"):
            setattr(layer, name, LoRALinear(getattr(layer, name), rank, alpha))


def train_tokens_per_second(args, lora):
    torch.manual_seed(1)
    model = Llama(args.vocab, args.hidden, args.layers, args.heads, args.kv_heads, args.intermediate)
    if lora:
        apply_lora(model, args.lora_rank, 2.0 * args.lora_rank)
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() > 1]
    no_decay = [p for p in params if p.dim() <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.0}, {"params": no_decay, "weight_decay": 0.0}], lr=1e-4)
    ids = torch.randint(0, args.vocab, (args.batch_size, args.sequence_length))
    started = None
    for step in range(args.steps):
        if step == args.warmup_steps:
            started = time.perf_counter()
        logits = model(ids)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, args.vocab), ids[:, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
    seconds = time.perf_counter() - started
    tokens = (args.steps - args.warmup_steps) * args.batch_size * args.sequence_length
    return tokens / seconds, sum(p.numel() for p in params), seconds / (args.steps - args.warmup_steps)


def gemm_gflops(n=1024, repeats=8, rounds=6):
    a, b = torch.randn(n, n), torch.randn(n, n)
    best = 0.0
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(repeats):
            a @ b
        best = max(best, repeats * 2 * n ** 3 / (time.perf_counter() - t) / 1e9)
    return best


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--vocab", type=int, default=299)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--kv-heads", type=int, default=4)
    p.add_argument("--intermediate", type=int, default=1408)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--sequence-length", type=int, default=128)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--warmup-steps", type=int, default=3)
    p.add_argument("--lora-rank", type=int, default=8)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    samples = [gemm_gflops()]
    result = {"torch": torch.__version__, "threads": args.threads}
    for name, lora in (("lora", True), ("full", False)):
        tps, trainable, sps = train_tokens_per_second(args, lora)
        result[name] = {"tokensPerSecond": round(tps, 3), "trainableParameters": trainable, "secondsPerStep": round(sps, 3)}
        samples.append(gemm_gflops())
    result["gemmGflops"] = round(max(samples), 3)
    result["gemmGflopsSamples"] = [round(s, 3) for s in samples]
    result["peakRssMiB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""PyTorch baseline for the model benchmarks: the same `bench` model, timed in the same run as ours.

A faithful torch restatement of the official DeepSeek-V3 `inference/model.py` (github.com/deepseek-ai/DeepSeek-V3,
commit 9b4e978): the same modules and the same tensor operations (complex RoPE, the naive MLA path with
`torch.cat([q_nope, q_pe])` and the einsum over per-head keys, the sigmoid gate with bias-for-selection and
group-limited top-k, the per-expert loop of `MoE.forward` with `torch.where` and `index`-add, the shared expert),
without what cannot run on a CPU with torch 1.13 or does not apply to training: no distributed code, no KV cache
buffers (cache-free full-sequence attention, as for training), no `inference_mode`, logits at every position,
float32 everywhere, `F.rms_norm` written as torch's composite formula (it exists only from torch 2.4), and the
router bias (created by the official code only at dim 7168) attached as a buffer, as the golden data did.

Modes (one JSON object on stdout with --json, else a line of text):
  train    forward over all positions -> mean next-token cross-entropy -> backward -> AdamW step (the step
           benchmarks/train.bench.mjs times: MTP and balance loss off)
  forward  full-sequence logits under torch.no_grad()

The config comes from the caller as the library's ModelConfig JSON (camelCase keys), so both sides build the same
model. Weights: N(0, 0.006²) for matrices, ones for norms, zeros for the router bias, as initWeights does (not the
same draws; the timing does not depend on them beyond the routing, which is near-uniform either way).

Run: python3 benchmarks/torch/deepseek_v3_bench.py --config '<json>' --mode train --threads 1 --json
"""
import argparse
import json
import math
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn


class Args:
    """The official ModelArgs fields this model uses, mapped from the library's config keys."""

    def __init__(self, c, max_seq_len):
        self.max_seq_len = max_seq_len
        self.vocab_size = c["vocabSize"]
        self.dim = c["hiddenSize"]
        self.inter_dim = c["intermediateSize"]
        self.moe_inter_dim = c["moeIntermediateSize"]
        self.n_layers = c["numHiddenLayers"]
        self.n_dense_layers = c["firstKDenseReplace"]
        self.n_heads = c["numAttentionHeads"]
        self.n_routed_experts = c["nRoutedExperts"]
        self.n_shared_experts = c["nSharedExperts"]
        self.n_activated_experts = c["numExpertsPerTok"]
        self.n_expert_groups = c["nGroup"]
        self.n_limited_groups = c["topkGroup"]
        self.score_func = c["scoringFunc"]
        self.route_scale = c["routedScalingFactor"]
        self.q_lora_rank = c["qLoraRank"]
        self.kv_lora_rank = c["kvLoraRank"]
        self.qk_nope_head_dim = c["qkNopeHeadDim"]
        self.qk_rope_head_dim = c["qkRopeHeadDim"]
        self.v_head_dim = c["vHeadDim"]
        self.rope_theta = c["ropeTheta"]
        self.router_bias = c["topkMethod"] == "noaux_tc"
        self.eps = c["rmsNormEps"]
        if c.get("ropeScaling") is not None:
            raise SystemExit("deepseek_v3_bench.py: YaRN configs are not supported by this baseline (the bench preset has none)")


class Linear(nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_features, in_features))

    def forward(self, x):
        return F.linear(x, self.weight)


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        # torch's composite rms_norm (F.rms_norm needs torch >= 2.4)
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def precompute_freqs_cis(args):
    dim = args.qk_rope_head_dim
    freqs = 1.0 / (args.rope_theta ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    t = torch.arange(args.max_seq_len)
    freqs = torch.outer(t, freqs)
    return torch.polar(torch.ones_like(freqs), freqs)


def apply_rotary_emb(x, freqs_cis):
    dtype = x.dtype
    x = torch.view_as_complex(x.float().view(*x.shape[:-1], -1, 2))
    freqs_cis = freqs_cis.view(1, x.size(1), 1, x.size(-1))
    y = torch.view_as_real(x * freqs_cis).flatten(3)
    return y.to(dtype)


class MLA(nn.Module):
    def __init__(self, args):
        super().__init__()
        self.n_heads = args.n_heads
        self.q_lora_rank = args.q_lora_rank
        self.kv_lora_rank = args.kv_lora_rank
        self.qk_nope_head_dim = args.qk_nope_head_dim
        self.qk_rope_head_dim = args.qk_rope_head_dim
        self.qk_head_dim = args.qk_nope_head_dim + args.qk_rope_head_dim
        self.v_head_dim = args.v_head_dim
        if self.q_lora_rank == 0:
            self.wq = Linear(args.dim, self.n_heads * self.qk_head_dim)
        else:
            self.wq_a = Linear(args.dim, self.q_lora_rank)
            self.q_norm = RMSNorm(self.q_lora_rank, args.eps)
            self.wq_b = Linear(self.q_lora_rank, self.n_heads * self.qk_head_dim)
        self.wkv_a = Linear(args.dim, self.kv_lora_rank + self.qk_rope_head_dim)
        self.kv_norm = RMSNorm(self.kv_lora_rank, args.eps)
        self.wkv_b = Linear(self.kv_lora_rank, self.n_heads * (self.qk_nope_head_dim + self.v_head_dim))
        self.wo = Linear(self.n_heads * self.v_head_dim, args.dim)
        self.softmax_scale = self.qk_head_dim ** -0.5

    def forward(self, x, freqs_cis, mask):
        bsz, seqlen, _ = x.size()
        if self.q_lora_rank == 0:
            q = self.wq(x)
        else:
            q = self.wq_b(self.q_norm(self.wq_a(x)))
        q = q.view(bsz, seqlen, self.n_heads, self.qk_head_dim)
        q_nope, q_pe = torch.split(q, [self.qk_nope_head_dim, self.qk_rope_head_dim], dim=-1)
        q_pe = apply_rotary_emb(q_pe, freqs_cis)
        kv = self.wkv_a(x)
        kv, k_pe = torch.split(kv, [self.kv_lora_rank, self.qk_rope_head_dim], dim=-1)
        k_pe = apply_rotary_emb(k_pe.unsqueeze(2), freqs_cis)
        # official attn_impl == "naive", keys of this call only (no cache)
        q = torch.cat([q_nope, q_pe], dim=-1)
        kv = self.wkv_b(self.kv_norm(kv))
        kv = kv.view(bsz, seqlen, self.n_heads, self.qk_nope_head_dim + self.v_head_dim)
        k_nope, v = torch.split(kv, [self.qk_nope_head_dim, self.v_head_dim], dim=-1)
        k = torch.cat([k_nope, k_pe.expand(-1, -1, self.n_heads, -1)], dim=-1)
        scores = torch.einsum("bshd,bthd->bsht", q, k) * self.softmax_scale
        if mask is not None:
            scores = scores + mask.unsqueeze(1)
        scores = scores.softmax(dim=-1, dtype=torch.float32).type_as(x)
        x = torch.einsum("bsht,bthd->bshd", scores, v)
        return self.wo(x.flatten(2))


class MLP(nn.Module):
    def __init__(self, dim, inter_dim):
        super().__init__()
        self.w1 = Linear(dim, inter_dim)
        self.w2 = Linear(inter_dim, dim)
        self.w3 = Linear(dim, inter_dim)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Gate(nn.Module):
    def __init__(self, args):
        super().__init__()
        self.topk = args.n_activated_experts
        self.n_groups = args.n_expert_groups
        self.topk_groups = args.n_limited_groups
        self.score_func = args.score_func
        self.route_scale = args.route_scale
        self.weight = nn.Parameter(torch.empty(args.n_routed_experts, args.dim))
        # selection-only bias: a buffer (no gradient reaches it in the official code either)
        self.register_buffer("bias", torch.zeros(args.n_routed_experts) if args.router_bias else None)

    def forward(self, x):
        scores = F.linear(x, self.weight)
        if self.score_func == "softmax":
            scores = scores.softmax(dim=-1, dtype=torch.float32)
        else:
            scores = scores.sigmoid()
        original_scores = scores
        if self.bias is not None:
            scores = scores + self.bias
        if self.n_groups > 1:
            scores = scores.view(x.size(0), self.n_groups, -1)
            if self.bias is None:
                group_scores = scores.amax(dim=-1)
            else:
                group_scores = scores.topk(2, dim=-1)[0].sum(dim=-1)
            indices = group_scores.topk(self.topk_groups, dim=-1)[1]
            mask = scores.new_ones(x.size(0), self.n_groups, dtype=bool).scatter_(1, indices, False)
            scores = scores.masked_fill_(mask.unsqueeze(-1), float("-inf")).flatten(1)
        indices = torch.topk(scores, self.topk, dim=-1)[1]
        weights = original_scores.gather(1, indices)
        if self.score_func == "sigmoid":
            weights = weights / weights.sum(dim=-1, keepdim=True)  # official: in place (inference_mode)
        weights = weights * self.route_scale
        return weights.type_as(x), indices


class MoE(nn.Module):
    def __init__(self, args):
        super().__init__()
        self.dim = args.dim
        self.n_routed_experts = args.n_routed_experts
        self.gate = Gate(args)
        self.experts = nn.ModuleList([MLP(args.dim, args.moe_inter_dim) for _ in range(self.n_routed_experts)])
        self.shared_experts = MLP(args.dim, args.n_shared_experts * args.moe_inter_dim)

    def forward(self, x):
        shape = x.size()
        x = x.view(-1, self.dim)
        weights, indices = self.gate(x)
        y = torch.zeros_like(x)
        counts = torch.bincount(indices.flatten(), minlength=self.n_routed_experts).tolist()
        for i in range(self.n_routed_experts):
            if counts[i] == 0:
                continue
            idx, top = torch.where(indices == i)
            y[idx] += self.experts[i](x[idx]) * weights[idx, top, None]
        z = self.shared_experts(x)
        return (y + z).view(shape)


class Block(nn.Module):
    def __init__(self, layer_id, args):
        super().__init__()
        self.attn = MLA(args)
        self.ffn = MLP(args.dim, args.inter_dim) if layer_id < args.n_dense_layers else MoE(args)
        self.attn_norm = RMSNorm(args.dim, args.eps)
        self.ffn_norm = RMSNorm(args.dim, args.eps)

    def forward(self, x, freqs_cis, mask):
        x = x + self.attn(self.attn_norm(x), freqs_cis, mask)
        x = x + self.ffn(self.ffn_norm(x))
        return x


class Transformer(nn.Module):
    def __init__(self, args):
        super().__init__()
        self.embed = nn.Embedding(args.vocab_size, args.dim)
        self.layers = nn.ModuleList([Block(i, args) for i in range(args.n_layers)])
        self.norm = RMSNorm(args.dim, args.eps)
        self.head = Linear(args.dim, args.vocab_size)
        self.register_buffer("freqs_cis", precompute_freqs_cis(args), persistent=False)

    def forward(self, tokens):
        """Logits at every position [B, T, V] (the official forward keeps only the last)."""
        seqlen = tokens.size(1)
        h = self.embed(tokens)
        freqs_cis = self.freqs_cis[:seqlen]
        mask = None
        if seqlen > 1:
            mask = torch.full((seqlen, seqlen), float("-inf")).triu_(1)
        for layer in self.layers:
            h = layer(h, freqs_cis, mask)
        return self.head(self.norm(h))


def init_weights(model, std):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.normal_(0.0, std)


def seeded_ids(n, vocab, seed):
    """The benchmarks' 32-bit LCG (benchmarks/bench_model.mjs seededIds): the same token ids as our side."""
    x = seed & 0xFFFFFFFF
    out = []
    for _ in range(n):
        x = (x * 1664525 + 1013904223) & 0xFFFFFFFF
        out.append(x % vocab)
    return out


def blas_name():
    """The BLAS library actually loaded (Debian's torch is built against the generic libblas.so.3 interface and
    gets whichever implementation update-alternatives selects), read from /proc/self/maps after a matmul."""
    torch.mm(torch.ones(64, 64), torch.ones(64, 64))
    try:
        with open("/proc/self/maps") as f:
            libs = sorted({line.split()[-1].rsplit("/", 1)[-1] for line in f if "blas" in line.lower() or "mkl" in line.lower()})
        if libs:
            return ", ".join(libs)
    except OSError:
        pass
    for line in torch.__config__.show().splitlines():
        if "BLAS_INFO" in line:
            return "BLAS_INFO=" + line.split("BLAS_INFO=")[1].split(",")[0].strip()
    return "unknown"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True, help="the library's ModelConfig as JSON")
    ap.add_argument("--mode", choices=["train", "forward"], default="train")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--min-seconds", type=float, default=0.0, help="forward: keep timing until this much wall time")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    config = json.loads(a.config)
    B, T = a.batch, a.seq
    args = Args(config, max_seq_len=T + 1)
    model = Transformer(args)
    init_weights(model, 0.006)
    # rows of T+1 ids: inputs ids[:, :T], targets ids[:, 1:] (as tokenBatch in train.bench.mjs)
    ids = torch.tensor(seeded_ids(B * (T + 1), args.vocab_size, 1), dtype=torch.long).view(B, T + 1)
    inputs, targets = ids[:, :T].contiguous(), ids[:, 1:].contiguous()
    wall, cpu = [], []
    if a.mode == "train":
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
        for i in range(a.warmup + a.steps):
            c0, t0 = time.process_time(), time.perf_counter()
            logits = model(inputs)
            loss = F.cross_entropy(logits.view(-1, args.vocab_size), targets.view(-1))
            opt.zero_grad(set_to_none=False)
            loss.backward()
            opt.step()
            t1, c1 = time.perf_counter(), time.process_time()
            if i >= a.warmup:
                wall.append(t1 - t0)
                cpu.append(c1 - c0)
    else:
        batch = ids[:, :T].contiguous()
        with torch.no_grad():
            for _ in range(max(a.warmup, 1)):
                model(batch)
            start = time.perf_counter()
            while len(wall) < a.steps or time.perf_counter() - start < a.min_seconds:
                c0, t0 = time.process_time(), time.perf_counter()
                model(batch)
                t1, c1 = time.perf_counter(), time.process_time()
                wall.append(t1 - t0)
                cpu.append(c1 - c0)
    # the upper median for an even count, as benchmarks/bench_model.mjs median()
    med = lambda xs: sorted(xs)[len(xs) // 2]
    result = {
        "torch": torch.__version__,
        "blas": blas_name(),
        "threads": torch.get_num_threads(),
        "mode": a.mode,
        "batch": B,
        "seq": T,
        "steps": len(wall),
        "wallSeconds": {"median": med(wall), "best": min(wall), "mean": statistics.mean(wall)},
        "cpuSeconds": {"median": med(cpu)},
        "tokensPerSecond": B * T / med(wall),
    }
    if a.json:
        print(json.dumps(result))
    else:
        print(
            f"torch {result['torch']} ({result['blas']}, {result['threads']} thread(s)) {a.mode} {B}x{T}: "
            f"wall median {med(wall) * 1000:.1f} ms, {result['tokensPerSecond']:.0f} tokens/s"
        )


if __name__ == "__main__":
    main()

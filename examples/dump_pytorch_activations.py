#!/usr/bin/env python3
"""Dump a PyTorch DeepSeek-V3's activations (and optionally gradients) under deepseek-v3-ref trace
names, for `dsv3 verify` (see docs/verify.md and docs/trace-names.md).

Needs only torch (>= 1.13); the safetensors file is written by hand (8-byte little-endian header
length, JSON header, raw little-endian tensors), so no `safetensors` package is required.

Hooks are registered by module path, for either tree:
- Hugging Face names (transformers' DeepseekV3ForCausalLM or the hub's modeling_deepseek.py):
  model.embed_tokens, model.layers.{i}.input_layernorm, .self_attn (.q_a_proj, .q_a_layernorm,
  .q_b_proj | .q_proj, .kv_a_proj_with_mqa, .kv_a_layernorm, .kv_b_proj, .o_proj),
  .post_attention_layernorm, .mlp (.gate, .experts, .shared_experts), model.norm, lm_head;
- the official inference/model.py names: embed, layers.{i}.attn_norm, .attn (.wq_a, .q_norm, .wq_b
  | .wq, .wkv_a, .kv_norm, .wkv_b, .wo), .ffn_norm, .ffn (.gate, .experts, .shared_experts), norm,
  head. The dump then holds official names: pass `--official-names` to dsv3 verify.

Quantities computed inside a function (q_pe, k_pe, attn_scores, attn_probs) are not module
outputs: call `record(name, tensor)` for them in your code (a no-op outside a dump).

Tensors keep the shape the module returns (the MoE's output is [B, S, d] in both trees); verify compares
a tensor whose leading dims are merged or split ([B*S, d] vs [B, S, d]) after reshaping it.

Command line, for a Hugging Face model directory (transformers >= 4.57 or 5.x, or the hub's modeling code):

    python dump_pytorch_activations.py MODEL_DIR ids.json ref.safetensors [--dtype float64] [--grads]
    dsv3 verify --model MODEL_DIR --input ids.json --reference ref.safetensors --hf-rope

Usage as a library (your model, your loader), e.g. the official inference/model.py:

    from dump_pytorch_activations import dump_activations, official_full_logits, record
    dump_activations(model, input_ids, "ref.safetensors", config=args, run=official_full_logits)
    # then: dsv3 verify --model DIR --input ids.json --reference ref.safetensors --official-names
    #       (add --numerics official-bf16 | official-fp8 | official-fp8-ue8m0 for a bf16/FP8 GPU run)

`dsv3 dump-script > dump_pytorch_activations.py` writes this file from the installed package.
"""
import json
import re
import struct

import torch

_DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.int32: "I32", torch.int64: "I64"}
_recorder = None  # the active dump's record function (set by dump_activations)


def record(name, tensor):
    """Record `tensor` under trace name `name` in the active dump (no-op when no dump is running).

    Use it for values computed inside a function, e.g. in your attention:
        record(f"model.layers.{i}.self_attn:attn_probs", probs.permute(0, 2, 1, 3))  # -> [B, H, S, T]
    """
    if _recorder is not None:
        _recorder(name, tensor)


def write_safetensors(path, tensors, order):
    """Write {name: tensor} as safetensors; `order` (execution order) goes into __metadata__."""
    header = {"__metadata__": {"format": "dsv3-trace", "order": json.dumps(order)}}
    blobs, offset = [], 0
    for name in order:
        t = tensors[name].detach().cpu().contiguous()
        if t.dtype not in _DTYPES:  # bf16/f16 activations: widen (exactly) to f32
            t = t.float()
        a = t.numpy()
        data = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": _DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def _first(x):
    return x[0] if isinstance(x, (tuple, list)) else x


def _cfg(config, *names):
    """The first attribute of `config` among `names` (HF config or the official ModelArgs)."""
    for n in names:
        if hasattr(config, n):
            return getattr(config, n)
    raise AttributeError(f"config has none of {names}")


# module-path leaves of both trees: HF name, official name
_NORMS = ("input_layernorm", "post_attention_layernorm", "q_a_layernorm", "kv_a_layernorm", "attn_norm", "ffn_norm", "q_norm", "kv_norm")
_ATTN = ("self_attn", "attn")
_MLP = ("mlp", "ffn")


def _default_run(model, input_ids):
    out = _first(model(input_ids))
    return getattr(out, "logits", out)


def official_full_logits(model, input_ids):
    """Logits at every position [B, S, vocab] of the official inference/model.py `Transformer`.

    Its `forward` returns only the last position, under `torch.inference_mode` (which also forbids backward);
    this is the same module chain without `[:, -1]`: pass `run=official_full_logits` to dump_activations.
    """
    S = input_ids.shape[1]
    h = model.embed(input_ids)
    mask = torch.full((S, S), float("-inf"), device=input_ids.device).triu_(1) if S > 1 else None
    for layer in model.layers:
        h = layer(h, 0, model.freqs_cis[:S], mask)
    return model.head(model.norm(h))


def load_hf_model(model_dir, dtype):
    """AutoModelForCausalLM.from_pretrained for a float32/float64 dump, across transformers versions.

    `dtype=` (transformers >= 4.56; `torch_dtype=` before, deprecated since), and on transformers 5.x
    `experts_implementation="eager"`: the default `grouped_mm` experts have no float64 kernel ("Expected mat_a to be
    Float32, BFloat16 or Float16 matrix, got Double"). Eager attention, so every intermediate is a plain tensor.
    """
    import transformers
    from transformers import AutoModelForCausalLM

    version = tuple(int(p) for p in re.findall(r"\d+", transformers.__version__)[:2])
    kwargs = {"trust_remote_code": True, "attn_implementation": "eager"}
    kwargs["dtype" if version >= (4, 56) else "torch_dtype"] = dtype
    if version >= (5, 0):
        kwargs["experts_implementation"] = "eager"
    try:
        model = AutoModelForCausalLM.from_pretrained(model_dir, **kwargs)
    except TypeError as e:  # a version that does not take one of the optional keywords
        if "experts_implementation" not in str(e):
            raise
        del kwargs["experts_implementation"]
        model = AutoModelForCausalLM.from_pretrained(model_dir, **kwargs)
    model.config._attn_implementation = "eager"
    return model


def dump_activations(model, input_ids, path, config, grads=False, labels=None, run=_default_run):
    """Run `model` on `input_ids` [B, S] with forward hooks and write our trace names to `path`.

    With grads=True, also runs the next-token cross-entropy backward (inputs ids[:, :-1], targets
    ids[:, 1:]: pass the same ids file to `dsv3 verify --grads`) and records grad.<parameter name>.
    `run(model, ids)` must return logits for every position [B, S, vocab] (override it when your
    model's forward returns something else, e.g. the official Transformer.forward returns only the
    last position under torch.inference_mode).
    """
    global _recorder
    H = _cfg(config, "num_attention_heads", "n_heads")
    nope, rope, v = config.qk_nope_head_dim, config.qk_rope_head_dim, config.v_head_dim
    out, order = {}, []

    def _record(name, t):
        if name in out:
            raise RuntimeError(f"trace name {name} recorded twice")
        out[name] = t.detach().clone()
        order.append(name)

    hooks = []

    def on_output(name, fn=lambda t: t):
        def hook(_module, _inputs, output):
            _record(name, fn(_first(output)))
        return hook

    def on_input(name, fn=lambda t: t):
        def hook(_module, inputs):
            _record(name, fn(inputs[0]))
        return hook

    def gate_hook(name):
        def hook(_m, _i, output):
            if isinstance(output, (tuple, list)):
                # hub MoEGate: (topk_idx, topk_weight, aux_loss); official Gate: (weights, indices)
                idx = next(t for t in output if torch.is_tensor(t) and not t.is_floating_point())
                w = next(t for t in output if torch.is_tensor(t) and t.is_floating_point() and t.shape == idx.shape)
                _record(f"{name}:indices", idx.reshape(B * S, -1).to(torch.int32))
                _record(f"{name}:weights", w.reshape(B * S, -1))
            else:  # transformers DeepseekV3TopkRouter: router logits [N, E]
                _record(f"{name}:logits", output.reshape(B * S, -1))
        return hook

    B = input_ids.shape[0]
    S = input_ids.shape[1] - (1 if grads else 0)
    for mname, module in model.named_modules():
        parts = mname.split(".")
        leaf, parent = parts[-1], ".".join(parts[:-1])
        up = parts[-2] if len(parts) > 1 else ""
        is_block = (len(parts) == 3 and parts[:2] == ["model", "layers"]) or (len(parts) == 2 and parts[0] == "layers")
        if mname in ("model.embed_tokens", "model.norm", "lm_head", "embed", "norm", "head"):
            hooks.append(module.register_forward_hook(on_output(f"{mname}:out")))
        elif is_block:
            hooks.append(module.register_forward_hook(on_output(f"{mname}:out")))  # residual stream after the block
        elif leaf in _NORMS:
            hooks.append(module.register_forward_hook(on_output(f"{mname}:out")))
        elif leaf in ("q_b_proj", "q_proj", "wq_b", "wq") and up in _ATTN:
            # our :q is [B, S, H, nope+rope], before RoPE
            hooks.append(module.register_forward_hook(on_output(f"{parent}:q", lambda t: t.reshape(B, S, H, nope + rope))))
        elif leaf in ("kv_b_proj", "wkv_b") and up in _ATTN:
            hooks.append(module.register_forward_hook(on_output(f"{mname}:out", lambda t: t.reshape(B, S, H, nope + v))))
        elif leaf in ("o_proj", "wo") and up in _ATTN:
            hooks.append(module.register_forward_pre_hook(on_input(f"{parent}:o")))
        elif leaf in _ATTN:
            hooks.append(module.register_forward_hook(on_output(f"{mname}:out")))
        elif leaf == "shared_experts":
            hooks.append(module.register_forward_hook(on_output(f"{mname}:out")))  # as the module returns it
        elif leaf == "gate" and up in _MLP:
            hooks.append(module.register_forward_hook(gate_hook(mname)))
        elif leaf in _MLP:
            # dense MLP and MoE alike: [B, S, d], the module's own output shape (docs/trace-names.md)
            hooks.append(module.register_forward_hook(on_output(f"{mname}:out")))

    _recorder = _record
    try:
        if grads:
            model.zero_grad(set_to_none=True)
            logits = run(model, input_ids[:, :-1])
            targets = input_ids[:, 1:] if labels is None else labels
            # the loss in the model's precision (f32 or f64); bf16/f16 logits are widened to f32
            lg = logits if logits.dtype in (torch.float32, torch.float64) else logits.float()
            loss = torch.nn.functional.cross_entropy(lg.reshape(-1, lg.shape[-1]), targets.reshape(-1))
            loss.backward()
            for pname, p in model.named_parameters():
                if p.grad is not None:
                    _record(f"grad.{pname}", p.grad)
        else:
            with torch.no_grad():
                run(model, input_ids)
    finally:
        _recorder = None
        for h in hooks:
            h.remove()
    write_safetensors(path, out, order)
    return order


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model_dir", help="a Hugging Face DeepSeek-V3 directory (transformers >= 4.57 or trust_remote_code)")
    ap.add_argument("ids", help="ids.json: [[...], ...] rows of equal length")
    ap.add_argument("out", help="output .safetensors")
    ap.add_argument("--grads", action="store_true", help="also dump grad.<parameter> of the next-token cross-entropy")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    args = ap.parse_args()
    model = load_hf_model(args.model_dir, getattr(torch, args.dtype))
    model.train(args.grads)
    with open(args.ids) as f:
        ids = torch.tensor(json.load(f), dtype=torch.long)
    names = dump_activations(model, ids, args.out, model.config, grads=args.grads)
    print(f"wrote {len(names)} tensors to {args.out}")

#!/usr/bin/env python3
"""Dump a PyTorch DeepSeek-V3's activations (and optionally gradients) under deepseek-v3-ref trace
names, for `dsv3 verify` (see docs/verify.md and docs/trace-names.md).

Needs only torch; the safetensors file is written by hand (8-byte little-endian header length,
JSON header, raw little-endian tensors), so no `safetensors` package is required.

Works on a module tree with Hugging Face names (transformers' DeepseekV3ForCausalLM or the hub's
modeling_deepseek.py): model.embed_tokens, model.layers.{i}.input_layernorm, .self_attn
(.q_a_proj, .q_a_layernorm, .q_b_proj | .q_proj, .kv_a_proj_with_mqa, .kv_a_layernorm,
.kv_b_proj, .o_proj), .post_attention_layernorm, .mlp (.gate, .experts, .shared_experts),
model.norm, lm_head. For the official inference/model.py tree (embed, layers.{i}.attn.wkv_b,
...) use the same hooks with the official names and pass `--official-names` to dsv3 verify.

Usage as a library (your model, your loader):

    from dump_pytorch_activations import dump_activations
    dump_activations(model, input_ids, "ref.safetensors", config=model.config, grads=False)

then:

    dsv3 verify --model DIR --input ids.json --reference ref.safetensors --report report.html
"""
import json
import struct

import torch

_DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.int32: "I32", torch.int64: "I64"}


def write_safetensors(path, tensors, order):
    """Write {name: tensor} as safetensors; `order` (execution order) goes into __metadata__."""
    header = {"__metadata__": {"format": "dsv3-trace", "order": json.dumps(order)}}
    blobs, offset = [], 0
    for name in order:
        t = tensors[name].detach().cpu().contiguous()
        if t.dtype not in _DTYPES:  # bf16/f16 activations: widen (exactly) to f32
            t = t.float()
        data = t.numpy().astype(t.numpy().dtype.newbyteorder("<"), copy=False).tobytes()
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


def dump_activations(model, input_ids, path, config, grads=False, labels=None):
    """Run `model` on `input_ids` [B, S] with forward hooks and write our trace names to `path`.

    With grads=True, also runs the next-token cross-entropy backward (inputs ids[:, :-1], targets
    ids[:, 1:]: pass the same ids file to `dsv3 verify --grads`) and records grad.<parameter name>.
    """
    H = config.num_attention_heads
    d = config.hidden_size
    nope, rope, v = config.qk_nope_head_dim, config.qk_rope_head_dim, config.v_head_dim
    out, order = {}, []

    def record(name, t):
        if name in out:
            raise RuntimeError(f"trace name {name} recorded twice")
        out[name] = t.detach().clone()
        order.append(name)

    hooks = []

    def on_output(name, fn=lambda t: t):
        def hook(_module, _inputs, output):
            record(name, fn(_first(output)))
        return hook

    def on_input(name, fn=lambda t: t):
        def hook(_module, inputs):
            record(name, fn(inputs[0]))
        return hook

    B = input_ids.shape[0]
    S = input_ids.shape[1] - (1 if grads else 0)
    for mname, module in model.named_modules():
        parts = mname.split(".")
        leaf = parts[-1] if parts else ""
        if mname in ("model.embed_tokens", "model.norm", "lm_head"):
            hooks.append(module.register_forward_hook(on_output(f"{mname}:out")))
        elif len(parts) == 3 and parts[:2] == ["model", "layers"]:
            hooks.append(module.register_forward_hook(on_output(f"{mname}:out")))  # residual stream after the block
        elif leaf in ("input_layernorm", "post_attention_layernorm", "q_a_layernorm", "kv_a_layernorm"):
            hooks.append(module.register_forward_hook(on_output(f"{mname}:out")))
        elif leaf in ("q_b_proj", "q_proj") and parts[-2] == "self_attn":
            # our :q is [B, S, H, nope+rope], before RoPE
            hooks.append(module.register_forward_hook(on_output(f"{'.'.join(parts[:-1])}:q", lambda t: t.reshape(B, S, H, nope + rope))))
        elif leaf == "kv_b_proj":
            hooks.append(module.register_forward_hook(on_output(f"{mname}:out", lambda t: t.reshape(B, S, H, nope + v))))
        elif leaf == "o_proj":
            hooks.append(module.register_forward_pre_hook(on_input(f"{'.'.join(parts[:-1])}:o")))
        elif leaf == "self_attn":
            hooks.append(module.register_forward_hook(on_output(f"{mname}:out")))
        elif leaf == "shared_experts":
            hooks.append(module.register_forward_hook(on_output(f"{mname}:out", lambda t: t.reshape(-1, d))))
        elif leaf == "gate" and parts[-2] == "mlp":
            def gate_hook(_m, _i, output, name=mname):
                if isinstance(output, (tuple, list)):  # hub MoEGate: (topk_idx, topk_weight, aux_loss)
                    record(f"{name}:indices", output[0].reshape(B * S, -1).to(torch.int32))
                    record(f"{name}:weights", output[1].reshape(B * S, -1))
                else:  # transformers DeepseekV3TopkRouter: router logits [N, E]
                    record(f"{name}:logits", output.reshape(B * S, -1))
            hooks.append(module.register_forward_hook(gate_hook))
        elif leaf == "mlp":
            is_moe = hasattr(module, "experts")
            # MoE layers trace [B*S, d], dense layers [B, S, d] (docs/trace-names.md)
            hooks.append(module.register_forward_hook(on_output(f"{mname}:out", (lambda t: t.reshape(-1, d)) if is_moe else (lambda t: t))))

    try:
        if grads:
            model.zero_grad(set_to_none=True)
            logits = _first(model(input_ids[:, :-1]))
            logits = getattr(logits, "logits", logits)
            targets = input_ids[:, 1:] if labels is None else labels
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1))
            loss.backward()
            for pname, p in model.named_parameters():
                if p.grad is not None:
                    record(f"grad.{pname}", p.grad)
        else:
            with torch.no_grad():
                model(input_ids)
    finally:
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
    from transformers import AutoModelForCausalLM

    dtype = getattr(torch, args.dtype)
    model = AutoModelForCausalLM.from_pretrained(args.model_dir, torch_dtype=dtype, trust_remote_code=True)
    model.config._attn_implementation = "eager"
    model.train(args.grads)
    with open(args.ids) as f:
        ids = torch.tensor(json.load(f), dtype=torch.long)
    names = dump_activations(model, ids, args.out, model.config, grads=args.grads)
    print(f"wrote {len(names)} tensors to {args.out}")

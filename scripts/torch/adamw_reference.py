"""Reference trajectory of torch.optim.AdamW (single-tensor path, foreach=False) for tests/train.

Writes tests/fixtures/torch/adamw_reference.json: initial params, the gradients of 10 steps, the
learning rate of each step, and the params / exp_avg / exp_avg_sq after every step, for float64
and float32. Every number is stored as a JSON float (repr round-trips f64 exactly; f32 values are
exactly representable as f64). Gradients are f32-representable so both precisions use the same ones.

Run: /usr/bin/python3 scripts/torch/adamw_reference.py   (Debian python3-torch)
"""
import json
import math
import os

import torch

torch.manual_seed(1234)
SHAPES = {"w2d": [3, 5], "norm": [7], "long": [37], "emb": [2, 20]}
STEPS = 10
BETAS = (0.9, 0.95)
EPS = 1e-8
WD = 0.1


def lr_at(t):  # warmup over 4 steps then cosine-ish decay, so lr changes every step
    peak = 3e-2
    return peak * min(1.0, t / 4) * (0.55 + 0.45 * math.cos(math.pi * t / 12))


init = {k: (torch.randn(s, dtype=torch.float64) * 0.5).float().double() for k, s in SHAPES.items()}
# gradients with a spread of magnitudes (tiny and large) and some exact zeros
grads = []
for t in range(STEPS):
    g = {}
    for k, s in SHAPES.items():
        x = torch.randn(s, dtype=torch.float64) * (10.0 ** torch.randint(-4, 2, s).double())
        x[torch.rand(s) < 0.1] = 0.0
        g[k] = x.float().double()
    grads.append(g)


def run(dtype):
    params = {k: v.clone().to(dtype) for k, v in init.items()}
    # weight decay only on >= 2-D tensors: two param groups, like the library's default
    decay = [params[k] for k in SHAPES if len(SHAPES[k]) >= 2]
    nodecay = [params[k] for k in SHAPES if len(SHAPES[k]) < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": WD}, {"params": nodecay, "weight_decay": 0.0}],
        lr=lr_at(1), betas=BETAS, eps=EPS, foreach=False,
    )
    traj = []
    for t in range(1, STEPS + 1):
        for group in opt.param_groups:
            group["lr"] = lr_at(t)
        for k, p in params.items():
            p.grad = grads[t - 1][k].to(dtype)
        opt.step()
        snap = {}
        for k, p in params.items():
            st = opt.state[p]
            snap[k] = {
                "param": p.detach().double().flatten().tolist(),
                "exp_avg": st["exp_avg"].double().flatten().tolist(),
                "exp_avg_sq": st["exp_avg_sq"].double().flatten().tolist(),
            }
        traj.append(snap)
    return traj


out = {
    "torch_version": torch.__version__,
    "note": "torch.optim.AdamW foreach=False; weight_decay on >=2-D tensors only",
    "betas": list(BETAS), "eps": EPS, "weight_decay": WD,
    "shapes": SHAPES,
    "lr": [lr_at(t) for t in range(1, STEPS + 1)],
    "init": {k: v.flatten().tolist() for k, v in init.items()},
    "grads": [{k: v.flatten().tolist() for k, v in g.items()} for g in grads],
    "float64": run(torch.float64),
    "float32": run(torch.float32),
}
path = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "torch", "adamw_reference.json")
with open(path, "w") as f:
    json.dump(out, f, separators=(",", ":"))
print("wrote", os.path.normpath(path), os.path.getsize(path), "bytes")

"""The peer of bench/pytorch_peer.sh: the same FC-DenseNet written in plain PyTorch (as a
researcher would, following the CoMIR paper's configuration), loaded with the weights our
Rust code trained and saved, run on the same input; and a training step of the same shape.

    python pytorch_peer.py WORKDIR SIZE STEPS

Prints "key value" lines like examples/bench_model.rs.
"""
import json
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class DenseLayer(nn.Module):
    def __init__(self, cin, growth, dropout):
        super().__init__()
        self.bn = nn.BatchNorm2d(cin)
        self.conv = nn.Conv2d(cin, growth, 3, padding=1)
        self.dropout = dropout

    def forward(self, x):
        return F.dropout(self.conv(F.relu(self.bn(x))), self.dropout, self.training)


class DenseBlock(nn.ModuleList):
    def __init__(self, cin, growth, n, new_only, dropout):
        super().__init__(DenseLayer(cin + i * growth, growth, dropout) for i in range(n))
        self.new_only = new_only

    def forward(self, x):
        feats = [x]
        for layer in self:
            feats.append(layer(torch.cat(feats, 1)))
        return torch.cat(feats[1:] if self.new_only else feats, 1)


class Tiramisu(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        g, self.dropout = cfg["growth_rate"], cfg["dropout"]
        self.init = nn.Conv2d(cfg["in_channels"], cfg["init_filters"], 3, padding=1)
        c, skips = cfg["init_filters"], []
        self.down = nn.ModuleList()
        for n in cfg["down_blocks"]:
            level = nn.Module()
            level.block = DenseBlock(c, g, n, False, self.dropout)
            c += g * n
            skips.append(c)
            out = int(c * cfg["compression"])
            level.td_bn, level.td_conv = nn.BatchNorm2d(c), nn.Conv2d(c, out, 1)
            c = out
            self.down.append(level)
        self.bottleneck = DenseBlock(c, g, cfg["bottleneck_layers"], True, self.dropout)
        prev = g * cfg["bottleneck_layers"]
        self.up = nn.ModuleList()
        levels = len(cfg["up_blocks"])
        for i, n in enumerate(cfg["up_blocks"]):
            level = nn.Module()
            level.tu_conv = nn.Conv2d(prev, prev, 3, padding=1)
            skip, last = skips[levels - 1 - i], i + 1 == levels
            level.block = DenseBlock(prev + skip, g, n, not last, self.dropout)
            c = prev + skip + g * n if last else g * n
            prev = g * n
            self.up.append(level)
        self.head = nn.Conv2d(c, cfg["out_channels"], 1, bias=False)

    def forward(self, x):
        x, skips = self.init(x), []
        for level in self.down:
            x = level.block(x)
            skips.append(x)
            x = F.max_pool2d(F.dropout2d(level.td_conv(F.relu(level.td_bn(x))), self.dropout, self.training), 2)
        x = self.bottleneck(x)
        for level in self.up:
            skip = skips.pop()
            up = F.relu(level.tu_conv(F.interpolate(x, size=skip.shape[2:], mode="nearest")))
            x = level.block(torch.cat([skip, up], 1))
        return self.head(x)


def read_model(path):
    """Our model file is safetensors: 8-byte header length, JSON header, raw tensors."""
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    meta = json.loads(header.pop("__metadata__")["comir"])
    tensors = {}
    for key, info in header.items():
        a, b = info["data_offsets"]
        tensors[key] = torch.from_numpy(np.frombuffer(raw[8 + n + a:8 + n + b], dtype="<f4").copy()).reshape(info["shape"])
    return meta, tensors


def net_for(meta, tensors, side, prefix):
    net = Tiramisu(meta["modalities"][side]["net"])
    state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    missing, unexpected = net.load_state_dict(state, strict=False)
    missing = [m for m in missing if not m.endswith("num_batches_tracked")]
    if missing or unexpected:
        sys.exit(f"weights do not fit the network: missing {missing[:3]}, unexpected {unexpected[:3]}")
    return net


def best_of(n, f):
    best, out = float("inf"), None
    for _ in range(n):
        t = time.perf_counter()
        out = f()
        best = min(best, time.perf_counter() - t)
    return best, out


def info_nce(a, b, tau=0.5):
    pts = torch.cat([a, b], 0).flatten(1)
    d = pts.shape[1]
    sq = (pts * pts).sum(1)
    sim = -(sq[:, None] + sq[None, :] - 2 * pts @ pts.T).clamp_min(0) / d / tau
    n2 = sim.shape[0]
    sim = sim.masked_fill(torch.eye(n2, dtype=torch.bool), float("-inf"))
    target = torch.cat([torch.arange(n2 // 2, n2), torch.arange(0, n2 // 2)])
    return F.cross_entropy(sim, target)


def main():
    work, size, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    torch.manual_seed(0)
    meta, tensors = read_model(f"{work}/model.safetensors")
    net_a, net_b = net_for(meta, tensors, 0, "a."), net_for(meta, tensors, 1, "b.")

    # Training step: batch 8 of 128² random crops, random k·90° per sample, InfoNCE (−MSE), SGD.
    yy, xx = np.mgrid[0:512, 0:512].astype(np.float32)
    xs, ys = xx / 17, yy / 23
    scene_a = 0.5 + 0.25 * (np.sin(xs) * np.cos(ys)) + 0.25 * (np.sin(xs * 0.37 + ys * 0.61) * np.cos(xs * 1.3))
    scene_b = np.abs(scene_a - 0.5) * 2
    scene_a, scene_b = torch.from_numpy(scene_a), torch.from_numpy(scene_b)
    params = list(net_a.parameters()) + list(net_b.parameters())
    opt = torch.optim.SGD(params, lr=1e-2, momentum=0.9, weight_decay=1e-5)
    net_a.train(); net_b.train()

    def step():
        crops = [(np.random.randint(0, 512 - 128), np.random.randint(0, 512 - 128)) for _ in range(8)]
        xa = torch.stack([scene_a[y:y + 128, x:x + 128] for y, x in crops])[:, None]
        xb = torch.stack([scene_b[y:y + 128, x:x + 128] for y, x in crops])[:, None]
        ka, kb = np.random.randint(0, 4, 8), np.random.randint(0, 4, 8)
        rot = lambda t, ks: torch.cat([torch.rot90(t[i:i + 1], int(k), (2, 3)) for i, k in enumerate(ks)])
        ya, yb = rot(net_a(rot(xa, ka)), -ka), rot(net_b(rot(xb, kb)), -kb)
        loss = info_nce(ya, yb) + 1e-4 * (torch.cat([ya, yb]).abs().mean() + torch.cat([ya, yb]).pow(2).mean())
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net_a.parameters(), 1.0)
        torch.nn.utils.clip_grad_norm_(net_b.parameters(), 1.0)
        opt.step()

    step()  # warm-up, as ours
    t = time.perf_counter()
    for _ in range(steps):
        step()
    print(f"train_steps_per_second {steps / (time.perf_counter() - t):.4f}")

    # Inference with the weights our code saved (reload: the training above changed them).
    net_a = net_for(meta, tensors, 0, "a.").eval()
    x = torch.from_numpy(np.fromfile(f"{work}/input.f32", dtype="<f4").reshape(1, 1, size, size))
    with torch.inference_mode():
        t_whole, y = best_of(2, lambda: net_a(x))
    ours = np.fromfile(f"{work}/output-whole.f32", dtype="<f4").reshape(y.shape)
    print(f"infer_whole_seconds {t_whole:.4f}")
    print(f"max_abs_difference {np.abs(ours - y.numpy()).max():.3e}")
    print(f"output_range {float(y.abs().max()):.3e}")


if __name__ == "__main__":
    main()

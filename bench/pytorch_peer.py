"""PyTorch on the CPU (Debian's python3-torch), the reference point a CPU user would compare with:
the network a model configuration describes, timed at one batch size, for `bench --peer pytorch`.

  python3 pytorch_peer.py CONFIG_JSON BATCH REPEATS

CONFIG_JSON is a ModelConfig (layers as mod.ts's table: conv, lrn, maxpool, dropout, dense).
Prints one JSON line: {"inference": images/s, "training": images/s, "threads": N, "parameters": N,
"blas": "..."} (the parameter count, so that the caller can check it built the same network; the
BLAS the process loaded, which decides the dense layers' speed). Inference in
eval mode without gradients; training one SGD step (lr 0.01, momentum 0.9, weight decay 5e-4) on
softmax cross-entropy with dropout on. Each figure times REPEATS calls after one untimed call, as
the benchmark times this project, on every CPU the process may use.
"""
import json
import os
import sys
import time

import torch
from torch import nn


class GroupedLRN(nn.Module):
    """LRN within each group of channels. PyTorch divides alpha by the window's size; the paper
    (and this project) does not, hence alpha * size."""

    def __init__(self, size, alpha, beta, k, groups):
        super().__init__()
        self.groups = groups
        self.lrn = nn.LocalResponseNorm(size=size, alpha=alpha * size, beta=beta, k=k)

    def forward(self, x):
        if self.groups == 1:
            return self.lrn(x)
        return torch.cat([self.lrn(t) for t in x.chunk(self.groups, dim=1)], dim=1)


def network(config):
    layers = []
    c, h, w = config["input"]
    flat = False
    for spec in config["layers"]:
        kind = spec["kind"]
        if kind == "conv":
            stride, pad = spec.get("stride", 1), spec.get("pad", 0)
            layers.append(nn.Conv2d(c, spec["out"], spec["kernel"], stride, pad,
                                    groups=spec.get("groups", 1)))
            if spec.get("relu", True):
                layers.append(nn.ReLU())
            c = spec["out"]
            h = (h + 2 * pad - spec["kernel"]) // stride + 1
            w = (w + 2 * pad - spec["kernel"]) // stride + 1
        elif kind == "lrn":
            p = spec["params"]
            layers.append(GroupedLRN(p["size"], p["alpha"], p["beta"], p["k"], p["groups"]))
        elif kind == "maxpool":
            layers.append(nn.MaxPool2d(spec["size"], spec["stride"]))
            h = (h - spec["size"]) // spec["stride"] + 1
            w = (w - spec["size"]) // spec["stride"] + 1
        elif kind == "dropout":
            layers.append(nn.Dropout(spec["p"]))
        elif kind == "dense":
            if not flat:
                layers.append(nn.Flatten())
                flat = True
            layers.append(nn.Linear(c * h * w, spec["out"]))
            if spec.get("relu", True):
                layers.append(nn.ReLU())
            c, h, w = spec["out"], 1, 1
        else:
            raise ValueError(f"unknown layer kind {kind!r}")
    return nn.Sequential(*layers)


def blas_library():
    """The BLAS this process loaded, after a matrix product: Debian's python3-torch calls whatever
    libblas.so.3 resolves to (the reference BLAS unless e.g. libopenblas0-pthread is installed)."""
    torch.mm(torch.ones(64, 64), torch.ones(64, 64))
    with open("/proc/self/maps") as maps:
        paths = sorted({line.split()[-1] for line in maps if "blas" in line.lower() and "/" in line})
    if any("mkl" in p for p in paths):
        return "MKL"
    openblas = [p for p in paths if "libopenblas" in os.path.basename(p)]
    if openblas:
        return f"OpenBLAS ({os.path.basename(openblas[0])})"
    if paths:
        return f"reference BLAS ({paths[0]})"
    return "its own kernels (no BLAS loaded)"


def seconds_per_call(step, repeats):
    step()  # warm up
    started = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - started) / repeats


def main():
    config, batch, repeats = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    # Every CPU this process may use, as llvmpipe does (PyTorch counts physical cores only).
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    torch.manual_seed(0)
    net = network(config)
    x = torch.randn(batch, *config["input"])
    labels = torch.arange(batch) % config["classes"]

    net.eval()

    def infer():
        with torch.no_grad():
            net(x)

    inference = batch / seconds_per_call(infer, repeats)

    net.train()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    loss_fn = nn.CrossEntropyLoss()

    def train():
        optimizer.zero_grad()
        loss_fn(net(x), labels).backward()
        optimizer.step()

    training = batch / seconds_per_call(train, repeats)
    print(json.dumps({"inference": inference, "training": training,
                      "threads": torch.get_num_threads(), "blas": blas_library(),
                      "parameters": sum(p.numel() for p in net.parameters())}))


if __name__ == "__main__":
    main()

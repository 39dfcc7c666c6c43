#!/usr/bin/env python3
"""PyTorch reference for alexnet-small (Debian's python3-torch; run with /usr/bin/python3).

  golden.py write DIR
      Writes DIR/alexnet_small_weights.safetensors (PyTorch-initialised parameters under this
      project's names) and DIR/alexnet_small_golden.safetensors (an input batch and PyTorch's
      logits for it). The tests load both and compare the project's logits.
  golden.py forward WEIGHTS INPUT OUT
      Loads weights saved by the project and an input batch (safetensors tensor "input"), and
      writes PyTorch's logits to OUT (tensor "logits"): proof that the project's files load in
      PyTorch and mean the same network there.
  golden.py step WEIGHTS BATCH OUT
      Loads weights and a batch ("input", and "labels" stored as floats), takes one step of SGD
      (lr 0.01, momentum 0.9, weight decay 5e-4; dropout off) on the mean cross-entropy, and
      writes the loss ("loss"), every gradient ("grad.NAME") and every updated parameter
      ("param.NAME") to OUT.
  golden.py torchvision IMAGE DIR
      torchvision's AlexNet (Debian's python3-torchvision), randomly initialised from seed 0:
      writes DIR/torchvision.safetensors (its state dict, torchvision's names), and
      DIR/golden.safetensors holding "input" (IMAGE through torchvision's own preprocessing:
      Resize(256), CenterCrop(224), ToTensor, Normalize with ImageNet's mean and std) and
      "logits" (the network's output for it). The tests import the weights and compare both.
      Also DIR/torchvision.pth and DIR/torchvision_legacy.pth: the state dict by torch.save, in
      the zip and the legacy format.
  golden.py pth DIR
      .pth files for the reader's tests: a state_dict under "state_dict" with views (transposed,
      offset, strided, shared storage), a Parameter and a scalar, in both formats (zip.pth,
      legacy.pth), its tensors as DIR/expected.safetensors; evil.pth, whose pickle would run
      os.system; double.pth, a float64 tensor; alexnet_small.pth and .safetensors, the same
      PyTorch-initialised alexnet-small.
"""
import json
import struct
import sys

import torch
from torch import nn


class TowerLRN(nn.Module):
    """The paper's LRN within each of two towers. PyTorch divides alpha by size; the paper does
    not, so alpha = 1e-4 * 5 here equals the paper's 1e-4."""

    def __init__(self, towers=2):
        super().__init__()
        self.towers = towers
        self.lrn = nn.LocalResponseNorm(size=5, alpha=5e-4, beta=0.75, k=2.0)

    def forward(self, x):
        return torch.cat([self.lrn(t) for t in x.chunk(self.towers, dim=1)], dim=1)


def alexnet_small():
    layers = {
        "conv1": nn.Conv2d(1, 64, 5, padding=2),
        "relu1": nn.ReLU(),
        "lrn1": TowerLRN(),
        "pool1": nn.MaxPool2d(3, 2),
        "conv2": nn.Conv2d(64, 128, 5, padding=2, groups=2),
        "relu2": nn.ReLU(),
        "lrn2": TowerLRN(),
        "pool2": nn.MaxPool2d(3, 2),
        "conv3": nn.Conv2d(128, 192, 3, padding=1),
        "relu3": nn.ReLU(),
        "conv4": nn.Conv2d(192, 192, 3, padding=1, groups=2),
        "relu4": nn.ReLU(),
        "conv5": nn.Conv2d(192, 128, 3, padding=1, groups=2),
        "relu5": nn.ReLU(),
        "pool5": nn.MaxPool2d(3, 2),
        "flatten": nn.Flatten(),
        "fc6": nn.Linear(512, 512),
        "relu6": nn.ReLU(),
        "drop6": nn.Dropout(0.5),
        "fc7": nn.Linear(512, 512),
        "relu7": nn.ReLU(),
        "drop7": nn.Dropout(0.5),
        "fc8": nn.Linear(512, 10),
    }
    return nn.Sequential(__import__("collections").OrderedDict(layers))


def save(path, tensors):
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in tensors.items():
        data = t.detach().to(torch.float32).contiguous().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-(8 + len(text)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def load(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        assert e["dtype"] == "F32", f"{name}: {e['dtype']}"
        a, b = e["data_offsets"]
        out[name] = torch.frombuffer(bytearray(raw[8 + n + a : 8 + n + b]), dtype=torch.float32).reshape(e["shape"])
    return out


def main():
    torch.manual_seed(0)
    net = alexnet_small().eval()
    if sys.argv[1] == "write":
        out = sys.argv[2]
        save(f"{out}/alexnet_small_weights.safetensors", net.state_dict())
        x = 40 * torch.randn(4, 1, 28, 28)  # large enough that LRN departs from a/k^beta
        with torch.no_grad():
            logits = net(x)
        save(f"{out}/alexnet_small_golden.safetensors", {"input": x, "logits": logits})
    elif sys.argv[1] == "forward":
        net.load_state_dict(load(sys.argv[2]), strict=True)
        with torch.no_grad():
            logits = net(load(sys.argv[3])["input"])
        save(sys.argv[4], {"logits": logits})
    elif sys.argv[1] == "step":
        net.load_state_dict(load(sys.argv[2]), strict=True)
        batch = load(sys.argv[3])
        optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        loss = nn.functional.cross_entropy(net(batch["input"]), batch["labels"].long())
        optimizer.zero_grad()
        loss.backward()
        grads = {f"grad.{n}": p.grad.clone() for n, p in net.named_parameters()}
        optimizer.step()
        params = {f"param.{n}": p.detach().clone() for n, p in net.named_parameters()}
        save(sys.argv[4], {"loss": loss.detach().reshape(1), **grads, **params})
    elif sys.argv[1] == "torchvision":
        import torchvision
        from PIL import Image
        from torchvision import transforms

        tv = torchvision.models.alexnet().eval()
        prepare = transforms.Compose([
            transforms.Resize(256),
            transforms.CenterCrop(224),
            transforms.ToTensor(),
            transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
        ])
        x = prepare(Image.open(sys.argv[2]).convert("RGB")).unsqueeze(0)
        with torch.no_grad():
            logits = tv(x)
        save(f"{sys.argv[3]}/torchvision.safetensors", tv.state_dict())
        torch.save(tv.state_dict(), f"{sys.argv[3]}/torchvision.pth")
        torch.save(tv.state_dict(), f"{sys.argv[3]}/torchvision_legacy.pth",
                   _use_new_zipfile_serialization=False)
        save(f"{sys.argv[3]}/golden.safetensors", {"input": x, "logits": logits})
    elif sys.argv[1] == "pth":
        import collections
        import os

        out = sys.argv[2]
        big = torch.randn(10, 6)
        state = collections.OrderedDict([
            ("conv.weight", torch.randn(3, 2, 2, 2)),
            ("transposed", torch.randn(4, 5).t()),  # non-contiguous
            ("slice", big[2:5]),  # a storage offset into a storage shared with the next
            ("columns", big[:, 1:4:2]),  # strided and offset
            ("parameter", nn.Parameter(torch.randn(7))),
            ("scalar", torch.tensor(1.5)),
        ])
        held = {"state_dict": state, "epoch": 3}
        torch.save(held, f"{out}/zip.pth")
        torch.save(held, f"{out}/legacy.pth", _use_new_zipfile_serialization=False)
        save(f"{out}/expected.safetensors", state)

        class Evil:
            def __reduce__(self):
                return (os.system, (f"touch {out}/pwned",))

        torch.save({"x": Evil()}, f"{out}/evil.pth")
        torch.save({"x": torch.zeros(3, dtype=torch.float64)}, f"{out}/double.pth")
        torch.save(net.state_dict(), f"{out}/alexnet_small.pth")
        save(f"{out}/alexnet_small.safetensors", net.state_dict())
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()

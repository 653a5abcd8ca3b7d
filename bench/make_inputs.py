"""Writes the benchmark inputs for bench/Invoke-Benchmark.ps1 with Debian's PyTorch.

Run it as /usr/bin/python3 (python3-torch from apt), never a python3 found on PATH:

    /usr/bin/python3 bench/make_inputs.py <WorkDir>

Files (torch.save's zip format, each written only if absent, via a temporary name and a rename so an
interrupted run never leaves a half-written file behind):

    big.pt    OrderedDict of 64 float32 tensors 2048x2048 (16 MiB each, 1 GiB in all)
    many.pt   OrderedDict of 20,000 float32 tensors of shape (8,), each with its own storage
    small.pt  OrderedDict of 4 small float32 tensors; the children load it once, untimed, as a warm-up

Prints one JSON line: {"torch": version, "files": {name: bytes}}.
"""
import collections
import json
import os
import sys

import torch


def build_big():
    g = torch.Generator().manual_seed(1)
    return collections.OrderedDict(
        (f"layers.{i}.weight", torch.rand(2048, 2048, generator=g, dtype=torch.float32)) for i in range(64))


def build_many():
    g = torch.Generator().manual_seed(2)
    return collections.OrderedDict(
        (f"blocks.{i}.bias", torch.rand(8, generator=g, dtype=torch.float32)) for i in range(20000))


def build_small():
    g = torch.Generator().manual_seed(3)
    return collections.OrderedDict(
        (f"w{i}", torch.rand(16, 16, generator=g, dtype=torch.float32)) for i in range(4))


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: /usr/bin/python3 make_inputs.py <WorkDir>")
    work = sys.argv[1]
    os.makedirs(work, exist_ok=True)
    sizes = {}
    for name, build in (("small.pt", build_small), ("many.pt", build_many), ("big.pt", build_big)):
        path = os.path.join(work, name)
        if not os.path.exists(path):
            tmp = path + ".tmp"
            torch.save(build(), tmp)  # zip format: torch.save's default since 1.6
            os.replace(tmp, path)
            print(f"wrote {path}", file=sys.stderr)
        sizes[name] = os.path.getsize(path)
    print(json.dumps({"torch": torch.__version__, "files": sizes}))


if __name__ == "__main__":
    main()

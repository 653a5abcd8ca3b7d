"""Writes the 1000 small checkpoints of the 'Files' cases of bench/Invoke-Benchmark.ps1 (issue 15).

    chroot /srv/trixie python3 <inside path>/make_small_files.py <dir>    (torch 2.6, the default)
    /usr/bin/python3 bench/make_small_files.py <dir>                      (when there is no Debian 13 root)

<dir>/ckpt_0000.pt .. ckpt_0999.pt, each torch.save (zip format) of
    {"weight": randn(32, 32), "meta": {"epoch": i, "lr": 0.1, "name": "layer"}, "bias": randn(16),
     "step": tensor(i), "scale": randn(8, 8)}
about 6.4 KB each (the same bytes as /srv/trixie/tmp/tlb/mk1000.py wrote for the first runs). Each file is
written only if absent, first into <dir>/.partial/ under its own name (torch.save names the zip's top folder
after the file name) and then renamed, so an interrupted run leaves no half-written .pt behind. Prints one JSON line: {"torch": version, "files": n, "bytes": total}.
"""
import json
import os
import sys

import torch


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: python3 make_small_files.py <dir>")
    out = sys.argv[1]
    partial = os.path.join(out, ".partial")
    os.makedirs(partial, exist_ok=True)
    torch.manual_seed(0)
    total = 0
    for i in range(1000):
        sd = {"weight": torch.randn(32, 32), "meta": {"epoch": i, "lr": 0.1, "name": "layer"},
              "bias": torch.randn(16), "step": torch.tensor(i), "scale": torch.randn(8, 8)}
        name = f"ckpt_{i:04d}.pt"
        p = os.path.join(out, name)
        if not os.path.exists(p):
            tmp = os.path.join(partial, name)
            torch.save(sd, tmp)
            os.replace(tmp, p)
        total += os.path.getsize(p)
    os.rmdir(partial)
    print(json.dumps({"torch": torch.__version__, "files": 1000, "bytes": total}))


if __name__ == "__main__":
    main()

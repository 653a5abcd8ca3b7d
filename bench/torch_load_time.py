"""Times one torch.load in this process; prints one JSON line. Used by bench/Invoke-Benchmark.ps1.

    /usr/bin/python3 bench/torch_load_time.py <file.pt> <warmup.pt> [--weights-only | --default] [--mmap]
                                              [--drop-caches]
    chroot /srv/trixie python3 <inside path>/torch_load_time.py ...      (torch 2.6)

Order: import torch; torch.load(<warmup.pt>) once, untimed (so the first call's lazy imports and
allocator set-up are not timed, as the TorchLoad children warm up too); gc.collect(); reset the
peak-RSS counter (write "5" to /proc/self/clear_refs, which sets VmHWM to the current RSS); read VmRSS
as the baseline; time torch.load(<file.pt>) with time.perf_counter around the call only; read VmHWM.

torch.load is called with map_location="cpu" and, by default, weights_only=False (the default of
Debian's torch 1.13, the plain "torch.load(path)" people call; its weights_only=True path uses a
pure-Python unpickler in 1.13 and is slower). --weights-only times weights_only=True instead;
--default passes no weights_only at all (torch 2.6's default, True: the plain "torch.load(path)" of today);
--mmap adds mmap=True (torch >= 2.1).

--drop-caches (root; the cold-cache cases): after the warm-up and gc.collect(), os.sync() and
"3" written to /proc/sys/vm/drop_caches, so the timed load reads the file from disk while the code
and the libraries the warm-up faulted in stay mapped.

Output: {"seconds": s, "peak_bytes_above_baseline": b, "baseline_bytes": b, "hwm_reset": bool,
         "items": len(result), "torch": version}
"""
import gc
import json
import os
import sys
import time

import torch

from bench_measure import measure


def main():
    flags = {"--weights-only", "--default", "--mmap", "--drop-caches"}
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    opts = [a for a in sys.argv[1:] if a.startswith("--")]
    if len(args) != 2 or set(opts) - flags or {"--weights-only", "--default"} <= set(opts):
        sys.exit("usage: python3 torch_load_time.py <file.pt> <warmup.pt> [--weights-only | --default] [--mmap]"
                 " [--drop-caches]")
    path, warmup = args
    kw = {"map_location": "cpu"}
    if "--default" not in opts:
        kw["weights_only"] = "--weights-only" in opts
    if "--mmap" in opts:
        kw["mmap"] = True

    torch.load(warmup, **kw)
    result, record = measure(lambda: torch.load(path, **kw), drop="--drop-caches" in opts)
    print(json.dumps({
        **record,
        "items": len(result),
        "torch": torch.__version__,
        "kwargs": ", ".join(f"{k}={v!r}" for k, v in kw.items()),
    }))


if __name__ == "__main__":
    main()

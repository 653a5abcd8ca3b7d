"""Writes the DCP benchmark inputs with real torch 2.6 (run inside the Debian 13 chroot, see Invoke-Benchmark.ps1):

    python3 make_dcp_inputs.py <WorkDir>

    big26.pt     the 1 GiB state dict of make_inputs.py (64 float32 tensors 2048x2048), torch.save'd by torch 2.6
    big_dcp/     the same state dict saved with dcp.save over 2 ranks (gloo on CPU): each tensor a DTensor
                 sharded Shard(0), so every tensor is two 8 MiB chunks, one in __0_0.distcp, one in __1_0.distcp
    many_dcp/    10,000 keys (float32 tensors of shape (8,)), one process
    small_dcp/   4 small tensors (the children's untimed warm-up)

Each is written only if absent (via a temporary name and a rename). Prints one JSON line.
"""
import collections, json, os, shutil, sys

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp


def build_big():
    g = torch.Generator().manual_seed(1)
    return collections.OrderedDict((f"layers.{i}.weight", torch.rand(2048, 2048, generator=g, dtype=torch.float32)) for i in range(64))


def worker(rank, world, path):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT="29533", USE_LIBUV="0")
    dist.init_process_group("gloo", rank=rank, world_size=world)
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import distribute_tensor, Shard
    mesh = init_device_mesh("cpu", (world,))
    sd = {k: distribute_tensor(v, mesh, [Shard(0)]) for k, v in build_big().items()}
    dcp.save(sd, checkpoint_id=path)
    dist.barrier()
    dist.destroy_process_group()


def main():
    work = sys.argv[1]
    os.makedirs(work, exist_ok=True)
    big = os.path.join(work, "big26.pt")
    if not os.path.exists(big):
        torch.save(build_big(), big + ".tmp")
        os.replace(big + ".tmp", big)
    for name, make in (("small_dcp", lambda p: dcp.save({f"w{i}": torch.rand(16, 16) for i in range(4)}, checkpoint_id=p)),
                       ("many_dcp", lambda p: dcp.save({f"blocks.{i}.bias": torch.rand(8) for i in range(10000)}, checkpoint_id=p)),
                       ("big_dcp", lambda p: torch.multiprocessing.start_processes(worker, args=(2, p), nprocs=2, start_method="fork"))):
        path = os.path.join(work, name)
        if os.path.exists(path):
            continue
        shutil.rmtree(path + ".tmp", ignore_errors=True)
        make(path + ".tmp")
        os.replace(path + ".tmp", path)
    sizes = {n: sum(os.path.getsize(os.path.join(work, n, f)) for f in os.listdir(os.path.join(work, n))) for n in ("big_dcp", "many_dcp")}
    sizes["big26.pt"] = os.path.getsize(big)
    print(json.dumps({"torch": torch.__version__, "files": sizes}))


if __name__ == "__main__":
    main()

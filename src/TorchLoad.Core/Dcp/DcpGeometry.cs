using TorchLoad.Core.Errors;
using TorchLoad.Core.Tensors;

namespace TorchLoad.Core.Dcp;

/// <summary>
/// Chunk boxes of a DCP tensor: the tiling check (inside the tensor, no overlaps, volumes adding up to the
/// tensor: exactly covered, so nothing is left uninitialised), and the copy of a chunk into its box.
/// </summary>
internal static class DcpGeometry
{
    /// <summary>Pairs of chunks compared for overlap, at most, per tensor (a hostile .metadata could ask for billions).</summary>
    private const long MaxOverlapTests = 50_000_000;

    public static long Volume(long[] sizes)
    {
        long n = 1;
        foreach (var s in sizes) n = checked(n * s);
        return n;
    }

    /// <summary>Refuses chunks that leave the tensor, overlap or leave gaps; returns the tensor's byte count (checked).</summary>
    public static long Validate(DcpEntry e)
    {
        var size = e.Shape;
        var rank = size.Length;
        long numel, bytes;
        try
        {
            foreach (var d in size) if (d < 0) throw Bad(e, $"negative size in ({string.Join(", ", size)})");
            numel = Volume(size);
            bytes = checked(numel * e.DType!.ElementSize);
        }
        catch (OverflowException) { throw Bad(e, $"its size ({string.Join(", ", size)}) overflows 64-bit arithmetic"); }

        long covered = 0;
        var boxes = new List<int>(e.Chunks.Count);
        for (var i = 0; i < e.Chunks.Count; i++)
        {
            var (offsets, sizes, _, _) = e.Chunks[i];
            if (offsets.Length != rank || sizes.Length != rank)
                throw Bad(e, $"chunk {i} has {offsets.Length} offsets and {sizes.Length} sizes for a tensor of {rank} dimensions");
            for (var d = 0; d < rank; d++)
            {
                if (offsets[d] < 0 || sizes[d] < 0) throw Bad(e, $"chunk {i} has a negative offset or size");
                if (sizes[d] > size[d] - offsets[d]) throw Bad(e, $"chunk {i} at ({string.Join(", ", offsets)}) of size ({string.Join(", ", sizes)}) reaches outside the tensor ({string.Join(", ", size)})");
            }
            var v = Volume(sizes); // inside the tensor: cannot overflow
            if (v == 0) continue; // zero-size chunks are normal (uneven FSDP shards)
            covered = checked(covered + v);
            if (covered > numel) throw Bad(e, "its chunks hold more elements than the tensor: they overlap");
            boxes.Add(i);
        }
        if (covered != numel) throw Bad(e, $"its chunks cover {covered} of its {numel} elements: the rest would be uninitialised memory");
        RefuseOverlaps(e, boxes);
        return bytes;
    }

    /// <summary>
    /// A sweep along the dimension with the most distinct chunk offsets (dim 0 for FSDP's Shard(0), the
    /// sharded one otherwise): only chunks whose intervals there meet are compared.
    /// </summary>
    private static void RefuseOverlaps(DcpEntry e, List<int> boxes)
    {
        if (boxes.Count < 2) return;
        var rank = e.Shape.Length;
        if (rank == 0) throw Bad(e, "a 0-d tensor has more than one chunk");
        var sweep = 0;
        var best = -1;
        for (var d = 0; d < rank; d++)
        {
            var distinct = boxes.Select(i => e.Chunks[i].Offsets[d]).Distinct().Count();
            if (distinct > best) (best, sweep) = (distinct, d);
        }
        var order = boxes.OrderBy(i => e.Chunks[i].Offsets[sweep]).ToList();
        var active = new List<int>();
        long tests = 0;
        foreach (var i in order)
        {
            var (o, s, _, _) = e.Chunks[i];
            active.RemoveAll(j => e.Chunks[j].Offsets[sweep] + e.Chunks[j].Sizes[sweep] <= o[sweep]);
            foreach (var j in active)
            {
                if (++tests > MaxOverlapTests)
                    throw new TorchLoadException(TorchLoadErrorReason.LimitExceeded, $"DCP tensor '{e.Fqn}' has too many chunks to check for overlaps ({boxes.Count})", ".metadata") { LimitName = "chunks per tensor" };
                var (po, ps, _, _) = e.Chunks[j];
                var overlap = true;
                for (var d = 0; d < rank && overlap; d++) overlap = o[d] < po[d] + ps[d] && po[d] < o[d] + s[d];
                if (overlap) throw Bad(e, $"chunks at ({string.Join(", ", po)}) and ({string.Join(", ", o)}) overlap");
            }
            active.Add(i);
        }
    }

    /// <summary>
    /// When the box is one run of the whole tensor in C order (dims after the first partial one are whole,
    /// dims before it are 1: FSDP's Shard(0) chunks, a whole tensor), its first element; else -1.
    /// </summary>
    public static long ContiguousStart(long[] size, long[] offsets, long[] sizes)
    {
        var rank = size.Length;
        var j = rank - 1;
        while (j >= 0 && sizes[j] == size[j]) j--;
        for (var d = 0; d < j; d++) if (sizes[d] != 1) return -1;
        long start = 0;
        for (var d = 0; d < rank; d++) start = start * size[d] + offsets[d];
        return start;
    }

    /// <summary>
    /// Copies a chunk (any strides, host memory) into its box of the whole C-order tensor at <paramref name="destination"/>:
    /// one run per innermost row, element by element only when the chunk's innermost stride is not 1.
    /// </summary>
    public static unsafe void CopyIntoBox(TorchTensor chunk, byte* destination, long[] size, long[] offsets, int elementSize)
    {
        var sizes = chunk.Shape;
        var rank = sizes.Length;
        if (Volume(sizes) == 0) return;
        var src = chunk.Storage!.RequireBuffer().Pointer + chunk.StorageOffset * elementSize;
        if (rank == 0) { Buffer.MemoryCopy(src, destination, elementSize, elementSize); return; }
        var fullStrides = ShapeMath.ContiguousStrides(size);
        var index = new long[rank];
        var inner = rank - 1;
        var innerCount = sizes[inner];
        var innerStride = chunk.Stride[inner];
        while (true)
        {
            long s = 0, d = 0;
            for (var k = 0; k < rank; k++) { s += index[k] * chunk.Stride[k]; d += (offsets[k] + index[k]) * fullStrides[k]; }
            var sp = src + s * elementSize;
            var dp = destination + d * elementSize;
            if (innerStride == 1) Buffer.MemoryCopy(sp, dp, innerCount * elementSize, innerCount * elementSize);
            else
                for (long k = 0; k < innerCount; k++) Buffer.MemoryCopy(sp + k * innerStride * elementSize, dp + k * elementSize, elementSize, elementSize);
            var dim = inner - 1;
            while (dim >= 0 && ++index[dim] == sizes[dim]) index[dim--] = 0;
            if (dim < 0) break;
        }
    }

    private static TorchLoadException Bad(DcpEntry e, string message) =>
        new(TorchLoadErrorReason.InvalidTensorGeometry, $"DCP tensor '{e.Fqn}': {message}", ".metadata");
}

using TorchLoad.Core.Archive;
using TorchLoad.Core.Errors;
using TorchLoad.Core.Tensors;

namespace TorchLoad.Core.Dcp;

/// <summary>
/// Re-assembles DCP tensors from their chunks. First every chunk's archive is read without its payload and
/// checked (a dense tensor of the declared dtype and shape); only then is anything allocated, so sizes a
/// hostile .metadata declares are bounded by bytes really present. A chunk that is one run of the whole
/// tensor and lies raw in its file (FSDP's Shard(0), a single chunk) is read straight into place, large ones
/// by up to four workers at once; the others (other dims, strided, deflated, big-endian) are loaded and
/// copied into their box. With -Mmap a tensor stored as one raw chunk is a view of the file mapping.
/// </summary>
internal static class DcpAssembler
{
    private sealed record Chunk(long[] Offsets, long[] Sizes, DcpItem Item, TorchTensor Meta, bool LittleEndian);

    private sealed record RawRead(StorageBuffer Into, long IntoOffset, long Length, FileSource File, long FileOffset, string Record);

    private const long ParallelThreshold = 8 << 20;

    /// <summary>One finished tensor per tensor entry (null for bytes entries), in entry order; their storages are added to <paramref name="storages"/>.</summary>
    public static TorchTensor?[] Assemble(DcpIndex index, DcpFiles files, TorchLoadOptions options, List<TorchStorage> storages)
    {
        var chunkOptions = new TorchLoadOptions
        {
            WeightsOnly = true, SafeGlobals = options.SafeGlobals, Limits = options.Limits, MetadataOnly = true, Cancellation = options.Cancellation,
        };
        var entries = index.Entries;
        var plans = new List<Chunk>?[entries.Count];
        for (var i = 0; i < entries.Count; i++)
        {
            var e = entries[i];
            if (!e.IsTensor) continue;
            var list = plans[i] = new List<Chunk>(e.Chunks.Count);
            foreach (var (offsets, sizes, _, item) in e.Chunks)
            {
                options.Cancellation.ThrowIfCancellationRequested();
                var cp = files.LoadItem(item, $"chunk of '{e.Fqn}'", chunkOptions);
                list.Add(new Chunk(offsets, sizes, item, RequireChunkTensor(cp.Root, e, sizes, item), cp.ByteOrder == "little"));
            }
        }

        var tensors = new TorchTensor?[entries.Count];
        var raw = new List<RawRead>();
        var copies = new List<(Chunk Chunk, TorchStorage Into, DcpEntry Entry)>();
        var arena = new StorageArena();
        try
        {
            for (var i = 0; i < entries.Count; i++)
            {
                if (plans[i] is not { } list) continue;
                var e = entries[i];
                var live = list.Where(c => DcpGeometry.Volume(c.Sizes) > 0).ToList();
                var location = live.Count > 0 ? live[0].Meta.Storage!.Location : "cpu";
                if (options.Mmap && live.Count == 1 && MappedView(e, live[0], files, location) is { } view)
                {
                    tensors[i] = view;
                    storages.Add(view.Storage!);
                    continue;
                }
                var nbytes = DcpGeometry.Volume(e.Shape) * e.DType!.ElementSize; // checked in DcpGeometry.Validate
                var storage = new TorchStorage(e.Fqn, e.DType, DcpGeometry.Volume(e.Shape), location)
                {
                    Buffer = nbytes == 0 ? new EmptyBuffer() : nbytes <= StorageArena.MaxLength ? arena.Allocate(nbytes) : new HostBuffer(nbytes, deferPressure: true),
                };
                storages.Add(storage);
                tensors[i] = new TorchTensor(e.DType, e.Shape, ShapeMath.ContiguousStrides(e.Shape), 0, storage);
                foreach (var c in live)
                {
                    var start = DcpGeometry.ContiguousStart(e.Shape, c.Offsets, c.Sizes);
                    var s = c.Meta.Storage!;
                    if (start >= 0 && s.FileOffset >= 0 && c.LittleEndian && c.Meta.IsContiguous)
                        raw.Add(new RawRead(storage.Buffer, start * e.DType.ElementSize, DcpGeometry.Volume(c.Sizes) * e.DType.ElementSize,
                            files.Get(c.Item.File), c.Item.Offset + s.FileOffset + c.Meta.StorageOffset * e.DType.ElementSize, c.Item.File));
                    else copies.Add((c, storage, e));
                }
            }
            LoadSession.ReportPressure(storages);
            ReadRaw(raw, options);
            var itemOptions = chunkOptions with { MetadataOnly = false, MapLocation = Devices.MapLocation.ToDevice("cpu") };
            foreach (var (c, into, e) in copies)
            {
                options.Cancellation.ThrowIfCancellationRequested();
                var cp = files.LoadItem(c.Item, $"chunk of '{e.Fqn}'", itemOptions);
                try
                {
                    var t = RequireChunkTensor(cp.Root, e, c.Sizes, c.Item);
                    unsafe { DcpGeometry.CopyIntoBox(t, into.Buffer!.Pointer, e.Shape, c.Offsets, e.DType!.ElementSize); }
                }
                finally
                {
                    foreach (var s in cp.Storages) s.Dispose(); // the chunk's own buffers, also when it is refused
                }
            }
        }
        catch
        {
            foreach (var s in storages) s.Dispose();
            throw;
        }
        return tensors;
    }

    /// <summary>A chunk's archive must hold one plain dense tensor of the entry's dtype and the chunk's shape.</summary>
    internal static TorchTensor RequireChunkTensor(object? root, DcpEntry e, long[] sizes, DcpItem item)
    {
        string? bad = root is not TorchTensor t ? $"holds {Pickle.TorchUnpickler.Describe(root)}, not a tensor"
            : t.Layout != TorchLayout.Strided || t.IsNested || t.HasParts || t.Storage is null || t.IsConj || t.IsNeg || t.DType.IsQuantized ? "holds a tensor that is not a plain dense one"
            : !ReferenceEquals(t.DType, e.DType) ? $"holds a {t.DType} tensor, but .metadata declares {e.DType}"
            : !t.Shape.AsSpan().SequenceEqual(sizes) ? $"holds a tensor of shape ({string.Join(", ", t.Shape)}), but the chunk is ({string.Join(", ", sizes)})"
            : null;
        if (bad is not null)
            throw new TorchLoadException(TorchLoadErrorReason.InvalidTensorGeometry, $"The chunk of DCP tensor '{e.Fqn}' in {item.File} at byte {item.Offset} {bad}", item.File, item.Offset);
        return (TorchTensor)root!;
    }

    /// <summary>
    /// -Mmap: a tensor stored as one raw chunk reads its bytes from the data file when asked (its strides as saved),
    /// checked against a rewrite like any -Mmap storage.
    /// </summary>
    private static TorchTensor? MappedView(DcpEntry e, Chunk c, DcpFiles files, string location)
    {
        var s = c.Meta.Storage!;
        if (s.FileOffset < 0 || !c.LittleEndian || files.Get(c.Item.File).OpenFile is not { } file) return null;
        var storage = new TorchStorage(e.Fqn, s.DType, s.ElementCount, location)
        {
            Buffer = new FileBuffer(file, c.Item.Offset + s.FileOffset, s.ByteLength, c.Item.File), IsMapped = true,
            RecordName = c.Item.File, FileOffset = c.Item.Offset + s.FileOffset,
        };
        return new TorchTensor(e.DType!, e.Shape, c.Meta.Stride, c.Meta.StorageOffset, storage);
    }

    /// <summary>Raw chunk reads, in file order; large ones in parallel (page faults on fresh memory, not the copy, are the cost).</summary>
    private static void ReadRaw(List<RawRead> reads, TorchLoadOptions options)
    {
        reads.Sort((a, b) => a.File == b.File ? a.FileOffset.CompareTo(b.FileOffset) : string.CompareOrdinal(a.File.Path, b.File.Path));
        long total = 0, done = 0;
        foreach (var r in reads) total += r.Length;
        void Read(RawRead r, CancellationToken cancel)
        {
            if (r.Into is HostBuffer h) r.File.ReadInto(h, r.IntoOffset, r.Length, r.FileOffset, r.Record, cancel, n => Interlocked.Add(ref done, n));
            else unsafe
            {
                r.File.ReadExactly(r.FileOffset, new Span<byte>(r.Into.Pointer + r.IntoOffset, checked((int)r.Length)), r.Record);
                Interlocked.Add(ref done, r.Length);
            }
        }
        var workers = ParallelReads.Workers(reads.Count);
        if (workers <= 1 || total < ParallelThreshold)
        {
            foreach (var r in reads) { options.Cancellation.ThrowIfCancellationRequested(); Read(r, options.Cancellation); }
            options.Progress?.Invoke(done, total);
            return;
        }
        ParallelReads.Run(reads.Count, workers, (i, cancel) => Read(reads[i], cancel), options.Cancellation,
            () => options.Progress?.Invoke(Interlocked.Read(ref done), total));
        options.Cancellation.ThrowIfCancellationRequested();
        options.Progress?.Invoke(done, total);
    }
}

using TorchLoad.Core.Devices;
using TorchLoad.Core.Errors;
using TorchLoad.Core.Pickle;
using TorchLoad.Core.Tensors;

namespace TorchLoad.Core.Archive;

/// <summary>
/// State shared by the format readers during one load: the options, the open file, the storages
/// by key, and the steps every format ends with (reading bytes, byte order, validation, placement).
/// </summary>
internal sealed class LoadSession : IDisposable
{
    private readonly IReadOnlySet<string> _allowed;

    private readonly bool _ownsFile;

    /// <param name="open">Opens the source, after the options are validated (a refusal leaks no handle).</param>
    /// <param name="ownsFile">False when the caller reads the same source after the load (audits) and disposes it.</param>
    public LoadSession(Func<FileSource> open, TorchLoadOptions options, bool ownsFile = true)
    {
        Options = options;
        _allowed = SafeGlobalRegistry.SnapshotWith(options.SafeGlobals);
        File = open();
        _ownsFile = ownsFile;
    }

    /// <summary>A session over a source opened before it (a file opened at once: no delegate per load); one it owns is closed when the options are refused.</summary>
    public LoadSession(FileSource file, TorchLoadOptions options, bool ownsFile)
    {
        Options = options;
        try { _allowed = SafeGlobalRegistry.SnapshotWith(options.SafeGlobals); }
        catch
        {
            if (ownsFile) file.Dispose();
            throw;
        }
        File = file;
        _ownsFile = ownsFile;
    }

    public TorchLoadOptions Options { get; }
    public FileSource File { get; }

    /// <summary>Where small storages of this load are read to (one thread: the small reads run sequentially).</summary>
    public StorageArena SmallStorages { get; } = new();
    public LoadLimits Limits => Options.Limits;
    public CancellationToken Cancel => Options.Cancellation;

    /// <summary>Storages in the order the pickle met them, by key.</summary>
    public Dictionary<string, TorchStorage> Storages { get; } = new(StringComparer.Ordinal);
    public List<TorchStorage> StorageOrder { get; } = [];

    /// <summary>An unpickler for this load. <paramref name="persistentLoad"/> takes a persistent id's items and never keeps a tuple id itself (it may be a reused array).</summary>
    public TorchUnpickler NewUnpickler(Func<object?, object?> persistentLoad) =>
        new(Options.WeightsOnly, _allowed, Limits, persistentLoad, Options.MapLocation is null ? null : Options.MapLocation.MapTag, Options.Observer);

    public object? RunPickle(TorchUnpickler host, ReadOnlySpan<byte> data, string record, out int consumed, out int protocol)
    {
        var machine = new PickleMachine(host, Limits, Options.Encoding, record, Cancel);
        var result = machine.Run(data, out consumed);
        protocol = machine.Protocol;
        return result;
    }

    private long _inflated;

    /// <summary>Adds bytes a deflated record will inflate to; returns the load's total so far (readers run in parallel).</summary>
    public long CountInflated(long bytes)
    {
        var total = Interlocked.Add(ref _inflated, Math.Max(bytes, 0));
        return total < 0 ? long.MaxValue : total; // wrapped past long.MaxValue
    }

    /// <summary>Pre-sizes the storage list when the container knows how many storages to expect (at most).</summary>
    public void ExpectStorages(int count) => StorageOrder.Capacity = Math.Max(StorageOrder.Capacity, count);

    /// <summary>A storage the container already keeps unique (a zip record holds one): in order, not indexed by key.</summary>
    public void AddUniqueStorage(TorchStorage storage) => StorageOrder.Add(storage);

    public void AddStorage(TorchStorage storage)
    {
        if (!Storages.TryAdd(storage.Key, storage))
            throw new TorchLoadException(TorchLoadErrorReason.DuplicateRecord, $"Storage key '{storage.Key}' is declared twice", storage.RecordName);
        StorageOrder.Add(storage);
    }

    /// <summary>The storage type global of a persistent id: its dtype (uint8 for UntypedStorage).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static TorchDType StorageDType(object? storageType)
    {
        if (storageType is PyGlobal g)
        {
            if (g.Kind == GlobalKind.StorageClass) return g.Payload as TorchDType ?? TorchDType.Untyped;
            // permissive mode: storage classes from other modules (torch.cuda.X) are mapped by name
            if (TorchDType.TryFromStorageClass(g.Name, out var d)) return d;
            if (g.Name is "UntypedStorage" or "TypedStorage") return TorchDType.Untyped;
        }
        if (storageType is TorchDType dt) return dt;
        throw new TorchLoadException(TorchLoadErrorReason.InvalidPersistentId, $"A storage persistent id names {TorchUnpickler.Describe(storageType)}, not a storage class");
    }

    public static string PidString(object? v, string what) => v switch
    {
        string s => s,
        byte[] b when b.All(c => c < 0x80) => System.Text.Encoding.ASCII.GetString(b),
        long l => l.ToString(System.Globalization.CultureInfo.InvariantCulture),
        _ => throw new TorchLoadException(TorchLoadErrorReason.InvalidPersistentId, $"A storage persistent id has {TorchUnpickler.Describe(v)} as its {what}"),
    };

    public static long PidCount(object? v) => v switch
    {
        long l when l >= 0 => l,
        _ => throw new TorchLoadException(TorchLoadErrorReason.InvalidPersistentId, $"A storage persistent id declares {TorchUnpickler.Describe(v)} elements"),
    };

    /// <summary>Byte count of <paramref name="numel"/> elements, refusing overflow.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static long NBytes(long numel, TorchDType dtype, string key)
    {
        try { return checked(numel * dtype.ElementSize); }
        catch (OverflowException)
        {
            throw new TorchLoadException(TorchLoadErrorReason.StorageSizeMismatch, $"Storage {key} declares {numel} {dtype} elements, which overflows 64 bits");
        }
    }

    /// <summary>Makes each tensor on a byte-swapped file read as little-endian: swaps each storage once, by the dtype that views it.</summary>
    public unsafe void SwapByteOrder(IEnumerable<TorchTensor> tensors)
    {
        var swapped = new HashSet<TorchStorage>(ReferenceEqualityComparer.Instance);
        void Swap(TorchStorage s, TorchDType viewDType)
        {
            if (s.Buffer is not { IsHostAccessible: true } b || !swapped.Add(s)) return;
            var dtype = s.DType == TorchDType.Untyped ? viewDType : s.DType; // v3 dtypes: swap by the tensor's dtype (torch does not)
            var unit = dtype.SwapUnit;
            if (unit <= 1) return;
            for (long i = 0; i + unit <= b.Length; i += unit) new Span<byte>(b.Pointer + i, unit).Reverse();
        }
        foreach (var t in tensors)
        {
            foreach (var part in t.Parts().Select(p => p.Part).Prepend(t))
                if (part.Storage is { } s) Swap(s.ViewOf ?? s, part.DType);
        }
        foreach (var s in StorageOrder) Swap(s.ViewOf ?? s, s.DType);
    }


    /// <summary>
    /// Reads the bytes of every root storage straight into its final buffer. Small storages are read
    /// in file order through the file's window; large ones by up to four workers at once, because on
    /// fresh memory the page faults, not the copy, are the cost, and they run in parallel. Progress
    /// is reported from the calling thread only (PowerShell's Write-Progress must be called there).
    /// </summary>
    /// <param name="read">Reads one storage the container's way (small storages, and large ones whose bytes are not raw in the file, e.g. deflated).</param>
    public void ReadStorages(IReadOnlyList<TorchStorage> storages, Func<TorchStorage, Action<long>, StorageBuffer> read)
    {
        long total = 0;
        foreach (var s in storages) total += s.ByteLength;
        long done = 0;
        var progress = Options.Progress;
        Action<long> count = n => Interlocked.Add(ref done, n);

        var large = new List<TorchStorage>();
        long reported = 0;
        foreach (var s in storages)
        {
            if (s.ByteLength > ParallelReadThreshold) { large.Add(s); continue; }
            Cancel.ThrowIfCancellationRequested();
            s.Buffer = read(s, count);
            if (progress is not null && done - reported >= ProgressStep) { reported = done; progress(done, total); }
        }
        if (large.Count == 0) { ReportPressure(storages); progress?.Invoke(done, total); return; }

        // Buffers of large storages whose bytes lie raw in the file are all allocated here, before any
        // worker starts: a worker populating pages while another maps new memory serializes both on the
        // process's memory-map lock (1 GiB in 64 storages: ~205 ms this way, ~310 ms allocating per
        // worker). Their sizes are bounded by the file: raw ranges do not overlap (ZipDirectory refuses
        // overlapping records). Others (deflated) allocate in their reader, after its ratio check.
        var into = new HostBuffer?[large.Count];
        try
        {
            for (var i = 0; i < large.Count; i++)
                if (large[i].FileOffset >= 0 && large[i].FileOffset <= File.Length - large[i].ByteLength) into[i] = new HostBuffer(large[i].ByteLength, deferPressure: true);
        }
        catch
        {
            foreach (var b in into) b?.Dispose();
            throw;
        }
        StorageBuffer ReadLarge(int i, Action<long> report, CancellationToken cancel)
        {
            if (into[i] is not { } buffer) return read(large[i], report);
            File.ReadInto(buffer, large[i].FileOffset, large[i].RecordName, cancel, report);
            into[i] = null; // the storage owns it now
            return buffer;
        }

        try
        {
            var workers = ParallelReads.Workers(large.Count);
            if (workers <= 1)
            {
                for (var i = 0; i < large.Count; i++)
                {
                    Cancel.ThrowIfCancellationRequested();
                    large[i].Buffer = ReadLarge(i, n => { count(n); progress?.Invoke(Interlocked.Read(ref done), total); }, Cancel);
                }
                ReportPressure(storages);
                return;
            }
            ParallelReads.Run(large.Count, workers, (i, cancel) => large[i].Buffer = ReadLarge(i, count, cancel), Cancel,
                () => progress?.Invoke(Interlocked.Read(ref done), total));
            Cancel.ThrowIfCancellationRequested(); // workers stop between storages when cancelled, without throwing
            ReportPressure(storages);
            progress?.Invoke(Interlocked.Read(ref done), total);
        }
        finally
        {
            foreach (var b in into) b?.Dispose(); // buffers never handed to a storage (a failed or cancelled load)
        }
    }

    private const long ParallelReadThreshold = 4 << 20;
    private const long ProgressStep = 8 << 20;

    /// <summary>
    /// One AddMemoryPressure for every host buffer the readers made (all with deferred pressure, see
    /// HostBuffer); arena buffers report through their chunks.
    /// </summary>
    internal static void ReportPressure(IEnumerable<TorchStorage> storages)
    {
        long total = 0;
        foreach (var s in storages)
            if (s.Buffer is HostBuffer h) { h.CountPressure(); total += h.Length; }
        if (total > 0) GC.AddMemoryPressure(total);
    }

    /// <summary>
    /// -Mmap: each storage reads its bytes from the open file when they are asked for (<see cref="FileBuffer"/>);
    /// nothing is read or allocated per byte now, so the load costs the same for 64 MiB and 64 GiB.
    /// </summary>
    public void MapStorages(IEnumerable<TorchStorage> storages)
    {
        var file = File.OpenFile ?? throw new TorchLoadException(TorchLoadErrorReason.InvalidArgument, "-Mmap reads storages from their file later; a checkpoint from a stream has no file.");
        foreach (var s in storages)
        {
            s.Buffer = new FileBuffer(file, File.BaseOffset + s.FileOffset, s.ByteLength, s.RecordName); // a DCP item: its place in the data file
            s.IsMapped = true;
        }
    }

    /// <summary>Legacy and tar storage views share their root's bytes.</summary>
    public void ConnectViews()
    {
        foreach (var s in StorageOrder)
            if (s.ViewOf is { Buffer: not null } root && s.Buffer is null) s.Buffer = new SliceBuffer(root, checked(s.ViewOffset * s.DType.ElementSize), s.ByteLength);
    }

    /// <summary>Sparse invariants, checked after the bytes are in (torch defers them the same way).</summary>
    public static void ValidateSparse(IEnumerable<TorchTensor> sparse)
    {
        foreach (var t in sparse) SparseValidator.Validate(t);
    }

    /// <summary>map_location: every storage restored where the options say, or DeviceUnavailable.</summary>
    public void Place(IReadOnlyList<TorchTensor> deviceTensors)
    {
        var handlers = LocationRegistry.Handlers;
        foreach (var s in StorageOrder)
            if (s.ViewOf is null) DevicePlacement.Restore(s, Options.MapLocation, handlers);
        foreach (var t in deviceTensors)
        {
            if (!DeviceRegistry.IsAvailable(t.DeviceOverride!))
                throw DevicePlacement.Unavailable(t.DeviceOverride!, "a tensor rebuilt on that device");
        }
    }

    public void Dispose()
    {
        if (_ownsFile) File.Dispose();
    }
}

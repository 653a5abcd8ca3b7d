using System.Buffers;
using TorchLoad.Core.Archive;
using TorchLoad.Core.Errors;
using TorchLoad.Core.Pickle;

namespace TorchLoad.Core.Audit;

public enum AuditVerdict { Safe, Unsafe, Corrupt, Unsupported }

/// <summary>A global a checkpoint names, with what safe mode thinks of it.</summary>
/// <param name="Verdict"><c>Allowed</c> (loads in safe mode), <c>Dangerous</c> (known code-execution or I/O gadget) or <c>Unknown</c>.</param>
public sealed record GlobalFinding(string Name, string Verdict, int Count)
{
    /// <summary>One readable line: <c>builtins.eval (Dangerous, 2x)</c>.</summary>
    public override string ToString() => Count > 1 ? $"{Name} ({Verdict}, {Count}x)" : $"{Name} ({Verdict})";
}

/// <summary>The result of auditing one checkpoint: plain values only, so it survives remoting and jobs.</summary>
public sealed class AuditResult
{
    public required string Path { get; init; }
    public AuditVerdict Verdict { get; internal set; }
    public string? Format { get; internal set; }
    public long? Version { get; internal set; }
    public string? ByteOrder { get; internal set; }
    public int? PickleProtocol { get; internal set; }
    public List<GlobalFinding> Globals { get; } = [];
    public List<string> Findings { get; } = [];
    /// <summary>The error id (object-model.md) when the file could not be read structurally.</summary>
    public string? ErrorId { get; internal set; }
    public int StorageCount { get; internal set; }
    public int TensorCount { get; internal set; }
    public long StorageBytes { get; internal set; }
    public int RecordCount { get; internal set; }

    /// <summary>With -CheckValues: how many tensors hold NaN or ±Inf (each also a finding); null when values were not read.</summary>
    public int? NonFiniteTensorCount { get; internal set; }

    /// <summary>The file name without its folder, for tables.</summary>
    public string Name => System.IO.Path.GetFileName(Path);

    public bool IsSafe => Verdict == AuditVerdict.Safe;
    public override string ToString() => $"{Verdict} {Path}";
}

/// <summary>
/// Test-TorchCheckpoint's engine: reads the pickle in permissive, metadata-only mode (nothing
/// executed, no tensor bytes loaded), classifies every global it names, checks the structure and,
/// for zip archives, every record's CRC-32. Like torch's get_unsafe_globals_in_checkpoint plus
/// picklescan's danger levels plus an integrity check.
/// </summary>
public static class CheckpointAudit
{
    /// <param name="checkValues">Also reads every tensor's values (a second, full load; nothing executed) and adds a finding per tensor holding NaN or ±Inf; the verdict is not changed by it.</param>
    public static AuditResult Audit(string path, IReadOnlyCollection<string>? safeGlobals = null, bool verifyCrc = true, LoadLimits? limits = null, CancellationToken cancel = default, bool checkValues = false)
    {
        if (TorchLoader.TryOpenCheckpointFile(path) is { } file) return Audit(file, null, path, safeGlobals, verifyCrc, limits, cancel, checkValues);
        if (ShardedCheckpoint.IsIndex(path)) return AuditShards(path, safeGlobals, verifyCrc, limits, cancel, checkValues);
        if (Dcp.DcpFolder.TryResolve(path, out var folder))
        {
            var dcp = Dcp.DcpAudit.Audit(folder, AllowedGlobals(safeGlobals), verifyCrc, limits ?? LoadLimits.Default, cancel);
            if (checkValues && dcp.ErrorId is null) CheckValues(options => TensorStatistics.LoadForMeasuring(path, options), dcp, limits ?? LoadLimits.Default, cancel);
            return dcp;
        }
        return Audit(null, () => new FileSource(path), path, safeGlobals, verifyCrc, limits, cancel, checkValues);
    }

    /// <summary>Audits a checkpoint read from a stream (from its position; non-seekable streams are buffered, see TorchLoader.Load).</summary>
    public static AuditResult Audit(Stream stream, string name = "(stream)", IReadOnlyCollection<string>? safeGlobals = null, bool verifyCrc = true, LoadLimits? limits = null, CancellationToken cancel = default, bool checkValues = false)
    {
        ArgumentNullException.ThrowIfNull(stream);
        return Audit(null, () => FileSource.FromStream(stream, (limits ?? LoadLimits.Default).MaxStreamBytes, name), name, safeGlobals, verifyCrc, limits, cancel, checkValues);
    }

    /// <summary>The session's safe globals plus the call's; os/sys/posix/nt are refused, as for a load.</summary>
    private static IReadOnlySet<string> AllowedGlobals(IReadOnlyCollection<string>? safeGlobals) => SafeGlobalRegistry.SnapshotWith(safeGlobals);

    /// <summary>
    /// One source, opened once for the load, the CRC check and the value check. A file that changes while it is
    /// audited gives CheckpointChanged (thrown: an error row, not a verdict about bytes that were never one file).
    /// </summary>
    /// <param name="opened">The source when it is open already (a file opened at once), else null and <paramref name="open"/> opens it; closed here either way.</param>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // once per file: see EngineWarmup
    private static AuditResult Audit(FileSource? opened, Func<FileSource>? open, string path, IReadOnlyCollection<string>? safeGlobals, bool verifyCrc, LoadLimits? limits, CancellationToken cancel, bool checkValues)
    {
        IReadOnlySet<string> allowed;
        try { allowed = AllowedGlobals(safeGlobals); }
        catch
        {
            opened?.Dispose(); // a refused -SafeGlobal: thrown, as for a load
            throw;
        }
        var result = new AuditResult { Path = path };
        var named = new List<string>();
        var modulePids = new List<string>();
        var options = new TorchLoadOptions
        {
            WeightsOnly = false, MetadataOnly = true, Limits = limits ?? LoadLimits.Default, Cancellation = cancel,
            Observer = (kind, name) => (kind == "global" ? named : modulePids).Add(name),
        };
        TorchLoadException? failure = null;
        var source = opened;
        try
        {
            source ??= open!();
            var checkpoint = TorchLoader.Load(source, options);
            result.Format = checkpoint.Format;
            result.Version = checkpoint.Version;
            result.ByteOrder = checkpoint.ByteOrder;
            result.PickleProtocol = checkpoint.PickleProtocol;
            result.StorageCount = checkpoint.Storages.Count;
            result.StorageBytes = RootStorageBytes(checkpoint.Storages);
            result.TensorCount = TensorInfo.Count(checkpoint.Root);
            result.RecordCount = checkpoint.Records.Count;
            result.Findings.AddRange(checkpoint.Warnings);
            var crcs = checkpoint.Format == "zip" && verifyCrc;
            if (crcs) VerifyCrcs(source, result, options.Limits, cancel, records: checkpoint.ZipRecords);
            if (checkValues) CheckValues(o => TensorStatistics.LoadForMeasuring(source, o), result, options.Limits, cancel);
            // the load checked the file at its end; reading it again (CRCs, values) needs its own check
            if ((crcs || checkValues) && source.HasChanged) throw source.Changed();
        }
        catch (Exception e) when (TorchLoader.AsLoadError(e, path) is { Reason: not (TorchLoadErrorReason.Cancelled or TorchLoadErrorReason.CheckpointChanged) } mapped)
        {
            // a stream's own failure (IOException, corrupt GZip data) is a row with an id too, never a raw exception
            failure = Failed(result, mapped);
        }
        catch (Exception e) when (e is not TorchLoadException && TorchLoader.AsLoadError(e, path) is { } mapped)
        {
            throw mapped; // cancelled
        }
        finally
        {
            source?.Dispose();
        }
        Conclude(result, named, modulePids, allowed, failure);
        return result;
    }

    /// <summary>Records why an audit could not read the checkpoint (ErrorId and a finding); the verdict follows from it.</summary>
    internal static TorchLoadException Failed(AuditResult result, TorchLoadException e)
    {
        result.ErrorId = e.Reason.ToString();
        result.Findings.Add($"{e.Reason}: {e.Message}");
        return e;
    }

    /// <summary>
    /// Classifies the globals and sets the verdict. <paramref name="dcpMetadataGlobals"/>: what a DCP .metadata named,
    /// judged by DCP's own class list (no user allowlist widens it), listed before the globals of its items.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // once per file: see EngineWarmup
    internal static void Conclude(AuditResult result, List<string> named, List<string> modulePids, IReadOnlySet<string> allowed, TorchLoadException? failure,
        IReadOnlyList<string>? dcpMetadataGlobals = null)
    {
        if (dcpMetadataGlobals is { Count: > 0 })
        {
            var (metadataNames, metadataCounts) = CountInOrder(dcpMetadataGlobals);
            for (var i = 0; i < metadataNames.Count; i++)
            {
                var name = metadataNames[i];
                var verdict = Dcp.DcpMetadataUnpickler.IsAllowed(name) ? "Allowed" : DangerousGlobals.IsDangerous(name) ? "Dangerous" : "Unknown";
                result.Globals.Add(new GlobalFinding(name, verdict, metadataCounts[i]));
            }
        }
        var fromMetadata = result.Globals.Count;
        var (globalNames, globalCounts) = CountInOrder(named);
        for (var i = 0; i < globalNames.Count; i++)
        {
            var name = globalNames[i];
            var verdict = IsAllowed(name, allowed) ? "Allowed" : DangerousGlobals.IsDangerous(name) ? "Dangerous" : "Unknown";
            result.Globals.Add(new GlobalFinding(name, verdict, globalCounts[i]));
        }
        if (modulePids.Count > 0)
        {
            foreach (var m in modulePids.Distinct())
                result.Findings.Add($"Whole nn.Module class {m} is referenced by a legacy 'module' persistent id (safe mode refuses it)");
        }

        var unsafeGlobals = 0;
        for (var i = 0; i < result.Globals.Count; i++)
        {
            var g = result.Globals[i];
            if (g.Verdict == "Allowed") continue;
            unsafeGlobals++;
            result.Findings.Add(g.Verdict == "Dangerous"
                ? $"Dangerous global {g.Name}: known to execute code or touch files/network when called"
                : i < fromMetadata
                    ? $"Global {g.Name} in .metadata is not one of DCP's classes (nothing widens .metadata's class list)"
                    : $"Global {g.Name} is not allowed in safe mode (-SafeGlobal '{g.Name}' would allow it)");
        }

        result.Verdict = unsafeGlobals > 0 || modulePids.Count > 0 ? AuditVerdict.Unsafe
            : failure is null ? (result.Findings.Any(f => f.StartsWith("CRC mismatch", StringComparison.Ordinal)) ? AuditVerdict.Corrupt : AuditVerdict.Safe)
            : failure.Reason is TorchLoadErrorReason.UnsupportedFormat or TorchLoadErrorReason.UnsupportedCompression
                or TorchLoadErrorReason.UnsupportedVersion or TorchLoadErrorReason.UnsupportedOpcode or TorchLoadErrorReason.NotACheckpoint
                ? AuditVerdict.Unsupported
                : AuditVerdict.Corrupt;
    }

    /// <summary>The bytes of the storages that are not views of another (legacy views share their root's bytes).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static long RootStorageBytes(IReadOnlyList<Tensors.TorchStorage> storages)
    {
        long bytes = 0;
        for (var i = 0; i < storages.Count; i++)
            if (storages[i].ViewOf is null) bytes += storages[i].ByteLength;
        return bytes;
    }

    /// <summary>
    /// Each distinct name in order of first occurrence, with how often it occurs (what GroupBy gives, without its
    /// groupings). A checkpoint names a few globals: they are found by a scan, and by a dictionary only past a
    /// dozen distinct names (a hostile pickle's thousands); collections of reference types and ints, whose code is precompiled.
    /// </summary>
    private static (List<string> Names, int[] Counts) CountInOrder(IReadOnlyList<string> names)
    {
        const int Scanned = 12;
        var distinct = new List<string>(Math.Min(names.Count, Scanned));
        var counts = new int[names.Count];
        Dictionary<string, int>? index = null;
        foreach (var n in names)
        {
            var at = index is not null ? (index.TryGetValue(n, out var i) ? i : -1) : distinct.IndexOf(n);
            if (at < 0)
            {
                at = distinct.Count;
                distinct.Add(n);
                if (index is not null) index[n] = at;
                else if (distinct.Count > Scanned)
                {
                    index = new Dictionary<string, int>(StringComparer.Ordinal);
                    for (var k = 0; k < distinct.Count; k++) index[distinct[k]] = k;
                }
            }
            counts[at]++;
        }
        return (distinct, counts);
    }

    /// <summary>
    /// Every tensor's values, for NaN and ±Inf: one finding per tensor that holds any. The load is permissive
    /// (unknown classes become inert objects, nothing runs) so an Unsafe file is checked too.
    /// </summary>
    private static void CheckValues(Func<TorchLoadOptions, TorchCheckpoint> load, AuditResult result, LoadLimits limits, CancellationToken cancel)
    {
        TorchCheckpoint checkpoint;
        try
        {
            checkpoint = load(new TorchLoadOptions
            {
                WeightsOnly = false, Limits = limits, Cancellation = cancel, MapLocation = Devices.MapLocation.ToDevice("cpu"),
            });
        }
        catch (TorchLoadException e) when (e.Reason is not (TorchLoadErrorReason.Cancelled or TorchLoadErrorReason.CheckpointChanged))
        {
            // the values could not be read (a memory limit, a device): said, but the verdict stays about what was audited
            result.Findings.Add($"Values not checked: {e.Reason}: {e.Message}");
            return;
        }
        try
        {
            var measured = new Dictionary<Tensors.TorchTensor, TensorStatistics?>(ReferenceEqualityComparer.Instance);
            var count = 0;
            foreach (var row in TensorInfo.From(checkpoint.Root, hash: false))
            {
                cancel.ThrowIfCancellationRequested();
                var t = row.Tensor!;
                if (!measured.TryGetValue(t, out var stats))
                {
                    try { stats = TensorStatistics.Measure(row.Name, t, cancel: cancel); }
                    catch (InvalidOperationException) { stats = null; } // meta tensors: no values
                    measured[t] = stats;
                }
                if (stats is not { HasNonFinite: true }) continue;
                count++;
                result.Findings.Add($"Non-finite values in {row.Name}: {stats.NaNCount} NaN and {stats.InfCount} Inf of {stats.ElementCount} ({t.DType}, shape ({string.Join(", ", t.Shape)}))");
            }
            result.NonFiniteTensorCount = count;
        }
        finally
        {
            foreach (var s in checkpoint.Storages) s.Dispose();
        }
    }

    /// <summary>A sharded checkpoint: every shard audited, one result; the worst verdict wins (Unsafe, Corrupt, Unsupported, Safe).</summary>
    private static AuditResult AuditShards(string indexPath, IReadOnlyCollection<string>? safeGlobals, bool verifyCrc, LoadLimits? limits, CancellationToken cancel, bool checkValues)
    {
        var result = new AuditResult { Path = indexPath, Format = "sharded" };
        IReadOnlyList<string> shards;
        try { shards = ShardedCheckpoint.ShardPaths(indexPath); }
        catch (TorchLoadException e)
        {
            result.ErrorId = e.Reason.ToString();
            result.Findings.Add($"{e.Reason}: {e.Message}");
            result.Verdict = AuditVerdict.Corrupt;
            return result;
        }
        var parts = shards.Select(s => Audit(s, safeGlobals, verifyCrc, limits, cancel, checkValues)).ToList();
        foreach (var g in parts.SelectMany(p => p.Globals).GroupBy(g => (g.Name, g.Verdict)))
            result.Globals.Add(new GlobalFinding(g.Key.Name, g.Key.Verdict, g.Sum(x => x.Count)));
        foreach (var p in parts) result.Findings.AddRange(p.Findings.Select(f => $"{System.IO.Path.GetFileName(p.Path)}: {f}"));
        result.StorageCount = parts.Sum(p => p.StorageCount);
        result.StorageBytes = parts.Sum(p => p.StorageBytes);
        result.TensorCount = parts.Sum(p => p.TensorCount);
        result.RecordCount = parts.Count;
        if (checkValues) result.NonFiniteTensorCount = parts.Sum(p => p.NonFiniteTensorCount ?? 0);
        result.ErrorId = parts.Select(p => p.ErrorId).FirstOrDefault(e => e is not null);
        // the index must agree with the shards (every tensor where it says, no tensor twice): a metadata-only merge checks it
        var consistent = true;
        if (parts.All(p => p.ErrorId is null))
        {
            try { TorchLoader.Load(indexPath, new TorchLoadOptions { WeightsOnly = false, MetadataOnly = true, Limits = limits ?? LoadLimits.Default, Cancellation = cancel }); }
            catch (TorchLoadException e) when (e.Reason != TorchLoadErrorReason.Cancelled)
            {
                consistent = false;
                result.ErrorId = e.Reason.ToString();
                result.Findings.Add($"{e.Reason}: {e.Message}");
            }
        }
        result.Verdict = parts.Any(p => p.Verdict == AuditVerdict.Unsafe) ? AuditVerdict.Unsafe
            : !consistent || parts.Any(p => p.Verdict == AuditVerdict.Corrupt) ? AuditVerdict.Corrupt
            : parts.Any(p => p.Verdict == AuditVerdict.Unsupported) ? AuditVerdict.Unsupported
            : AuditVerdict.Safe;
        return result;
    }

    private static bool IsAllowed(string name, IReadOnlySet<string> user)
    {
        if (DefaultAllowlist.Entries.ContainsKey(name)) return true; // no blocked module is in it
        var dot = name.LastIndexOf('.');
        if (dot > 0 && GlobalName.IsBlockedModule(name.AsSpan(0, dot))) return false;
        return user.Contains(name) || dot > 0 && DefaultAllowlist.TryTorchValue(name[..dot], name[(dot + 1)..], out _);
    }

    /// <summary>Every record's bytes against its directory CRC-32 (stored read directly, deflated inflated with the same bound as a load).</summary>
    /// <param name="label">Put before each record name in findings (a DCP item's key: every item has an archive/data.pkl).</param>
    /// <param name="records">The directory a load of the same source read, or null to read it.</param>
    internal static void VerifyCrcs(FileSource file, AuditResult result, LoadLimits limits, CancellationToken cancel, string label = "", IReadOnlyList<ZipRecord>? records = null)
    {
        records ??= ZipDirectory.Read(file);
        var stored = StoredCrcs(file, records, cancel); // stored records in parallel; findings below stay in record order
        for (var i = 0; i < records.Count; i++)
        {
            var r = records[i];
            cancel.ThrowIfCancellationRequested();
            if (r.Size == 0) continue;
            if (r.Crc32 == 0) { result.Findings.Add($"CRC not recorded for {label}{r.Name} (saved with CRC computation off)"); continue; }
            uint actual;
            if (r.IsStored)
            {
                actual = stored[i];
            }
            else
            {
                if (r.Size > RecordInflater.Limit(limits, file.Length))
                {
                    result.Findings.Add($"CRC not checked for {label}{r.Name}: it would inflate past -MaxInflateRatio");
                    continue;
                }
                // the load's reader: a record that does not inflate to its size, or at all, is InvalidArchive there
                var crc = new System.IO.Hashing.Crc32();
                try { RecordInflater.Inflate(file, r, cancel, (bytes, _) => crc.Append(bytes)); }
                catch (TorchLoadException e) when (e.Reason == TorchLoadErrorReason.InvalidArchive)
                {
                    result.Findings.Add($"CRC mismatch for {label}{r.Name}: the deflated data is corrupt ({e.Message})");
                    continue;
                }
                actual = crc.GetCurrentHashAsUInt32();
            }
            if (actual != r.Crc32) result.Findings.Add($"CRC mismatch for {label}{r.Name}: directory says {r.Crc32:x8}, data has {actual:x8}");
        }
    }

    // Records are hashed through pooled buffers of at most 1 MiB: a fresh megabyte per file (zeroed, on the
    // large-object heap) cost more than everything else an audit of a 5 KB checkpoint does.
    private const int HashBuffer = 1 << 20;

    /// <summary>
    /// The CRC-32 of every stored record with a recorded CRC, by index (0 for the others). Large records are read
    /// and hashed by two workers at once, each through its own 1 MiB buffer: one core hashes slower than the page
    /// cache delivers.
    /// </summary>
    private static uint[] StoredCrcs(FileSource file, IReadOnlyList<ZipRecord> records, CancellationToken cancel)
    {
        var crcs = new uint[records.Count];
        var todo = new List<int>();
        long bytes = 0;
        for (var i = 0; i < records.Count; i++)
            if (records[i] is { IsStored: true, Size: > 0, Crc32: not 0 } r) { todo.Add(i); bytes += r.Size; }
        void Hash(int i, byte[] buffer)
        {
            var r = records[i];
            if (r.Size <= buffer.Length)
            {
                // one read, hashed in one call (no hasher object per record: small files have a few small records)
                var span = buffer.AsSpan(0, (int)r.Size);
                file.ReadExactly(r.DataOffset, span, r.Name);
                crcs[i] = System.IO.Hashing.Crc32.HashToUInt32(span);
                return;
            }
            var crc = new System.IO.Hashing.Crc32();
            for (long done = 0; done < r.Size;)
            {
                cancel.ThrowIfCancellationRequested();
                var n = (int)Math.Min(buffer.Length, r.Size - done);
                file.ReadExactly(r.DataOffset + done, buffer.AsSpan(0, n), r.Name);
                crc.Append(buffer.AsSpan(0, n));
                done += n;
            }
            crcs[i] = crc.GetCurrentHashAsUInt32();
        }
        if (todo.Count < 2 || bytes < 64L << 20)
        {
            var buffer = ArrayPool<byte>.Shared.Rent((int)Math.Min(bytes, HashBuffer));
            try { foreach (var i in todo) Hash(i, buffer); }
            finally { ArrayPool<byte>.Shared.Return(buffer); }
            return crcs;
        }
        try
        {
            Parallel.ForEach(todo, new ParallelOptions { CancellationToken = cancel, MaxDegreeOfParallelism = Math.Clamp(Environment.ProcessorCount, 1, 4) },
                () => ArrayPool<byte>.Shared.Rent(HashBuffer), (i, _, buffer) => { Hash(i, buffer); return buffer; }, b => ArrayPool<byte>.Shared.Return(b));
        }
        catch (AggregateException e)
        {
            Archive.ParallelReads.RethrowFirst(e); // a file that changed (CheckpointChanged) or a device error, as itself
        }
        return crcs;
    }
}

using System.Buffers.Binary;
using System.Numerics;
using TorchLoad.Core.Errors;
using TorchLoad.Core.Pickle;
using TorchLoad.Core.Tensors;

namespace TorchLoad.Core.Archive;

/// <summary>
/// The legacy stream (torch 0.1.10-1.5, and <c>_use_new_zipfile_serialization=False</c>): pickles of
/// the magic number, 1001, sys_info, the object and the storage keys, then each storage as an
/// int64 element count and its little-endian bytes. All five pickles go through the restricted
/// unpickler, so a raw malicious pickle is refused at its first disallowed global.
/// </summary>
internal static class LegacyCheckpoint
{
    public static readonly BigInteger MagicNumber = BigInteger.Parse("119547037146038801333356");
    public const long ProtocolVersion = 1001;

    public static TorchCheckpoint Load(LoadSession session)
    {
        var file = session.File;
        if (session.Options.Mmap)
            throw new TorchLoadException(TorchLoadErrorReason.UnsupportedFormat,
                "-Mmap can only be used with checkpoints saved in the zip format (torch.save's default since 1.6); this is a legacy-format file. Load it without -Mmap.");
        long pos = 0;
        // each pickle read into memory as far as its STOP (no mapping of the file: see PickleReader)
        object? Next(TorchUnpickler unpickler, string record, out int n, out int protocol)
        {
            using var pickle = PickleReader.Read(file, pos, file.Length, session.Limits, record);
            var value = session.RunPickle(unpickler, pickle.Span, record, out n, out protocol);
            pos += n;
            return value;
        }

        object? RefuseIds(object? pid) => throw new TorchLoadException(TorchLoadErrorReason.InvalidPersistentId, "A persistent id appears outside the object pickle");
        var helper = session.NewUnpickler(RefuseIds);
        object? magic;
        int n;
        try { magic = Next(helper, "legacy magic number", out n, out _); }
        catch (TorchLoadException e) when (e.Reason is not (TorchLoadErrorReason.UnsafeGlobal or TorchLoadErrorReason.Cancelled or TorchLoadErrorReason.CheckpointChanged))
        {
            // Not even the first pickle parses: whatever this is, it is no legacy checkpoint.
            throw new TorchLoadException(TorchLoadErrorReason.NotACheckpoint,
                $"This is not a torch.save checkpoint (neither zip, tar nor a legacy stream starting with the magic number): {e.Message}", null, 0, e);
        }
        if (!(magic is long m && m == MagicNumber || magic is BigInteger b && b == MagicNumber))
            throw new TorchLoadException(TorchLoadErrorReason.NotACheckpoint,
                "Invalid magic number: this is not a torch.save checkpoint (neither zip, legacy stream nor tar); it may be a plain pickle, a Git LFS pointer or a corrupt file", null, 0);
        var version = Next(helper, "legacy protocol version", out n, out _);
        if (version is not long v || v != ProtocolVersion)
            throw new TorchLoadException(TorchLoadErrorReason.UnsupportedVersion, $"Invalid legacy protocol version {version}; expected {ProtocolVersion}", null, pos - n);
        Next(helper, "legacy sys_info", out _, out _); // read and ignored, as torch does

        object? PersistentLoad(object? pid) => LegacyPersistentLoad(session, pid);
        var host = session.NewUnpickler(PersistentLoad);
        var root = Next(host, "legacy object pickle", out _, out var protocol);
        var keysOffset = pos;
        var keys = Next(helper, "legacy storage keys", out _, out _);
        if (keys is not List<object?> keyList)
            throw new TorchLoadException(TorchLoadErrorReason.MalformedPickle, $"The legacy storage key list is {TorchUnpickler.Describe(keys)}, not a list", "legacy storage keys", keysOffset);

        var checkpoint = new TorchCheckpoint(file.Path, "legacy", root, session.StorageOrder)
        {
            Version = ProtocolVersion, PickleProtocol = protocol, Globals = host.GlobalsSeen,
        };

        // storage blobs, in the key list's order (sorted as strings by the writer; never re-sorted here)
        long offset = pos;
        var reads = new List<TorchStorage>();
        var listed = new HashSet<string>(StringComparer.Ordinal);
        Span<byte> header = stackalloc byte[8]; // once: a stackalloc inside the loop would grow the stack per key (hostile key lists)
        foreach (var k in keyList)
        {
            var key = LoadSession.PidString(k, "key");
            if (!session.Storages.TryGetValue(key, out var storage) || storage.ViewOf is not null || !listed.Add(key))
                throw new TorchLoadException(TorchLoadErrorReason.MalformedPickle, $"The storage key list names '{key}', which the object pickle never declared as a storage", "legacy storage keys", keysOffset);
            file.ReadExactly(offset, header, $"legacy storage {key}");
            var count = BinaryPrimitives.ReadInt64LittleEndian(header);
            if (count != storage.ElementCount)
                throw new TorchLoadException(TorchLoadErrorReason.StorageSizeMismatch,
                    $"Storage '{key}' has the wrong size: the pickle declares {storage.ElementCount} elements, the file {count}", $"legacy storage {key}", offset);
            var dataOffset = offset + 8;
            if (storage.ByteLength > file.Length - dataOffset)
                throw new TorchLoadException(TorchLoadErrorReason.TruncatedCheckpoint,
                    $"Unexpected end of file: storage '{key}' needs {storage.ByteLength} bytes at {dataOffset}, the file has {file.Length - dataOffset} left", $"legacy storage {key}", dataOffset);
            storage.RecordName = $"legacy storage {key}";
            storage.FileOffset = dataOffset;
            reads.Add(storage);
            offset = dataOffset + storage.ByteLength;
        }
        var missing = session.StorageOrder.FirstOrDefault(s => s.ViewOf is null && !listed.Contains(s.Key));
        if (missing is not null)
            throw new TorchLoadException(TorchLoadErrorReason.MissingRecord, $"The object pickle uses storage '{missing.Key}' but the file has no data for it", "legacy storage keys", keysOffset);
        if (offset < file.Length) checkpoint.Warnings.Add($"{file.Length - offset} bytes follow the last storage (another save appended to the same stream?)");

        if (session.Options.MetadataOnly) return checkpoint;
        session.ReadStorages(reads, (s, report) => file.ReadToHost(s.FileOffset, s.ByteLength, s.RecordName, session.Cancel, report, session.SmallStorages));
        session.ConnectViews();
        LoadSession.ValidateSparse(host.SparseTensors);
        session.Place(host.DeviceTensors);
        session.ConnectViews();
        return checkpoint;
    }

    /// <summary>('storage', type, root_key, location, numel, view_metadata) or, in permissive mode only, ('module', cls, file, source).</summary>
    private static object? LegacyPersistentLoad(LoadSession session, object? pid)
    {
        if (pid is not object?[] { Length: > 0 } t)
            throw new TorchLoadException(TorchLoadErrorReason.InvalidPersistentId, $"A legacy persistent id must be a tuple, got {TorchUnpickler.Describe(pid)}");
        var tag = LoadSession.PidString(t[0], "tag");
        if (tag == "module")
        {
            session.Options.Observer?.Invoke("module-persistent-id", t.Length > 1 && t[1] is PyGlobal g ? g.ClassName : "?");
            if (session.Options.WeightsOnly)
                throw new TorchLoadException(TorchLoadErrorReason.InvalidPersistentId,
                    "Weights only load failed: only persistent_load of storage is allowed, but the file references a whole nn.Module class ('module' persistent id). Load with -WeightsOnly:$false to get inert objects.");
            return t.Length > 1 ? t[1] : null;
        }
        if (tag != "storage")
            throw new TorchLoadException(TorchLoadErrorReason.InvalidPersistentId, $"Unknown saved id type '{tag}'");
        if (t.Length != 6) throw new TorchLoadException(TorchLoadErrorReason.InvalidPersistentId, $"A legacy storage persistent id has {t.Length} parts, expected 6");
        var dtype = LoadSession.StorageDType(t[1]);
        var key = LoadSession.PidString(t[2], "key");
        var location = LoadSession.PidString(t[3], "location");
        var numel = LoadSession.PidCount(t[4]);
        if (!session.Storages.TryGetValue(key, out var root))
        {
            LoadSession.NBytes(numel, dtype, key);
            if (numel * dtype.ElementSize > session.File.Length)
                throw new TorchLoadException(TorchLoadErrorReason.StorageSizeMismatch, $"Storage '{key}' declares {numel} elements, more bytes than the whole file holds");
            root = new TorchStorage(key, dtype, numel, location);
            session.AddStorage(root);
        }
        if (t[5] is null) return root;
        if (t[5] is not object?[] { Length: 3 } view)
            throw new TorchLoadException(TorchLoadErrorReason.InvalidPersistentId, $"Legacy view metadata must be (view_key, offset, size), got {TorchUnpickler.Describe(t[5])}");
        var viewKey = LoadSession.PidString(view[0], "view key");
        if (session.Storages.TryGetValue(viewKey, out var existing)) return existing;
        var viewOffset = TorchUnpickler.ToLong(view[1], "view offset");
        var viewSize = TorchUnpickler.ToLong(view[2], "view size");
        if (viewOffset < 0 || viewSize < 0 || viewOffset > root.ElementCount - viewSize)
            throw new TorchLoadException(TorchLoadErrorReason.InvalidTensorGeometry, $"Storage view '{viewKey}' ({viewSize} elements at {viewOffset}) lies outside storage '{key}' of {root.ElementCount}");
        var viewStorage = new TorchStorage(viewKey, dtype, viewSize, location) { ViewOf = root, ViewOffset = viewOffset };
        session.AddStorage(viewStorage);
        return viewStorage;
    }
}

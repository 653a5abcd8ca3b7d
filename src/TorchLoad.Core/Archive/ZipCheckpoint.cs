using System.Text;
using TorchLoad.Core.Errors;
using TorchLoad.Core.Tensors;

namespace TorchLoad.Core.Archive;

/// <summary>
/// torch.save's zip format (1.6+): <c>&lt;prefix&gt;/data.pkl</c>, <c>data/&lt;key&gt;</c>, <c>version</c>,
/// <c>byteorder</c>, ... Stored records are read at their local-header offset; deflated ones are
/// inflated with a bound. TorchScript and torch.package archives are recognised and refused.
/// </summary>
internal static class ZipCheckpoint
{
    public const int MaxSupportedVersion = 10;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // once per file: see EngineWarmup
    public static TorchCheckpoint Load(LoadSession session)
    {
        var file = session.File;
        var records = ZipDirectory.Read(file);
        if (records.Count == 0) throw new TorchLoadException(TorchLoadErrorReason.MissingRecord, "The zip archive is empty: it has no data.pkl");
        var first = records[0].Name;
        var slash = first.IndexOf('/');
        if (slash <= 0) throw new TorchLoadException(TorchLoadErrorReason.InvalidArchive, $"Record '{first}' is not in a folder: a torch.save archive keeps everything under one top folder", first);
        var prefix = first[..slash];
        var folder = prefix + "/";
        var dataFolder = prefix + "/data/";
        foreach (var r in records)
        {
            if (!r.IsIn(folder))
                throw new TorchLoadException(TorchLoadErrorReason.InvalidRecordName, $"Record '{r.Name}' is outside the archive folder '{folder}'", r.Name);
        }
        // the records other than data/<key>, by their name inside the folder (looked up without building the name)
        ZipRecord? Named(string name) => records.TryGet(folder, name, out var r) ? r : null;

        if (Named("constants.pkl") is not null)
            throw new TorchLoadException(TorchLoadErrorReason.UnsupportedFormat,
                "This is a TorchScript archive (it has constants.pkl). TorchLoad never loads TorchScript: its code would have to run. Export the weights with torch.save(model.state_dict()) instead.", prefix + "/constants.pkl");
        var pkl = Named("data.pkl");
        if (pkl is null && records.Any(r => !r.Name.StartsWith(dataFolder, StringComparison.Ordinal)
                && (r.Name.AsSpan(folder.Length).StartsWith(".data/extern_modules", StringComparison.Ordinal) || r.Name.EndsWith(".py", StringComparison.Ordinal))))
            throw new TorchLoadException(TorchLoadErrorReason.UnsupportedFormat, "This is a torch.package archive; it holds Python code and is not a torch.save checkpoint.");

        var version = ReadVersion(session, Named(".data/version") ?? Named("version"), prefix);
        var byteOrder = "little";
        if (Named("byteorder") is { } bo)
        {
            Span<byte> tag = stackalloc byte[16];
            tag = tag[..ReadSmall(session, bo, tag)];
            byteOrder = tag.SequenceEqual("little"u8) ? "little" : tag.SequenceEqual("big"u8) ? "big"
                : throw new TorchLoadException(TorchLoadErrorReason.InvalidArchive, $"Unknown endianness type '{Encoding.ASCII.GetString(tag)}' in the byteorder record", bo.Name);
        }
        if (pkl is null)
            throw new TorchLoadException(TorchLoadErrorReason.MissingRecord, $"The archive has no '{prefix}/data.pkl' record, so it is not a torch.save checkpoint", prefix + "/data.pkl");

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        object? PersistentLoad(object? pid)
        {
            if (pid is not object?[] t || t.Length == 0 || LoadSession.PidString(t[0], "tag") != "storage")
                throw new TorchLoadException(TorchLoadErrorReason.InvalidPersistentId,
                    $"Only persistent ids of storages ('storage', type, key, location, numel) are allowed in a zip checkpoint, but got {Pickle.TorchUnpickler.Describe(pid)}");
            if (t.Length != 5) throw new TorchLoadException(TorchLoadErrorReason.InvalidPersistentId, $"A storage persistent id has {t.Length} parts, expected 5");
            var dtype = LoadSession.StorageDType(t[1]);
            var key = LoadSession.PidString(t[2], "key");
            var location = LoadSession.PidString(t[3], "location");
            var numel = LoadSession.PidCount(t[4]);
            if (!records.TryGet(dataFolder, key, out var record))
                throw new TorchLoadException(TorchLoadErrorReason.MissingRecord, $"The pickle uses storage '{key}' but the archive has no record '{dataFolder}{key}'", $"{dataFolder}{key}");
            if (record.Storage is { } known) return known; // torch's loaded_storages: a key is loaded once
            var nbytes = LoadSession.NBytes(numel, dtype, key);
            if (record.Size != nbytes)
                throw new TorchLoadException(TorchLoadErrorReason.StorageSizeMismatch,
                    $"Record size ({record.Size} bytes) does not match the size the pickle declares for storage '{key}' ({nbytes} bytes = {numel} elements * {dtype.ElementSize} bytes/element for {dtype})", record.Name);
            var storage = new TorchStorage(key, dtype, numel, location) { FileOffset = record.IsStored ? record.DataOffset : -1, Source = record }; // named by its record
            record.Storage = storage;
            session.AddUniqueStorage(storage);
            return storage;
        }

        session.ExpectStorages(records.Count);
        var host = session.NewUnpickler(PersistentLoad);
        host.KeepTensors = byteOrder == "big";
        object? root;
        int consumed, protocol;
        long pickleLength;
        using (var pickle = ReadWhole(session, pkl, session.Limits.MaxPickleBytes, nameof(LoadLimits.MaxPickleBytes)))
        {
            pickleLength = pickle.Length;
            root = session.RunPickle(host, pickle.Span, pkl.Name, out consumed, out protocol);
        }

        var checkpoint = new TorchCheckpoint(file.Path, "zip", root, session.StorageOrder)
        {
            Version = version, ByteOrder = byteOrder, ArchivePrefix = prefix, PickleProtocol = protocol,
            Globals = host.GlobalsSeen, Records = records.Names, ZipRecords = records,
        };
        if (consumed != pickleLength) checkpoint.Warnings.Add($"{pkl.Name} has {pickleLength - consumed} bytes after its STOP opcode");
        if (records.Any(r => r.Crc32 == 0 && r.Size > 0)) checkpoint.Warnings.Add("Some records have a CRC-32 of zero (saved with CRC computation disabled); torch does not check CRCs either.");

        if (session.Options.MetadataOnly) return checkpoint;
        var storages = session.StorageOrder; // every storage here came from a zip record (PersistentLoad)
        if (session.Options.Mmap)
        {
            foreach (var s in storages)
            {
                var r = (ZipRecord)s.Source!;
                if (!r.IsStored)
                    throw new TorchLoadException(TorchLoadErrorReason.UnsupportedCompression,
                        $"Record '{r.Name}' is deflated; -Mmap can only map stored records. Load without -Mmap to inflate it.", r.Name);
            }
        }
        // A big-endian file's bytes must be swapped, so they are read even with -Mmap (torch swaps its private mapped pages).
        if (session.Options.Mmap && byteOrder == "little")
        {
            session.MapStorages(storages);
        }
        else
        {
            // in file order, so small reads go through the file's window front to back (torch writes records
            // sorted by key as text, "0", "1", "10", ..., not in the pickle's order)
            var inFileOrder = new List<TorchStorage>(storages.Count);
            foreach (var r in records.ByOffset)
                if (r.Storage is { } s) inFileOrder.Add(s);
            session.ReadStorages(inFileOrder, (s, report) => ReadStorage(session, (ZipRecord)s.Source!, report));
        }
        if (byteOrder == "big") session.SwapByteOrder(host.Tensors);
        LoadSession.ValidateSparse(host.SparseTensors);
        session.Place(host.DeviceTensors);
        return checkpoint;
    }

    private static long ReadVersion(LoadSession session, ZipRecord? record, string prefix)
    {
        if (record is null)
            throw new TorchLoadException(TorchLoadErrorReason.MissingRecord, $"The archive has neither '{prefix}/version' nor '{prefix}/.data/version'", prefix + "/version");
        Span<byte> bytes = stackalloc byte[64];
        bytes = bytes[..ReadSmall(session, record, bytes)];
        var length = 0;
        while (length < bytes.Length && char.IsAsciiDigit((char)bytes[length])) length++;
        if (length == 0 || !long.TryParse(bytes[..length], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var version))
            throw new TorchLoadException(TorchLoadErrorReason.UnsupportedVersion, $"Couldn't parse the archive version '{Encoding.ASCII.GetString(bytes).Trim()}' as an integer", record.Name);
        if (version < 1)
            throw new TorchLoadException(TorchLoadErrorReason.UnsupportedVersion, $"Archive version {version} is too old: the minimum supported version is 1", record.Name);
        if (version > MaxSupportedVersion)
            throw new TorchLoadException(TorchLoadErrorReason.UnsupportedVersion, $"Archive version {version} is newer than the maximum supported version {MaxSupportedVersion}", record.Name);
        return version;
    }

    /// <summary>A whole small record (version, byteorder) into <paramref name="into"/>, whose length is the most it may have; returns its length.</summary>
    private static int ReadSmall(LoadSession session, ZipRecord record, Span<byte> into)
    {
        if (record.Size > into.Length) throw new TorchLoadException(TorchLoadErrorReason.InvalidArchive, $"Record '{record.Name}' is {record.Size} bytes; at most {into.Length} are expected", record.Name);
        using var bytes = ReadWhole(session, record, into.Length, "record size");
        bytes.Span.CopyTo(into);
        return bytes.Length;
    }

    /// <summary>
    /// A whole record (the pickle, a small record): stored records read directly (pooled, see RecordBytes), deflated
    /// ones inflated with a bound into native memory.
    /// </summary>
    private static RecordBytes ReadWhole(LoadSession session, ZipRecord record, long max, string limitName)
    {
        if (record.Size > max || record.Size > Array.MaxLength)
            throw new TorchLoadException(TorchLoadErrorReason.LimitExceeded, $"Record '{record.Name}' is {record.Size} bytes, over the limit of {max}", record.Name) { LimitName = limitName };
        return record.IsStored
            ? RecordBytes.Read(session.File, record.DataOffset, record.Size, record.Name, session.Cancel)
            : RecordBytes.Of(InflateToHost(session, record));
    }

    private static StorageBuffer ReadStorage(LoadSession session, ZipRecord record, Action<long> report)
    {
        if (record.IsStored)
        {
            try { return session.File.ReadToHost(record.DataOffset, record.Size, null, session.Cancel, report, session.SmallStorages); }
            catch (TorchLoadException e) { record.NameIn(e); throw; } // named only when it failed
        }
        var buffer = InflateToHost(session, record);
        report(record.Size);
        return buffer;
    }

    /// <summary>A deflated record into a new native buffer, after the ratio check (before allocating what it declares). Memory pressure is the caller's to report.</summary>
    private static unsafe HostBuffer InflateToHost(LoadSession session, ZipRecord record)
    {
        CheckInflateRatio(session, record);
        var buffer = new HostBuffer(record.Size, deferPressure: true);
        try
        {
            Inflate(session, record, buffer.Pointer);
            return buffer;
        }
        catch
        {
            buffer.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Zip bombs: the deflated records a load inflates may not declare, together, more than
    /// MaxInflateRatio times the file size (together: a thousand records each just under the ratio are a bomb too).
    /// </summary>
    private static void CheckInflateRatio(LoadSession session, ZipRecord record)
    {
        var limit = RecordInflater.Limit(session.Limits, session.File.Length);
        var total = session.CountInflated(record.Size);
        if (record.Size > limit || total > limit)
            throw new TorchLoadException(TorchLoadErrorReason.LimitExceeded,
                $"Deflated record '{record.Name}' would inflate to {record.Size} bytes ({total} with the records inflated before it), more than {session.Limits.MaxInflateRatio} times the file size (a zip bomb?); if you trust this file, raise the limit with -MaxInflateRatio", record.Name)
            { LimitName = nameof(LoadLimits.MaxInflateRatio) };
    }

    /// <summary>Inflates exactly record.Size bytes into <paramref name="destination"/>; more or fewer than declared is an error.</summary>
    private static unsafe void Inflate(LoadSession session, ZipRecord record, byte* destination)
    {
        var at = (nint)destination;
        RecordInflater.Inflate(session.File, record, session.Cancel, (bytes, offset) => bytes.CopyTo(new Span<byte>((byte*)at + offset, bytes.Length)));
    }
}

using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using TorchLoad.Core.Errors;

namespace TorchLoad.Core.Archive;

/// <summary>
/// A strict reader of a zip central directory (ZIP64 aware), written for hostile input: every
/// offset and count is checked against the file before it is used or allocated, names are
/// validated, duplicates refused, and local headers must agree with the directory.
/// </summary>
internal static class ZipDirectory
{
    private const uint EocdSig = 0x06054B50, Zip64EocdSig = 0x06064B50, Zip64LocatorSig = 0x07064B50;
    private const uint CentralSig = 0x02014B50, LocalSig = 0x04034B50;
    private const int EocdSize = 22, CentralSize = 46, LocalSize = 30;
    private static readonly UTF8Encoding StrictUtf8 = new(false, true);

    // Hot loop: JIT-compiled fully optimized on first use rather than run from the precompiled image (measured:
    // ~3 ms faster on a 20,000-tensor load, for ~20 ms of JIT once per process; audits load many files).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static ZipRecords Read(FileSource file)
    {
        var (cdOffset, cdSize, count) = FindCentralDirectory(file);
        if (count > cdSize / CentralSize)
            throw Invalid($"the directory claims {count} records but has room for {cdSize / CentralSize}", cdOffset);
        if (cdSize > int.MaxValue) throw Invalid("the central directory is larger than 2 GiB", cdOffset);
        // pooled, or native past 64 KiB (a 20,000-record directory): never a fresh array on the large-object heap
        using var directory = RecordBytes.Read(file, cdOffset, cdSize, "zip central directory", default);
        var cd = directory.Span;
        var records = new List<ZipRecord>((int)count);
        var byName = new NamedRecords();
        DataRecords? data = null;
        Span<byte> dataFolder = stackalloc byte[MaxDataFolderBytes];
        var dataFolderLength = 0;
        var pos = 0;
        for (long i = 0; i < count; i++)
        {
            if (pos > cd.Length - CentralSize || BinaryPrimitives.ReadUInt32LittleEndian(cd[pos..]) != CentralSig)
                throw Invalid($"central directory entry {i} is damaged", cdOffset + pos);
            var e = cd[pos..];
            var flags = BinaryPrimitives.ReadUInt16LittleEndian(e[8..]);
            var method = BinaryPrimitives.ReadUInt16LittleEndian(e[10..]);
            var crc = BinaryPrimitives.ReadUInt32LittleEndian(e[16..]);
            long csize = BinaryPrimitives.ReadUInt32LittleEndian(e[20..]);
            long usize = BinaryPrimitives.ReadUInt32LittleEndian(e[24..]);
            int nameLen = BinaryPrimitives.ReadUInt16LittleEndian(e[28..]);
            int extraLen = BinaryPrimitives.ReadUInt16LittleEndian(e[30..]);
            int commentLen = BinaryPrimitives.ReadUInt16LittleEndian(e[32..]);
            long localOffset = BinaryPrimitives.ReadUInt32LittleEndian(e[42..]);
            if (CentralSize + nameLen + extraLen + commentLen > cd.Length - pos)
                throw Invalid($"central directory entry {i} runs past the directory", cdOffset + pos);
            var nameBytes = e.Slice(CentralSize, nameLen);
            var key = data is null ? -1 : DataKey(nameBytes, dataFolder[..dataFolderLength], data.Capacity);
            var name = key >= 0 ? null : DecodeName(nameBytes, flags, cdOffset + pos);
            var extra = e.Slice(CentralSize + nameLen, extraLen);
            ApplyZip64Extra(extra, ref usize, ref csize, ref localOffset, cdOffset + pos);
            pos += CentralSize + nameLen + extraLen + commentLen;

            ZipRecord record;
            if (name is null)
            {
                // <folder>/data/<key>, a storage: not decoded or validated (its folder is the first record's, validated;
                // the rest is ASCII digits), found by its key, named when someone asks (see ZipRecord.Name)
                record = new ZipRecord(data!.Folder, key, method, flags, crc, csize, usize, localOffset);
                if (!data.TryAdd(key, record)) throw Duplicate(record.Name);
            }
            else
            {
                ValidateName(name);
                record = new ZipRecord(name, method, flags, crc, csize, usize, localOffset);
                if (i == 0 && DataFolderOf(nameBytes, dataFolder) is var length and > 0)
                {
                    dataFolderLength = length;
                    data = new DataRecords(Encoding.ASCII.GetString(dataFolder[..length]), (int)count);
                    key = DataKey(nameBytes, dataFolder[..length], data.Capacity); // the first record may be a storage itself
                }
                if (key >= 0) data!.TryAdd(key, record);
                else if (!byName.TryAdd(record)) throw Duplicate(name);
            }
            if ((flags & 1) != 0)
                throw new TorchLoadException(TorchLoadErrorReason.UnsupportedCompression, $"Record '{record.Name}' is encrypted; TorchLoad does not read encrypted archives", record.Name);
            if (method is not (0 or 8))
                throw new TorchLoadException(TorchLoadErrorReason.UnsupportedCompression, $"Record '{record.Name}' uses compression method {method}; only stored (0) and deflate (8) are read", record.Name);
            if (method == 0 && csize != usize)
                throw Invalid($"stored record '{record.Name}' has compressed size {csize} but size {usize}", cdOffset + pos);
            if (localOffset < 0 || localOffset > file.Length - LocalSize)
                throw Invalid($"record '{record.Name}' has its local header at {localOffset}, outside the file", cdOffset + pos);
            record.DataOffset = ReadLocalHeader(file, record, nameBytes);
            records.Add(record);
        }
        return new ZipRecords(records, byName, data, RefuseOverlaps(records));
    }

    private static TorchLoadException Duplicate(string name) =>
        new(TorchLoadErrorReason.DuplicateRecord, $"The archive holds two records named '{name}'; it is ambiguous which one a reader would use", name);

    // "<folder>/data/" of a torch.save archive: the first record's top folder, when its name is ASCII (then it reads the
    // same in UTF-8 and in the code page of unflagged names) and short
    private const int MaxDataFolderBytes = 256;
    private static ReadOnlySpan<byte> DataFolder => "data/"u8;

    /// <summary>The length of "&lt;folder&gt;/data/" written into <paramref name="into"/>, or 0 when the first record has no plain ASCII top folder.</summary>
    private static int DataFolderOf(ReadOnlySpan<byte> firstName, Span<byte> into)
    {
        var slash = firstName.IndexOf((byte)'/');
        if (slash <= 0 || slash + 1 + DataFolder.Length > into.Length || firstName[..slash].IndexOfAnyExceptInRange((byte)0x20, (byte)0x7E) >= 0) return 0;
        firstName[..(slash + 1)].CopyTo(into);
        DataFolder.CopyTo(into[(slash + 1)..]);
        return slash + 1 + DataFolder.Length;
    }

    /// <summary>The key of <c>&lt;folder&gt;/data/&lt;key&gt;</c> as <see cref="DataRecords"/> keeps them, or -1: the record is named and found by its name.</summary>
    private static int DataKey(ReadOnlySpan<byte> name, ReadOnlySpan<byte> dataFolder, int capacity) =>
        name.StartsWith(dataFolder) ? DataRecords.KeyOf(name[dataFolder.Length..], capacity) : -1;

    /// <summary>
    /// No record may start inside another's header or data. Overlapping records are the "overlapping zip
    /// bomb": a thousand records all ending on the same bytes make an eager load read, and allocate, the
    /// file a thousand times. torch writes records one after the other. Returns the records in file order.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // once per file: see EngineWarmup
    private static List<ZipRecord> RefuseOverlaps(List<ZipRecord> records)
    {
        var ordered = records;
        for (var i = 1; i < records.Count; i++)
        {
            if (records[i - 1].LocalHeaderOffset > records[i].LocalHeaderOffset)
            {
                var starts = records.ConvertAll(r => r.LocalHeaderOffset).ToArray();
                var sorted = records.ToArray();
                Array.Sort(starts, sorted);
                ordered = [.. sorted];
                break;
            }
        }
        for (var i = 1; i < ordered.Count; i++)
        {
            var (a, b) = (ordered[i - 1], ordered[i]);
            if (b.LocalHeaderOffset < a.DataOffset + a.CompressedSize)
                throw new TorchLoadException(TorchLoadErrorReason.InvalidArchive,
                    $"Invalid zip archive: record '{b.Name}' starts inside record '{a.Name}' (overlapping records repeat the same bytes; torch never writes them)", b.Name, b.LocalHeaderOffset);
        }
        return ordered;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // once per file: see EngineWarmup
    private static (long Offset, long Size, long Count) FindCentralDirectory(FileSource file)
    {
        if (file.Length < EocdSize) throw Invalid("the file is too short to be a zip archive", 0);
        var tailLength = (int)Math.Min(file.Length, EocdSize + 0xFFFF + 20);
        // torch writes no archive comment, so the record ends the file: the last KiB holds it and the ZIP64 locator
        // before it. The search runs backwards either way, so the short tail finds what the whole one would.
        Span<byte> tail = stackalloc byte[Math.Min(tailLength, 1024)];
        file.ReadExactly(file.Length - tail.Length, tail, "zip end of central directory");
        var at = LastEocd(tail);
        if (at >= 20 || tail.Length == tailLength) return ReadEnd(file, tail, at);
        var rented = ArrayPool<byte>.Shared.Rent(tailLength);
        try
        {
            var whole = rented.AsSpan(0, tailLength);
            file.ReadExactly(file.Length - tailLength, whole, "zip end of central directory");
            return ReadEnd(file, whole, LastEocd(whole));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary>The central directory's place and entry count from the end record at <paramref name="at"/> in the file's last bytes (and the ZIP64 record it points to).</summary>
    private static (long Offset, long Size, long Count) ReadEnd(FileSource file, ReadOnlySpan<byte> tail, int at)
    {
        var tailStart = file.Length - tail.Length;
        if (at < 0) throw Invalid("no end-of-central-directory record: the archive is truncated or not a zip file", file.Length);
        var eocd = tail[at..];
        long count = BinaryPrimitives.ReadUInt16LittleEndian(eocd[10..]);
        long size = BinaryPrimitives.ReadUInt32LittleEndian(eocd[12..]);
        long offset = BinaryPrimitives.ReadUInt32LittleEndian(eocd[16..]);
        var eocdPos = tailStart + at;

        // ZIP64: torch always writes the locator and record (spec 3.2); use them when present.
        if (at >= 20 && BinaryPrimitives.ReadUInt32LittleEndian(tail[(at - 20)..]) == Zip64LocatorSig)
        {
            var recordOffset = BinaryPrimitives.ReadInt64LittleEndian(tail[(at - 20 + 8)..]);
            if (recordOffset < 0 || recordOffset > eocdPos - 20 - 56) throw Invalid("the ZIP64 locator points outside the file", eocdPos - 20);
            Span<byte> z = stackalloc byte[56];
            file.ReadExactly(recordOffset, z, "zip64 end of central directory");
            if (BinaryPrimitives.ReadUInt32LittleEndian(z) != Zip64EocdSig) throw Invalid("the ZIP64 end-of-central-directory record is missing", recordOffset);
            count = BinaryPrimitives.ReadInt64LittleEndian(z[32..]);
            size = BinaryPrimitives.ReadInt64LittleEndian(z[40..]);
            offset = BinaryPrimitives.ReadInt64LittleEndian(z[48..]);
            eocdPos = recordOffset;
        }
        else if (count == 0xFFFF || size == 0xFFFFFFFF || offset == 0xFFFFFFFF)
            throw Invalid("the archive needs ZIP64 values but has no ZIP64 locator", eocdPos);

        if (count < 0 || size < 0 || offset < 0 || offset > eocdPos || size > eocdPos - offset)
            throw Invalid($"the central directory ({size} bytes at {offset}) lies outside the file", eocdPos);
        return (offset, size, count);
    }

    /// <summary>Where the last end-of-central-directory signature starts in <paramref name="tail"/>, or -1.</summary>
    private static int LastEocd(ReadOnlySpan<byte> tail)
    {
        for (var i = tail.Length - EocdSize; i >= 0; i--)
            if (BinaryPrimitives.ReadUInt32LittleEndian(tail[i..]) == EocdSig) return i;
        return -1;
    }

    private static void ApplyZip64Extra(ReadOnlySpan<byte> extra, ref long usize, ref long csize, ref long localOffset, long at)
    {
        while (extra.Length >= 4)
        {
            var id = BinaryPrimitives.ReadUInt16LittleEndian(extra);
            int len = BinaryPrimitives.ReadUInt16LittleEndian(extra[2..]);
            if (len > extra.Length - 4) throw Invalid("a central directory extra field runs past its entry", at);
            if (id == 1)
            {
                var z = extra.Slice(4, len);
                long Next(ref ReadOnlySpan<byte> s)
                {
                    if (s.Length < 8) throw Invalid("a ZIP64 extra field is too short", at);
                    var v = BinaryPrimitives.ReadInt64LittleEndian(s);
                    s = s[8..];
                    return v < 0 ? throw Invalid("a ZIP64 size or offset is negative", at) : v;
                }
                if (usize == 0xFFFFFFFF) usize = Next(ref z);
                if (csize == 0xFFFFFFFF) csize = Next(ref z);
                if (localOffset == 0xFFFFFFFF) localOffset = Next(ref z);
            }
            extra = extra[(4 + len)..];
        }
    }

    /// <summary>The local header must be where the directory says, with the same method and the same name bytes; returns where the data starts.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // once per file: see EngineWarmup
    private static long ReadLocalHeader(FileSource file, ZipRecord r, ReadOnlySpan<byte> centralName)
    {
        // Header and name in one (cached) read: checkpoints with 20,000 records must not cost 40,000 system calls.
        Span<byte> buffer = centralName.Length <= 1024 ? stackalloc byte[LocalSize + centralName.Length] : new byte[LocalSize + centralName.Length];
        var available = (int)Math.Min(buffer.Length, file.Length - r.LocalHeaderOffset);
        try { file.ReadExactly(r.LocalHeaderOffset, buffer[..available]); }
        catch (TorchLoadException e) { r.NameIn(e); throw; } // named only when it failed
        var h = buffer[..LocalSize];
        if (BinaryPrimitives.ReadUInt32LittleEndian(h) != LocalSig)
            throw Invalid($"record '{r.Name}' has no local header where the directory says", r.LocalHeaderOffset);
        int nameLen = BinaryPrimitives.ReadUInt16LittleEndian(h[26..]);
        int extraLen = BinaryPrimitives.ReadUInt16LittleEndian(h[28..]);
        var localMethod = BinaryPrimitives.ReadUInt16LittleEndian(h[8..]);
        if (localMethod != r.Method)
            throw Invalid($"record '{r.Name}': the local header says compression {localMethod}, the directory {r.Method}", r.LocalHeaderOffset);
        if (nameLen != centralName.Length || available < buffer.Length || !buffer.Slice(LocalSize, nameLen).SequenceEqual(centralName))
            throw Invalid($"record '{r.Name}': the local header names it differently", r.LocalHeaderOffset);
        var dataOffset = r.LocalHeaderOffset + LocalSize + nameLen + extraLen;
        if (dataOffset > file.Length || r.CompressedSize > file.Length - dataOffset)
            throw new TorchLoadException(TorchLoadErrorReason.TruncatedCheckpoint,
                $"Record '{r.Name}' needs {r.CompressedSize} bytes at {dataOffset} but the file has {file.Length}", r.Name, dataOffset);
        return dataOffset;
    }

    private static string DecodeName(ReadOnlySpan<byte> bytes, ushort flags, long at)
    {
        try
        {
            return (flags & 0x800) != 0 || bytes.IndexOfAnyExceptInRange((byte)0, (byte)0x7F) < 0
                ? StrictUtf8.GetString(bytes)
                : Encoding.Latin1.GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            throw new TorchLoadException(TorchLoadErrorReason.InvalidRecordName, "A record name is not valid UTF-8", null, at);
        }
    }

    /// <summary>Names must stay inside the archive: no absolute paths, '..', backslashes or control characters.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // once per file: see EngineWarmup
    private static void ValidateName(string name)
    {
        string? bad = null;
        if (name.Length == 0) bad = "it is empty";
        else if (name[0] == '/') bad = "it is absolute";
        else if (name.Length > 1 && name[1] == ':') bad = "it has a drive letter";
        else
        {
            var segmentStart = 0;
            for (var i = 0; i <= name.Length && bad is null; i++)
            {
                if (i == name.Length || name[i] == '/')
                {
                    if (i - segmentStart == 2 && name[segmentStart] == '.' && name[segmentStart + 1] == '.') bad = "it contains '..'";
                    segmentStart = i + 1;
                }
                else if (name[i] == '\\') bad = "it contains a backslash";
                else if (char.IsControl(name[i])) bad = "it contains control characters";
            }
        }
        if (bad is not null)
            throw new TorchLoadException(TorchLoadErrorReason.InvalidRecordName, $"Record name '{name.Replace("\0", "\\0")}' is not allowed: {bad}", name);
    }

    private static TorchLoadException Invalid(string message, long at) =>
        new(TorchLoadErrorReason.InvalidArchive, $"Invalid zip archive: {message}", null, at);
}

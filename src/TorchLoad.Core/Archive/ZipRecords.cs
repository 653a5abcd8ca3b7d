using System.Globalization;
using TorchLoad.Core.Errors;

namespace TorchLoad.Core.Archive;

/// <summary>One record of a zip archive, as its central directory and local header describe it.</summary>
internal sealed class ZipRecord
{
    private string? _name;
    private readonly string? _dataFolder;
    private readonly int _dataKey;

    public ZipRecord(string name, ushort method, ushort flags, uint crc32, long compressedSize, long size, long localHeaderOffset)
        : this(method, flags, crc32, compressedSize, size, localHeaderOffset) => _name = name;

    /// <summary>A storage record, <c>&lt;folder&gt;/data/&lt;key&gt;</c>: its name is made the first time it is asked for.</summary>
    public ZipRecord(string dataFolder, int key, ushort method, ushort flags, uint crc32, long compressedSize, long size, long localHeaderOffset)
        : this(method, flags, crc32, compressedSize, size, localHeaderOffset) => (_dataFolder, _dataKey) = (dataFolder, key);

    private ZipRecord(ushort method, ushort flags, uint crc32, long compressedSize, long size, long localHeaderOffset) =>
        (Method, Flags, Crc32, CompressedSize, Size, LocalHeaderOffset) = (method, flags, crc32, compressedSize, size, localHeaderOffset);

    // A 20,000-tensor checkpoint has 20,000 storage records; a load names none of them (it finds them by key), so their
    // names are not decoded, validated, hashed and kept: 3.8 ms and 1.5 MB of a 55 ms load (measured). Built at most once here
    // (two threads racing build equal strings).
    public string Name => _name ??= string.Concat(_dataFolder, _dataKey.ToString(CultureInfo.InvariantCulture));

    /// <summary>True when the name starts with <paramref name="folder"/>, without building it for a storage record.</summary>
    public bool IsIn(string folder) => _dataFolder is not null && folder.Length <= _dataFolder.Length
        ? _dataFolder.StartsWith(folder, StringComparison.Ordinal) // the name is the data folder and digits
        : Name.StartsWith(folder, StringComparison.Ordinal);

    public ushort Method { get; }
    public ushort Flags { get; }
    public uint Crc32 { get; }
    public long CompressedSize { get; }
    public long Size { get; }
    public long LocalHeaderOffset { get; }

    /// <summary>Offset of the record's bytes in the file (from the local header, never assumed).</summary>
    public long DataOffset { get; set; } = -1;

    public bool IsStored => Method == 0;

    /// <summary>The storage a load made of this record (one per record, however often the pickle names it).</summary>
    public Tensors.TorchStorage? Storage { get; set; }

    /// <summary>
    /// Names this record in a truncation error that a read made without its name raised (reads of storage records are
    /// not given the name, so that it is not made), as a read given the name would have.
    /// </summary>
    public void NameIn(TorchLoadException e)
    {
        if (e is { Reason: TorchLoadErrorReason.TruncatedCheckpoint, RecordName: null }) e.WithPlace(Name, -1);
    }

    public override string ToString() => Name;
}

/// <summary>
/// The storage records <c>&lt;folder&gt;/data/&lt;key&gt;</c> of an archive by key, for keys as torch writes them: decimal
/// without leading zeros, below the number of records (torch numbers storages 0, 1, 2, ...). Every other name is in
/// the name dictionary, so no name can be in both.
/// </summary>
internal sealed class DataRecords(string folder, int capacity)
{
    private readonly ZipRecord?[] _byKey = new ZipRecord?[capacity];

    /// <summary><c>&lt;folder&gt;/data/</c>.</summary>
    public string Folder => folder;
    public int Capacity => capacity;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public bool TryAdd(int key, ZipRecord record)
    {
        if (_byKey[key] is not null) return false;
        _byKey[key] = record;
        return true;
    }

    public ZipRecord? Get(int key) => _byKey[key];

    /// <summary>The key <paramref name="digits"/> spell as torch writes keys (decimal, no leading zero) when it is below <paramref name="capacity"/>, else -1.</summary>
    public static int KeyOf<T>(ReadOnlySpan<T> digits, int capacity) where T : unmanaged, System.Numerics.IBinaryInteger<T>
    {
        if (digits.IsEmpty || digits.Length > 10 || digits.Length > 1 && int.CreateTruncating(digits[0]) == '0') return -1;
        long key = 0;
        foreach (var d in digits)
        {
            var digit = int.CreateTruncating(d) - '0';
            if ((uint)digit > 9) return -1;
            key = key * 10 + digit;
        }
        return key < capacity ? (int)key : -1;
    }
}

/// <summary>
/// The records found by their whole name (all but the storage records of <see cref="DataRecords"/>), unique. A torch.save
/// archive has four or five (data.pkl, version, byteorder, .data/serialization_id): they are found by a scan, without a
/// dictionary (its arrays were a twentieth of what auditing a 5 KB checkpoint allocated); past eight, by a dictionary.
/// </summary>
internal sealed class NamedRecords
{
    private const int Scanned = 8;
    private readonly List<ZipRecord> _scanned = new(Scanned);
    private Dictionary<string, ZipRecord>? _byName;
#if NET9_0_OR_GREATER
    private Dictionary<string, ZipRecord>.AlternateLookup<ReadOnlySpan<char>> _spans;
#endif

    /// <summary>False when a record of that name is already here.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public bool TryAdd(ZipRecord record)
    {
        var name = record.Name;
        if (_byName is null)
        {
            foreach (var r in _scanned)
                if (string.Equals(r.Name, name, StringComparison.Ordinal)) return false;
            _scanned.Add(record);
            if (_scanned.Count <= Scanned) return true;
            _byName = new Dictionary<string, ZipRecord>(StringComparer.Ordinal);
            foreach (var r in _scanned) _byName[r.Name] = r;
#if NET9_0_OR_GREATER
            _spans = _byName.GetAlternateLookup<ReadOnlySpan<char>>();
#endif
            return true;
        }
        ref var slot = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(_byName, name, out var duplicate); // one hash for the check and the entry
        if (duplicate) return false;
        slot = record;
        return true;
    }

    /// <summary>The record named <paramref name="folder"/> + <paramref name="name"/>, without building that string where it can.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public bool TryGet(string folder, string name, [System.Diagnostics.CodeAnalysis.MaybeNullWhen(false)] out ZipRecord record)
    {
        if (_byName is null)
        {
            foreach (var r in _scanned)
            {
                var n = r.Name;
                if (n.Length == folder.Length + name.Length && n.StartsWith(folder, StringComparison.Ordinal) && n.AsSpan(folder.Length).SequenceEqual(name))
                {
                    record = r;
                    return true;
                }
            }
            record = null;
            return false;
        }
#if NET9_0_OR_GREATER
        var length = folder.Length + name.Length;
        if (length <= 512)
        {
            Span<char> full = stackalloc char[length];
            folder.CopyTo(full);
            name.CopyTo(full[folder.Length..]);
            return _spans.TryGetValue(full, out record);
        }
#endif
        return _byName.TryGetValue(folder + name, out record);
    }
}

/// <summary>The records of an archive in directory order, and by name (unique: the reader refuses duplicates).</summary>
internal sealed class ZipRecords(List<ZipRecord> records, NamedRecords byName, DataRecords? data, IReadOnlyList<ZipRecord> byOffset) : IReadOnlyList<ZipRecord>
{
    public ZipRecord this[int index] => records[index];
    public int Count => records.Count;

    /// <summary>The records in file order (the directory's own order when it is already, as torch writes it).</summary>
    public IReadOnlyList<ZipRecord> ByOffset => byOffset;

    /// <summary>The names in directory order, made as they are read (a load keeps the list, rarely reads it).</summary>
    public IReadOnlyList<string> Names { get; } = new NameList(records);

    /// <summary>The record named <paramref name="folder"/> + <paramref name="name"/>, without building that string where it can (once per storage).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public bool TryGet(string folder, string name, [System.Diagnostics.CodeAnalysis.MaybeNullWhen(false)] out ZipRecord record)
    {
        if (data is not null && StorageKey(folder, name, data) is var key and >= 0)
        {
            record = data.Get(key);
            return record is not null;
        }
        return byName.TryGet(folder, name, out record);
    }

    /// <summary>The key when <paramref name="folder"/> + <paramref name="name"/> is a storage record's name as <see cref="DataRecords"/> keeps them, else -1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int StorageKey(string folder, string name, DataRecords data)
    {
        var dataFolder = data.Folder;
        // the name past the data folder: usually folder is the data folder itself; otherwise split anywhere
        ReadOnlySpan<char> digits;
        if (folder.Length <= dataFolder.Length)
        {
            if (!dataFolder.AsSpan().StartsWith(folder, StringComparison.Ordinal)) return -1;
            var rest = dataFolder.AsSpan(folder.Length);
            if (!name.AsSpan().StartsWith(rest, StringComparison.Ordinal)) return -1;
            digits = name.AsSpan(rest.Length);
        }
        else
        {
            if (!folder.AsSpan().StartsWith(dataFolder, StringComparison.Ordinal)) return -1;
            if (folder.Length - dataFolder.Length + name.Length > 10) return -1;
            Span<char> joined = stackalloc char[folder.Length - dataFolder.Length + name.Length];
            folder.AsSpan(dataFolder.Length).CopyTo(joined);
            name.AsSpan().CopyTo(joined[(folder.Length - dataFolder.Length)..]);
            return DataRecords.KeyOf<char>(joined, data.Capacity);
        }
        return DataRecords.KeyOf(digits, data.Capacity);
    }

    public List<ZipRecord>.Enumerator GetEnumerator() => records.GetEnumerator();
    IEnumerator<ZipRecord> IEnumerable<ZipRecord>.GetEnumerator() => records.GetEnumerator();
    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => records.GetEnumerator();

    private sealed class NameList(List<ZipRecord> records) : IReadOnlyList<string>
    {
        public string this[int index] => records[index].Name;
        public int Count => records.Count;
        public IEnumerator<string> GetEnumerator()
        {
            foreach (var r in records) yield return r.Name;
        }
        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }
}

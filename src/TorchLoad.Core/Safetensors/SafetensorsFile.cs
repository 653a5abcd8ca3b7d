using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using TorchLoad.Core.Errors;
using TorchLoad.Core.Tensors;

namespace TorchLoad.Core.Safetensors;

/// <summary>One tensor of a .safetensors file as read back.</summary>
public sealed record SafetensorsTensor(string Name, string DType, long[] Shape, byte[] Data);

/// <summary>
/// The safetensors format (huggingface/safetensors): an 8-byte little-endian header length, a
/// JSON header (<c>name: {dtype, shape, data_offsets}</c> plus optional string-to-string
/// <c>__metadata__</c>, padded with spaces to 8 bytes), then the tensors' bytes, contiguous,
/// without gaps or overlaps. Shared tensors are de-duplicated the way safetensors' save_model does.
/// </summary>
public static class SafetensorsFile
{
    private static readonly Dictionary<string, string> Codes = new(StringComparer.Ordinal)
    {
        ["bool"] = "BOOL", ["uint8"] = "U8", ["int8"] = "I8", ["int16"] = "I16", ["uint16"] = "U16", ["float16"] = "F16",
        ["bfloat16"] = "BF16", ["int32"] = "I32", ["uint32"] = "U32", ["float32"] = "F32", ["float64"] = "F64",
        ["int64"] = "I64", ["uint64"] = "U64", ["float8_e5m2"] = "F8_E5M2", ["float8_e4m3fn"] = "F8_E4M3",
        ["float8_e8m0fnu"] = "F8_E8M0", ["complex64"] = "C64",
    };

    /// <summary>The safetensors dtype code of a torch dtype, or null when the format cannot hold it.</summary>
    public static string? Code(TorchDType dtype) => Codes.GetValueOrDefault(dtype.Name);

    public sealed record ExportResult(IReadOnlyList<string> Written, IReadOnlyList<string> DroppedShared, long Bytes);

    /// <summary>
    /// Writes <paramref name="tensors"/> (name, tensor) to <paramref name="path"/>; refuses to replace a file unless
    /// <paramref name="overwrite"/>. The file appears whole or not at all: see <see cref="WriteReplacing"/>.
    /// </summary>
    public static ExportResult Write(string path, IEnumerable<(string Name, TorchTensor Tensor)> tensors, IReadOnlyDictionary<string, string>? metadata, bool overwrite, CancellationToken cancel = default) =>
        Write(path, tensors, metadata, overwrite, cancel, wrapOutput: null);

    /// <param name="wrapOutput">Tests: wraps the temporary file's stream (fault injection).</param>
    internal static ExportResult Write(string path, IEnumerable<(string Name, TorchTensor Tensor)> tensors, IReadOnlyDictionary<string, string>? metadata, bool overwrite,
        CancellationToken cancel, Func<Stream, Stream>? wrapOutput)
    {
        var list = tensors.ToList();
        var bad = list.Where(t => t.Tensor.Layout != TorchLayout.Strided || t.Tensor.IsNested || t.Tensor.Storage is null || Code(t.Tensor.DType) is null)
            .Select(t => $"{t.Name} ({t.Tensor.DType}{(t.Tensor.Layout != TorchLayout.Strided ? ", " + t.Tensor.Layout : "")}{(t.Tensor.Storage is null ? ", no data" : "")})").ToList();
        if (bad.Count > 0)
            throw new TorchLoadException(TorchLoadErrorReason.InvalidArgument, $"safetensors cannot hold these tensors: {string.Join(", ", bad.Take(10))}{(bad.Count > 10 ? ", ..." : "")}");
        var dupNames = list.GroupBy(t => t.Name).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        if (dupNames.Count > 0) throw new TorchLoadException(TorchLoadErrorReason.InvalidArgument, $"Two tensors are named {dupNames[0]}");

        var (keep, dropped) = RemoveSharedDuplicates(list);
        // safetensors' order: larger dtype alignment first, then name
        keep.Sort((a, b) =>
        {
            var c = b.Tensor.DType.ElementSize.CompareTo(a.Tensor.DType.ElementSize);
            return c != 0 ? c : string.CompareOrdinal(a.Name, b.Name);
        });

        using var ms = new MemoryStream();
        using (var json = new Utf8JsonWriter(ms))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject("__metadata__");
                foreach (var kv in metadata.OrderBy(k => k.Key, StringComparer.Ordinal)) json.WriteString(kv.Key, kv.Value);
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (var (name, t) in keep)
            {
                var n = Bytes(t);
                json.WriteStartObject(name);
                json.WriteString("dtype", Code(t.DType));
                json.WriteStartArray("shape");
                foreach (var d in t.Shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + n);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += n;
            }
            json.WriteEndObject();
        }
        var header = ms.ToArray();
        var padded = (header.Length + 7) / 8 * 8;

        long total = 0;
        try
        {
            WriteReplacing(path, overwrite, cancel, wrapOutput, output =>
            {
                Span<byte> len = stackalloc byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)padded);
                output.Write(len);
                output.Write(header);
                for (var i = header.Length; i < padded; i++) output.WriteByte((byte)' ');
                total = 8 + padded;
                foreach (var (_, t) in keep)
                {
                    cancel.ThrowIfCancellationRequested();
                    var bytes = t.ToByteArray();
                    output.Write(bytes);
                    total += bytes.Length;
                }
            });
        }
        catch (OperationCanceledException e)
        {
            throw new TorchLoadException(TorchLoadErrorReason.Cancelled, $"The export to '{path}' was cancelled; nothing was written.", inner: e);
        }
        return new ExportResult(keep.Select(k => k.Name).ToList(), dropped, total);
    }

    /// <summary>
    /// Writes a file so that it never exists half-written and an existing one is never destroyed before the new
    /// one is complete: the bytes go to a temporary file in the destination's folder, are flushed to disk, and the
    /// temporary file is renamed over the destination (one atomic rename on the same file system). On any failure
    /// (disk full, an exception from a tensor's bytes, cancellation) the temporary file is deleted and the previous
    /// destination is untouched.
    /// </summary>
    internal static void WriteReplacing(string path, bool overwrite, CancellationToken cancel, Func<Stream, Stream>? wrapOutput, Action<Stream> write)
    {
        var full = Path.GetFullPath(path);
        if (!overwrite && File.Exists(full)) throw Exists(full, null);
        var temp = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                var output = wrapOutput?.Invoke(file) ?? file;
                write(output);
                cancel.ThrowIfCancellationRequested();
                output.Flush();
                file.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite);
        }
        catch (IOException e) when (!overwrite && File.Exists(full))
        {
            throw Exists(full, e);
        }
        finally
        {
            try { File.Delete(temp); } // gone already after the rename; File.Delete of a missing file is no error
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
    }

    private static TorchLoadException Exists(string path, Exception? inner) =>
        new(TorchLoadErrorReason.InvalidArgument, $"'{path}' exists; use -Force to replace it.", inner: inner);

    /// <summary>
    /// safetensors' _remove_duplicate_names: tensors sharing a storage keep one name, the first (by
    /// name) of those that cover their whole storage; none covering it is an error, as there.
    /// </summary>
    private static (List<(string Name, TorchTensor Tensor)> Keep, List<string> Dropped) RemoveSharedDuplicates(List<(string Name, TorchTensor Tensor)> list)
    {
        var keep = new List<(string, TorchTensor)>();
        var dropped = new List<string>();
        foreach (var group in list.GroupBy(t => t.Tensor.Storage!.ViewOf ?? t.Tensor.Storage!, ReferenceEqualityComparer.Instance))
        {
            var members = group.OrderBy(t => t.Name, StringComparer.Ordinal).ToList();
            if (members.Count == 1) { keep.Add(members[0]); continue; }
            var complete = members.Where(t => IsComplete(t.Tensor)).ToList();
            if (complete.Count == 0)
                throw new TorchLoadException(TorchLoadErrorReason.InvalidArgument,
                    $"Tensors {string.Join(", ", members.Select(m => m.Name))} share a storage but none covers it whole, so there is no name to keep (safetensors refuses this too); export them separately.");
            keep.Add(complete[0]);
            dropped.AddRange(members.Where(m => m.Name != complete[0].Name).Select(m => m.Name));
        }
        return (keep, dropped);
    }

    private static bool IsComplete(TorchTensor t) =>
        t.StorageOffset == 0 && t.Storage!.ViewOf is null && Bytes(t) == t.Storage.ByteLength;

    private static long Bytes(TorchTensor t) =>
        ShapeMath.TryBytes(t.ElementCount, t.DType.ElementSize, out var n) && n <= Array.MaxLength ? n
            : throw new TorchLoadException(TorchLoadErrorReason.LimitExceeded, $"Tensor of {t.ElementCount} elements is too large to export") { LimitName = "Array.MaxLength" };

    /// <summary>One entry of a safetensors header: where its bytes are (absolute file offsets).</summary>
    public sealed record Entry(string Name, string Code, TorchDType DType, long[] Shape, long FileOffset, long Length);

    /// <summary>True when the file starts like a safetensors file: a header length that fits, then '{'.</summary>
    internal static bool LooksLikeSafetensors(ReadOnlySpan<byte> head, long fileLength) =>
        head.Length >= 9 && head[8] == (byte)'{' && BinaryPrimitives.ReadUInt64LittleEndian(head) is var n && n >= 2 && n <= MaxHeader && (long)n <= fileLength - 8;

    private const int MaxHeader = 100_000_000; // the format's own limit

    /// <summary>
    /// The header, checked as the format requires: JSON object, known dtypes, shapes matching byte
    /// ranges, ranges inside the file, contiguous, no gaps or overlaps, metadata string to string.
    /// </summary>
    internal static (List<Entry> Entries, Dictionary<string, string> Metadata) ReadHeader(Archive.FileSource file)
    {
        if (file.Length < 8) throw Bad("the file is shorter than its 8-byte header length");
        Span<byte> len = stackalloc byte[8];
        file.ReadExactly(0, len, "safetensors header");
        var n = BinaryPrimitives.ReadUInt64LittleEndian(len);
        if (n < 2 || n > MaxHeader || (long)n > file.Length - 8) throw Bad($"header length {n} is out of range");
        var header = new byte[(int)n];
        file.ReadExactly(8, header, "safetensors header");
        if (header[0] != (byte)'{') throw Bad("the header does not start with '{'");
        var dataStart = 8 + (long)n;
        var dataLength = file.Length - dataStart;
        var entries = new List<Entry>();
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            using var doc = JsonDocument.Parse(header.AsMemory().TrimEnd((byte)' '), new JsonDocumentOptions { MaxDepth = 8 });
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw Bad("the header is not a JSON object");
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                if (p.Name == "__metadata__")
                {
                    foreach (var m in p.Value.EnumerateObject())
                        metadata[m.Name] = m.Value.ValueKind == JsonValueKind.String ? m.Value.GetString()! : throw Bad("metadata values must be strings");
                    continue;
                }
                var offsets = p.Value.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()).ToArray();
                if (offsets.Length != 2 || offsets[0] < 0 || offsets[1] < offsets[0] || offsets[1] > dataLength) throw Bad($"{p.Name}: data_offsets lie outside the data");
                var shape = p.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray();
                if (shape.Any(d => d < 0) || shape.Length > 64) throw Bad($"{p.Name}: bad shape");
                var code = p.Value.GetProperty("dtype").GetString() ?? "";
                var torchName = Codes.FirstOrDefault(c => c.Value == code).Key ?? throw Bad($"{p.Name}: unknown dtype {code}");
                var dtype = TorchDType.FromName(torchName);
                if (!ShapeMath.TryBytes(ShapeMath.CountSaturating(shape), dtype.ElementSize, out var bytes) || bytes != offsets[1] - offsets[0])
                    throw Bad($"{p.Name}: shape and data_offsets disagree");
                entries.Add(new Entry(p.Name, code, dtype, shape, dataStart + offsets[0], bytes));
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or KeyNotFoundException or FormatException)
        {
            throw Bad($"the header is malformed: {e.Message}");
        }
        if (entries.Select(e => e.Name).Distinct(StringComparer.Ordinal).Count() != entries.Count) throw Bad("two tensors have one name");
        var expect = dataStart;
        foreach (var e in entries.OrderBy(e => e.FileOffset))
        {
            if (e.FileOffset != expect) throw Bad("tensor data has gaps or overlaps");
            expect += e.Length;
        }
        if (expect != file.Length) throw Bad("tensor data does not cover the byte buffer exactly");
        return (entries, metadata);
    }

    /// <summary>Reads a .safetensors file back into memory, checking the header rules (tests, small files).</summary>
    public static (IReadOnlyList<SafetensorsTensor> Tensors, IReadOnlyDictionary<string, string> Metadata) Read(string path)
    {
        using var file = new Archive.FileSource(path);
        var (entries, metadata) = ReadHeader(file);
        var tensors = entries.Select(e =>
        {
            if (e.Length > Array.MaxLength) throw Bad($"{e.Name} is too large to read into one array");
            return new SafetensorsTensor(e.Name, e.Code, e.Shape, file.ReadBytes(e.FileOffset, (int)e.Length, e.Name));
        }).ToList();
        return (tensors, metadata);
    }

    private static TorchLoadException Bad(string message) => new(TorchLoadErrorReason.InvalidArchive, $"Invalid safetensors file: {message}");
}

using System.Buffers.Binary;
using TorchLoad.Core.Archive;
using TorchLoad.Core.Errors;

namespace TorchLoad.Core.Dcp;

/// <summary>
/// The data files of one DCP load, each opened once (read-only), and the items in them: every item is a
/// whole torch.save zip archive read by the ordinary zip reader over a window of its file, so zip offsets,
/// alignment and the end-of-central-directory search are all bounded to the item's range.
/// </summary>
internal sealed class DcpFiles(string folder) : IDisposable
{
    private readonly Dictionary<string, FileSource> _open = new(StringComparer.Ordinal);

    /// <summary>The data file (a name <see cref="DcpFolder"/> validated), opened on first use.</summary>
    public FileSource Get(string name)
    {
        lock (_open)
        {
            if (!_open.TryGetValue(name, out var file)) _open[name] = file = new FileSource(Path.Combine(folder, name));
            return file;
        }
    }

    /// <summary>Loads the item as torch.load would load it from a file of its own (errors name the item).</summary>
    public TorchCheckpoint LoadItem(DcpItem item, string what, TorchLoadOptions options)
    {
        try
        {
            var window = new FileSource(Get(item.File), item.Offset, item.Length);
            RequireZip(window);
            using var session = new LoadSession(() => window, options, ownsFile: false);
            return ZipCheckpoint.Load(session);
        }
        catch (TorchLoadException e) when (e.Reason != TorchLoadErrorReason.Cancelled)
        {
            throw new TorchLoadException(e.Reason, $"DCP {what} ({item.File}, {item.Length} bytes at byte {item.Offset}): {e.Message}", item.File, item.Offset, e)
            { GlobalName = e.GlobalName, LimitName = e.LimitName };
        }
    }

    /// <summary>Items are torch.save zip archives; a safetensors blob is the newer DCP format (torch 2.8+), not implemented.</summary>
    private static void RequireZip(FileSource window)
    {
        Span<byte> head = stackalloc byte[9];
        var n = (int)Math.Min(head.Length, window.Length);
        window.ReadExactly(0, head[..n]);
        if (head[..n].StartsWith("PK\x03\x04"u8)) return;
        if (n == 9 && head[8] == (byte)'{' && BinaryPrimitives.ReadUInt64LittleEndian(head) < (ulong)window.Length)
            throw new TorchLoadException(TorchLoadErrorReason.UnsupportedFormat,
                "the item is a safetensors blob (DCP's serialization_format=SAFETENSORS, torch 2.8+); TorchLoad reads DCP items saved as torch.save archives only");
        throw new TorchLoadException(TorchLoadErrorReason.InvalidArchive, "the item is not a torch.save zip archive (no local file header at its first byte)", null, 0);
    }

    /// <summary>CheckpointChanged when a data file read in this load was truncated or rewritten meanwhile (torch.save rewrites in place).</summary>
    public void ThrowIfChanged()
    {
        lock (_open)
        {
            foreach (var f in _open.Values)
                if (f.HasChanged) throw f.Changed();
        }
    }

    public void Dispose()
    {
        foreach (var f in _open.Values) f.Dispose();
        _open.Clear();
    }
}

using TorchLoad.Core.Devices;
using TorchLoad.Core.Errors;
using TorchLoad.Core.Pickle;
using TorchLoad.Core.Tensors;

namespace TorchLoad.Core.Dcp;

/// <summary>
/// torch.load for a DCP folder: the nested state dict exactly as <c>dcp_to_torch_save</c> followed by
/// <c>torch.load</c> gives it. Tensors are re-assembled from their chunks (<see cref="DcpAssembler"/>); bytes
/// entries are torch.save archives loaded with the caller's rules (safe mode: TorchLoad's allowlist;
/// permissive: inert objects); nesting comes from <c>planner_data</c>. Metadata only: tensors without data
/// and no bytes entry read.
/// </summary>
internal static class DcpCheckpoint
{
    public static TorchCheckpoint Load(string folder, TorchLoadOptions options)
    {
        var index = DcpFolder.Open(folder, options);
        var entries = index.Entries;
        var values = new object?[entries.Count];
        var storages = new List<TorchStorage>();
        var tensorEntries = new Dictionary<TorchTensor, DcpEntry>(ReferenceEqualityComparer.Instance);
        using (var files = new DcpFiles(index.Folder))
        {
            if (options.MetadataOnly)
            {
                for (var i = 0; i < entries.Count; i++)
                {
                    var e = entries[i];
                    if (!e.IsTensor) continue;
                    var storage = new TorchStorage(e.Fqn, e.DType!, DcpGeometry.Volume(e.Shape), "cpu") { RecordName = e.Chunks.Count > 0 ? e.Chunks[0].Item.File : null };
                    storages.Add(storage);
                    values[i] = new TorchTensor(e.DType!, e.Shape, ShapeMath.ContiguousStrides(e.Shape), 0, storage);
                }
            }
            else
            {
                var tensors = DcpAssembler.Assemble(index, files, options, storages);
                try
                {
                    var handlers = LocationRegistry.Handlers;
                    foreach (var s in storages) DevicePlacement.Restore(s, options.MapLocation, handlers);
                    for (var i = 0; i < entries.Count; i++)
                    {
                        options.Cancellation.ThrowIfCancellationRequested();
                        if (tensors[i] is { } t) { values[i] = t; continue; }
                        var cp = files.LoadItem(entries[i].Item!, $"bytes entry '{entries[i].Fqn}'", options with { Mmap = false }); // a window is never mapped on its own
                        values[i] = cp.Root;
                        storages.AddRange(cp.Storages);
                    }
                    files.ThrowIfChanged(); // one version of every data file, or an error: never mixed bytes
                }
                catch
                {
                    foreach (var s in storages) s.Dispose();
                    throw;
                }
            }
        }
        for (var i = 0; i < entries.Count; i++)
            if (values[i] is TorchTensor t && entries[i].IsTensor) tensorEntries[t] = entries[i];
        return new TorchCheckpoint(index.Folder, "dcp", Nest(index, values, options.Limits), storages)
        {
            PickleProtocol = index.PickleProtocol, Globals = index.Globals,
            Records = [DcpFolder.MetadataName, .. index.FileSizes.Keys],
            Dcp = index, DcpTensors = tensorEntries,
            DcpBytesValues = options.MetadataOnly ? null : entries.Select((e, i) => (e, i)).Where(x => !x.e.IsTensor).Select(x => (x.e.Name, values[x.i])).ToList(),
        };
    }

    /// <summary>
    /// DCP's set_element over the entries in <c>.metadata</c> order: a following str component makes a dict, an
    /// int component a list (padded with None); dicts are plain ordered dictionaries. Paths that contradict
    /// each other (a value where a container is needed, a key into a list) are refused, not guessed.
    /// </summary>
    private static PyDict Nest(DcpIndex index, object?[] values, LoadLimits limits)
    {
        var root = new PyDict();
        for (var i = 0; i < index.Entries.Count; i++)
        {
            var path = index.Entries[i].Path;
            object container = root;
            for (var k = 0; k < path.Length - 1; k++)
            {
                var fresh = path[k + 1] is long ? (object)new List<object?>() : new PyDict();
                container = Get(container, path[k], index.Entries[i].Fqn) ?? Set(container, path[k], fresh, index.Entries[i].Fqn, limits, index.Entries.Count)!;
                if (container is not (PyDict or List<object?>))
                    throw Conflict(index.Entries[i].Fqn, $"its path passes through a value that is not a dict or list ({TorchUnpickler.Describe(container)})");
            }
            Set(container, path[^1], values[i], index.Entries[i].Fqn, limits, index.Entries.Count);
        }
        return root;
    }

    private static object? Get(object container, object key, string fqn) => container switch
    {
        PyDict d => d.TryGetValue(key, out var v) ? v : null,
        List<object?> l => key is long i ? (i < l.Count ? l[(int)i] : null) : throw Conflict(fqn, $"its path indexes a list with '{key}'"),
        _ => null,
    };

    private static object? Set(object container, object key, object? value, string fqn, LoadLimits limits, int entryCount)
    {
        switch (container)
        {
            case PyDict d:
                d.Set(key, value);
                return value;
            case List<object?> l when key is long i:
                // DCP's indices come from real lists, so they stay near the entry count; padding is bounded by it
                // (a hostile index of 10^12 must not make a list of 10^12 Nones)
                var max = Math.Min(limits.MaxContainerItems, 1024 + 64L * entryCount);
                if (i >= max)
                    throw new TorchLoadException(TorchLoadErrorReason.LimitExceeded, $"DCP key '{fqn}' puts a value at list index {i}; with {entryCount} keys at most {max} are accepted", ".metadata")
                    { LimitName = nameof(LoadLimits.MaxContainerItems) };
                while (l.Count <= i) l.Add(null);
                l[(int)i] = value;
                return value;
            default:
                throw Conflict(fqn, $"its path indexes a list with '{key}'");
        }
    }

    private static TorchLoadException Conflict(string fqn, string message) =>
        new(TorchLoadErrorReason.MalformedPickle, $"Malformed DCP .metadata: planner_data of '{fqn}' does not fit the other keys: {message}", ".metadata");
}

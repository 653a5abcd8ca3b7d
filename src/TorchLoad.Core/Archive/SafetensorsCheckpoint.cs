using TorchLoad.Core.Pickle;
using TorchLoad.Core.Safetensors;
using TorchLoad.Core.Tensors;

namespace TorchLoad.Core.Archive;

/// <summary>
/// A .safetensors file loaded like a checkpoint (newest torch.load hands these to the safetensors
/// package): an ordered dict of contiguous tensors, one storage each. There is no pickle, so
/// nothing to allow or refuse; eager reads, -Mmap and metadata-only listing work as for zip files.
/// </summary>
internal static class SafetensorsCheckpoint
{
    public static TorchCheckpoint Load(LoadSession session)
    {
        var (entries, metadata) = SafetensorsFile.ReadHeader(session.File);
        var root = new PyDict("collections.OrderedDict");
        session.ExpectStorages(entries.Count);
        foreach (var e in entries)
        {
            var storage = new TorchStorage(e.Name, e.DType, e.Length / e.DType.ElementSize, "cpu") { RecordName = e.Name, FileOffset = e.FileOffset };
            session.AddStorage(storage);
            root.Set(e.Name, new TorchTensor(e.DType, e.Shape, ShapeMath.ContiguousStrides(e.Shape), 0, storage));
        }
        if (metadata.Count > 0)
        {
            root.Attributes = new PyDict();
            var m = new PyDict();
            foreach (var kv in metadata) m.Set(kv.Key, kv.Value);
            root.Attributes.Set("__metadata__", m);
        }
        var checkpoint = new TorchCheckpoint(session.File.Path, "safetensors", root, session.StorageOrder)
        {
            Records = entries.Select(e => e.Name).ToList(),
        };
        if (session.Options.MetadataOnly) return checkpoint;
        if (session.Options.Mmap)
        {
            session.MapStorages(session.StorageOrder);
        }
        else
        {
            session.ReadStorages(session.StorageOrder.OrderBy(s => s.FileOffset).ToList(),
                (s, report) => session.File.ReadToHost(s.FileOffset, s.ByteLength, s.RecordName, session.Cancel, report, session.SmallStorages));
        }
        session.Place([]); // safetensors has no device tags: everything is cpu
        return checkpoint;
    }
}

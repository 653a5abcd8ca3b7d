using System.Text.Json;
using TorchLoad.Core.Errors;
using TorchLoad.Core.Pickle;
using TorchLoad.Core.Tensors;

namespace TorchLoad.Core.Archive;

/// <summary>
/// A sharded Hugging Face checkpoint: <c>pytorch_model.bin.index.json</c> maps each tensor name to
/// the shard file holding it. The shards load one by one (each a normal torch.save file) and merge
/// into one state dict; the index must agree with what the shards hold.
/// </summary>
internal static class ShardedCheckpoint
{
    public static bool IsIndex(string path) => path.EndsWith(".index.json", StringComparison.OrdinalIgnoreCase);

    /// <summary>The shard files an index names, in first-mention order, as full paths (validated names).</summary>
    public static IReadOnlyList<string> ShardPaths(string indexPath)
    {
        var folder = Path.GetDirectoryName(Path.GetFullPath(indexPath))!;
        return ReadIndex(indexPath).Select(w => w.Shard).Distinct(StringComparer.Ordinal).Select(s => Path.Combine(folder, s)).ToList();
    }

    public static TorchCheckpoint Load(string indexPath, TorchLoadOptions options)
    {
        var folder = Path.GetDirectoryName(Path.GetFullPath(indexPath))!;
        var weightMap = ReadIndex(indexPath);
        var shards = weightMap.Select(w => w.Shard).Distinct(StringComparer.Ordinal).ToList();
        return Merge(indexPath, folder, weightMap, shards, options);
    }

    private static List<(string Tensor, string Shard)> ReadIndex(string indexPath)
    {
        var info = new FileInfo(indexPath);
        if (!info.Exists) throw new TorchLoadException(TorchLoadErrorReason.InvalidArgument, $"Cannot find '{indexPath}'.");
        if (info.Length > 256 << 20) throw new TorchLoadException(TorchLoadErrorReason.LimitExceeded, $"The shard index is {info.Length} bytes") { LimitName = "index size" };
        var weightMap = new List<(string Tensor, string Shard)>();
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(indexPath), new JsonDocumentOptions { MaxDepth = 16 });
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw new TorchLoadException(TorchLoadErrorReason.MissingRecord, "The shard index has no \"weight_map\" object", indexPath);
            foreach (var p in map.EnumerateObject())
                weightMap.Add((p.Name, p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()! : throw new TorchLoadException(TorchLoadErrorReason.InvalidArchive, $"weight_map entry '{p.Name}' is not a file name", indexPath)));
        }
        catch (JsonException e)
        {
            throw new TorchLoadException(TorchLoadErrorReason.NotACheckpoint, $"The shard index is not valid JSON: {e.Message}", indexPath, inner: e);
        }
        foreach (var shard in weightMap.Select(w => w.Shard).Distinct(StringComparer.Ordinal))
        {
            if (shard.Length == 0 || shard.Contains('/') || shard.Contains('\\') || shard is "." or ".." || Path.IsPathRooted(shard) || IsIndex(shard))
                throw new TorchLoadException(TorchLoadErrorReason.InvalidRecordName, $"Shard '{shard}' is not a plain file name next to the index", indexPath);
        }
        return weightMap;
    }

    private static TorchCheckpoint Merge(string indexPath, string folder, List<(string Tensor, string Shard)> weightMap, List<string> shards, TorchLoadOptions options)
    {
        var merged = new PyDict("collections.OrderedDict");
        var storages = new List<TorchStorage>();
        var globals = new List<string>();
        var owner = new Dictionary<string, string>(StringComparer.Ordinal);
        var expected = weightMap.ToLookup(w => w.Shard, w => w.Tensor, StringComparer.Ordinal);
        foreach (var shard in shards)
        {
            var shardPath = Path.Combine(folder, shard);
            TorchCheckpoint part;
            try { part = TorchLoader.Load(shardPath, options); }
            catch (TorchLoadException e) { throw new TorchLoadException(e.Reason, $"Shard '{shard}': {e.Message}", shard, inner: e); }
            if (part.Root is not PyDict dict)
                throw new TorchLoadException(TorchLoadErrorReason.InvalidArchive, $"Shard '{shard}' holds {TorchUnpickler.Describe(part.Root)}, not a state dict", shard);
            foreach (var kv in (IEnumerable<KeyValuePair<object?, object?>>)dict)
            {
                var key = kv.Key as string ?? throw new TorchLoadException(TorchLoadErrorReason.InvalidArchive, $"Shard '{shard}' has a non-string key", shard);
                if (!owner.TryAdd(key, shard))
                    throw new TorchLoadException(TorchLoadErrorReason.DuplicateRecord, $"Tensor '{key}' is in both '{owner[key]}' and '{shard}'", shard);
                merged.Set(key, kv.Value);
            }
            storages.AddRange(part.Storages);
            globals.AddRange(part.Globals);
            foreach (var name in expected[shard])
                if (!dict.ContainsKey(name))
                    throw new TorchLoadException(TorchLoadErrorReason.MissingRecord, $"The index puts '{name}' in '{shard}', but that shard does not have it", shard);
        }
        return new TorchCheckpoint(indexPath, "sharded", merged, storages)
        {
            Globals = globals.Distinct().ToList(),
            Records = shards,
        };
    }
}

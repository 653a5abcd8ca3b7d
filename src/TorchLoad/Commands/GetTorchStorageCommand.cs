using System.Management.Automation;
using TorchLoad.Core;
using TorchLoad.Core.Tensors;

namespace TorchLoad.Commands;

/// <summary>Lists storages: of a file from its pickle alone (no tensor bytes read), or of an already loaded object.</summary>
[Cmdlet(VerbsCommon.Get, "TorchStorage", DefaultParameterSetName = PathSet)]
[OutputType(typeof(TorchStorage), typeof(Core.Dcp.DcpChunk))]
public sealed class GetTorchStorageCommand : CheckpointOrObjectCmdletBase
{
    [Parameter(ParameterSetName = PathSet)]
    [Parameter(ParameterSetName = LiteralPathSet)]
    [Parameter(ParameterSetName = InputStreamSet)]
    [Parameter(ParameterSetName = InputSet)]
    public bool WeightsOnly { get; set; } = true;

    [Parameter(ParameterSetName = PathSet)]
    [Parameter(ParameterSetName = LiteralPathSet)]
    [Parameter(ParameterSetName = InputStreamSet)]
    [Parameter(ParameterSetName = InputSet)]
    [ArgumentCompleter(typeof(SafeGlobalCompleter))]
    public string[]? SafeGlobal { get; set; }

    private readonly HashSet<TorchStorage> _written = new(ReferenceEqualityComparer.Instance);

    protected override void ProcessRecord() => ProcessInput(ListFile, ListStream, input =>
    {
        foreach (var (storage, paths) in TensorWalker.Storages(input))
        {
            if (!_written.Add(storage)) continue; // each storage once, also across pipeline items
            Fill(storage, paths);
            WriteObject(storage);
        }
    });

    protected override void EndProcessing() => EndInputStreams(ListStream);

    private void ListFile(string[]? paths, bool literal)
    {
        foreach (var file in ResolvePaths(paths, literal))
            TryFile(file, () => List(TorchLoader.Load(file, ListOptions())));
    }

    private void ListStream(Stream stream, string name) => Try(name, () => List(TorchLoader.Load(stream, ListOptions(), name)));

    private TorchLoadOptions ListOptions() => new()
    {
        WeightsOnly = WeightsOnly, SafeGlobals = SafeGlobal ?? [], MetadataOnly = true, Cancellation = Cancellation,
        Limits = LoadLimits.Default with { MaxStreamBytes = MaxStreamBytes },
    };

    private void List(TorchCheckpoint checkpoint)
    {
        if (checkpoint.Format == "dcp")
        {
            foreach (var chunk in checkpoint.DcpChunks) WriteObject(chunk); // a DCP folder: its chunks, from .metadata alone
            return;
        }
        var byStorage = new Dictionary<TorchStorage, List<string>>(ReferenceEqualityComparer.Instance);
        foreach (var (s, paths) in TensorWalker.Storages(checkpoint.Root)) byStorage[s] = paths;
        foreach (var storage in checkpoint.Storages)
        {
            Fill(storage, byStorage.TryGetValue(storage, out var paths) ? paths : []);
            WriteObject(storage);
        }
    }

    private static void Fill(TorchStorage storage, List<string> paths)
    {
        storage.TensorPaths.Clear();
        storage.TensorPaths.AddRange(paths);
    }
}

using System.Management.Automation;
using TorchLoad.Core;
using TorchLoad.Core.Audit;

namespace TorchLoad.Commands;

/// <summary>A checkpoint (file or loaded object) flattened into one row per tensor, named by its dotted path.</summary>
[Cmdlet(VerbsCommon.Get, "TorchTensor", DefaultParameterSetName = PathSet)]
[OutputType(typeof(TensorInfo))]
public sealed class GetTorchTensorCommand : CheckpointOrObjectCmdletBase
{
    /// <summary>Only tensors whose name matches (wildcards).</summary>
    [Parameter]
    [SupportsWildcards]
    public string[]? Name { get; set; }

    /// <summary>Adds the SHA-256 of each tensor's values (reads tensor data).</summary>
    [Parameter]
    public SwitchParameter Hash { get; set; }

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

    [Parameter(ParameterSetName = PathSet)]
    [Parameter(ParameterSetName = LiteralPathSet)]
    [Parameter(ParameterSetName = InputStreamSet)]
    [Parameter(ParameterSetName = InputSet)]
    [ArgumentCompleter(typeof(DeviceCompleter))]
    public object? MapLocation { get; set; }

    private WildcardPattern[] _patterns = [];

    protected override void BeginProcessing() =>
        _patterns = (Name ?? []).Select(n => new WildcardPattern(n, WildcardOptions.IgnoreCase)).ToArray();

    protected override void ProcessRecord() =>
        ProcessInput(FromFiles, FromStream, input => Try(input, () => Write(TensorInfo.From(input, Hash))));

    protected override void EndProcessing() => EndInputStreams(FromStream);

    private void FromFiles(string[]? paths, bool literal)
    {
        foreach (var file in ResolvePaths(paths, literal))
            TryFile(file, () => Write(TensorInfo.From(TorchLoader.Load(file, LoadOptions()), Hash, file)));
    }

    private void FromStream(Stream stream, string name) =>
        Try(name, () => Write(TensorInfo.From(TorchLoader.Load(stream, LoadOptions(), name), Hash, name)));

    // Without -Hash only the pickle is read: no tensor bytes, so a 100 GB file lists in milliseconds.
    private TorchLoadOptions LoadOptions()
    {
        var map = ConvertMapLocation(MapLocation);
        return new TorchLoadOptions
        {
            WeightsOnly = WeightsOnly, SafeGlobals = SafeGlobal ?? [], MetadataOnly = !Hash,
            MapLocation = map ?? (Hash ? Core.Devices.MapLocation.ToDevice("cpu") : null), Cancellation = Cancellation,
            Limits = LoadLimits.Default with { MaxStreamBytes = MaxStreamBytes },
        };
    }

    private void Write(IEnumerable<TensorInfo> rows)
    {
        foreach (var row in rows)
            if (_patterns.Length == 0 || _patterns.Any(p => p.IsMatch(row.Name))) WriteObject(row);
    }
}

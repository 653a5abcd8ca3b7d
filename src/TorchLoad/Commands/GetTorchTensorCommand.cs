using System.Management.Automation;
using TorchLoad.Core;
using TorchLoad.Core.Audit;

namespace TorchLoad.Commands;

/// <summary>A checkpoint (file or loaded object) flattened into one row per tensor, named by its dotted path.</summary>
[Cmdlet(VerbsCommon.Get, "TorchTensor", DefaultParameterSetName = PathSet)]
[OutputType(typeof(TensorInfo))]
public sealed class GetTorchTensorCommand : TorchCmdletBase
{
    private const string InputSet = "InputObject";

    [Parameter(Mandatory = true, Position = 0, ParameterSetName = PathSet, ValueFromPipelineByPropertyName = true)]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[]? Path { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = LiteralPathSet, ValueFromPipelineByPropertyName = true)]
    [Alias("PSPath", "LP", "FullName")] // a piped FileInfo is literal: a[1].pt is a name, not a pattern
    [ValidateNotNullOrEmpty]
    public string[]? LiteralPath { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = InputSet, ValueFromPipeline = true)]
    [AllowNull]
    public object? InputObject { get; set; }

    /// <summary>A Stream (read from its current position) or a byte array holding a checkpoint.</summary>
    [Parameter(Mandatory = true, ParameterSetName = InputStreamSet)]
    [StreamInput]
    public Stream? InputStream { get; set; }

    /// <summary>The most bytes of a non-seekable stream that are buffered in memory.</summary>
    [Parameter(ParameterSetName = InputStreamSet)]
    [Parameter(ParameterSetName = InputSet)]
    [ValidateRange(1L, long.MaxValue)]
    public long MaxStreamBytes { get; set; } = LoadLimits.Default.MaxStreamBytes;

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

    protected override void ProcessRecord()
    {
        if (ParameterSetName == InputStreamSet) { ProcessInputStream(InputStream!, FromStream); return; }
        if (ParameterSetName == InputSet)
        {
            var input = InputObject is PSObject p ? p.BaseObject : InputObject;
            if (TryGetPipedPath(input, out var piped, out var literal)) { FromFiles([piped], literal); return; }
            if (AsInputStream(input) is { } stream) { ProcessInputStream(stream, FromStream); return; }
            Try(input, () => Write(TensorInfo.From(input, Hash)));
            return;
        }
        FromFiles(ParameterSetName == LiteralPathSet ? LiteralPath : Path, ParameterSetName == LiteralPathSet);
    }

    protected override void EndProcessing() => EndInputStreams(FromStream);

    private void FromFiles(string[]? paths, bool literal)
    {
        foreach (var file in ResolvePaths(paths, literal))
            Try(file, () => Write(TensorInfo.From(TorchLoader.Load(file, LoadOptions()), Hash, file)));
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

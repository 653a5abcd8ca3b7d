using System.Management.Automation;
using TorchLoad.Core;
using TorchLoad.Core.Audit;
using TorchLoad.Core.Errors;
using TorchLoad.Core.Tensors;

namespace TorchLoad.Commands;

/// <summary>
/// Statistics of every tensor's values: NaN, Inf and zero counts, and min, max, mean, std and L2 norm over
/// the finite values, in double; on the host (vectorized, parallel) or as ILGPU kernels on -Device.
/// </summary>
[Cmdlet(VerbsDiagnostic.Measure, "TorchTensor", DefaultParameterSetName = PathSet)]
[OutputType(typeof(TensorStatistics))]
public sealed class MeasureTorchTensorCommand : TorchCmdletBase
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

    /// <summary>A checkpoint as a stream or byte array (torch.load's file object); non-seekable streams are buffered up to -MaxStreamBytes.</summary>
    [Parameter(Mandatory = true, ParameterSetName = InputStreamSet)]
    [StreamInput]
    public Stream? InputStream { get; set; }

    [Parameter(ParameterSetName = InputStreamSet)]
    [Parameter(ParameterSetName = InputSet)]
    [ValidateRange(1L, long.MaxValue)]
    public long MaxStreamBytes { get; set; } = LoadLimits.Default.MaxStreamBytes;

    /// <summary>A loaded checkpoint, a tensor, or Get-TorchTensor rows of a loaded object.</summary>
    [Parameter(Mandatory = true, ParameterSetName = InputSet, ValueFromPipeline = true)]
    [AllowNull]
    public object? InputObject { get; set; }

    /// <summary>Only tensors whose dotted name matches (wildcards).</summary>
    [Parameter]
    [SupportsWildcards]
    public string[]? Name { get; set; }

    /// <summary>Where the reductions run: cpu (default), ilgpu-cpu or cuda:N.</summary>
    [Parameter]
    [ArgumentCompleter(typeof(DeviceCompleter))]
    [ValidateNotNullOrEmpty]
    public string Device { get; set; } = "cpu";

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

    private WildcardPattern[] _patterns = [];

    protected override void BeginProcessing()
    {
        _patterns = (Name ?? []).Select(n => new WildcardPattern(n, WildcardOptions.IgnoreCase)).ToArray();
        if (!TensorStatistics.IsDeviceAvailable(Device))
            ThrowTerminatingError(ErrorRecordFactory.From(new TorchLoadException(TorchLoadErrorReason.DeviceUnavailable,
                $"Device '{Device}' is not available here; Get-TorchDevice lists the devices."), Device));
    }

    protected override void ProcessRecord()
    {
        if (ParameterSetName == InputStreamSet) { ProcessInputStream(InputStream!, FromStream); return; }
        if (ParameterSetName == InputSet)
        {
            var input = InputObject is PSObject p ? p.BaseObject : InputObject;
            if (TryGetPipedPath(input, out var piped, out var literal)) { FromFiles([piped], literal); return; }
            if (AsInputStream(input) is { } stream) { ProcessInputStream(stream, FromStream); return; }
            if (input is TensorInfo row)
            {
                if (_patterns.Length == 0 || _patterns.Any(p => p.IsMatch(row.Name))) Try(row.Name, () => Measure(row.Name, row.Tensor!, row.Path));
                return;
            }
            Try(input, () => MeasureAll(input, path: null));
            return;
        }
        FromFiles(ParameterSetName == LiteralPathSet ? LiteralPath : Path, ParameterSetName == LiteralPathSet);
    }

    private void FromFiles(string[]? paths, bool literal)
    {
        foreach (var file in ResolvePaths(paths, literal))
            Try(file, () => FromCheckpoint(TensorStatistics.LoadForMeasuring(file, LoadOptions()), file));
    }

    protected override void EndProcessing() => EndInputStreams(FromStream);

    private void FromStream(Stream stream, string name) => Try(name, () => FromCheckpoint(TorchLoader.Load(stream, LoadOptions(), name), name));

    /// <summary>The load options of a file or stream: every storage in host memory (the reduction moves it where -Device says).</summary>
    private TorchLoadOptions LoadOptions() => new()
    {
        WeightsOnly = WeightsOnly, SafeGlobals = SafeGlobal ?? [], MapLocation = Core.Devices.MapLocation.ToDevice("cpu"), Cancellation = Cancellation,
        Limits = LoadLimits.Default with { MaxStreamBytes = MaxStreamBytes },
    };

    /// <summary>A checkpoint this command loaded (file, or a stream later): measured, then its memory freed at once.</summary>
    private void FromCheckpoint(TorchCheckpoint checkpoint, string source)
    {
        try { MeasureAll(checkpoint.Root, source); }
        finally
        {
            foreach (var s in checkpoint.Storages) s.Dispose();
        }
    }

    private void MeasureAll(object? root, string? path)
    {
        var done = new Dictionary<TorchTensor, TensorStatistics>(ReferenceEqualityComparer.Instance);
        foreach (var row in TensorInfo.From(root, hash: false, path))
        {
            if (_patterns.Length > 0 && !_patterns.Any(p => p.IsMatch(row.Name))) continue;
            var t = row.Tensor!;
            if (done.TryGetValue(t, out var same)) { WriteObject(same with { Name = row.Name }); continue; } // a tied weight: measured once
            if (Measure(row.Name, t, path) is { } stats) done[t] = stats;
        }
    }

    private TensorStatistics? Measure(string name, TorchTensor t, string? path)
    {
        if (t.IsMeta)
        {
            WriteWarning($"{name}: a meta tensor has no values to measure.");
            return null;
        }
        var stats = TensorStatistics.Measure(name, t, Device, path, Cancellation);
        WriteObject(stats);
        return stats;
    }
}

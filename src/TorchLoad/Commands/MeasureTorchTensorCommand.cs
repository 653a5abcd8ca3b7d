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
public sealed class MeasureTorchTensorCommand : CheckpointOrObjectCmdletBase
{
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

    protected override void ProcessRecord() => ProcessInput(FromFiles, FromStream, input =>
    {
        if (input is TensorInfo row)
        {
            if (_patterns.Length == 0 || _patterns.Any(p => p.IsMatch(row.Name))) Try(row.Name, () => Measure(row.Name, row.Tensor!, row.Path));
            return;
        }
        Try(input, () => MeasureAll(input, path: null));
    });

    private void FromFiles(string[]? paths, bool literal)
    {
        foreach (var file in ResolvePaths(paths, literal))
            TryFile(file, () => FromCheckpoint(TensorStatistics.LoadForMeasuring(file, LoadOptions()), file));
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

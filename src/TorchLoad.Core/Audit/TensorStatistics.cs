using TorchLoad.Core.Devices;
using TorchLoad.Core.Errors;
using TorchLoad.Core.Tensors;

namespace TorchLoad.Core.Audit;

/// <summary>
/// Measure-TorchTensor's row: counts of NaN, Inf and zeros, and over the finite values their min, max,
/// mean, standard deviation (torch's default correction 1) and L2 norm, all computed in double. Plain
/// values only, so rows survive remoting and Export-Csv.
/// </summary>
public sealed record TensorStatistics
{
    public required string Name { get; init; }
    public required string DType { get; init; }
    public required long[] Shape { get; init; }

    /// <summary>The number of values measured (a sparse or nested tensor's stored values; two per float4_e2m1fn_x2 element).</summary>
    public long ElementCount { get; init; }
    public long NaNCount { get; init; }
    public long InfCount { get; init; }
    public long ZeroCount { get; init; }

    /// <summary>Values that are neither NaN nor ±Inf: the ones Min to L2Norm are taken over.</summary>
    public long FiniteCount { get; init; }

    /// <summary>Null when there is no finite value.</summary>
    public double? Min { get; init; }
    public double? Max { get; init; }
    public double? Mean { get; init; }

    /// <summary>Sample standard deviation (correction 1, torch.std's default); null below two finite values.</summary>
    public double? Std { get; init; }
    public double L2Norm { get; init; }

    /// <summary>Where the reduction ran: <c>cpu</c>, <c>ilgpu-cpu</c>, <c>cuda:N</c>.</summary>
    public required string Device { get; init; }

    /// <summary>The file the tensor came from, when known.</summary>
    public string? Path { get; init; }

    /// <summary>True when some value is NaN or ±Inf.</summary>
    public bool HasNonFinite => NaNCount + InfCount > 0;

    public override string ToString() => $"{Name} {DType}[{string.Join(", ", Shape)}] nan={NaNCount} inf={InfCount}";

    /// <summary>
    /// Measures <paramref name="tensor"/> on <paramref name="device"/> (<c>cpu</c>: vectorized host code in
    /// parallel; an accelerator: ILGPU kernels). A meta tensor throws InvalidOperationException; an
    /// accelerator that is not present, DeviceUnavailable.
    /// </summary>
    public static TensorStatistics Measure(string name, TorchTensor tensor, string device = "cpu", string? path = null, CancellationToken cancel = default)
    {
        var values = TensorValues.Of(tensor);
        var m = device == "cpu" ? HostReduction.Reduce(values, cancel) : StatisticsKernels.Reduce(values, Accelerator(device), cancel);
        return new TensorStatistics
        {
            Name = name, DType = tensor.DType.Name, Shape = (long[])tensor.Shape.Clone(), ElementCount = values.Count,
            NaNCount = m.NaN, InfCount = m.Inf, ZeroCount = m.Zero, FiniteCount = m.Count,
            Min = m.Count > 0 ? m.Min : null, Max = m.Count > 0 ? m.Max : null, Mean = m.Count > 0 ? m.Mean : null,
            Std = m.Count > 1 ? m.Std : null, L2Norm = m.L2Norm, Device = device, Path = path,
        };
    }

    /// <summary>The accelerator called <paramref name="device"/> (<c>cuda</c> is <c>cuda:0</c>), or DeviceUnavailable.</summary>
    private static AcceleratorDevice Accelerator(string device)
    {
        var name = device == "cuda" ? "cuda:0" : device;
        return IlgpuBackend.Find(name) ?? throw new TorchLoadException(TorchLoadErrorReason.DeviceUnavailable,
            $"Device '{device}' is not available here; Get-TorchDevice lists the devices.");
    }

    /// <summary>
    /// Loads a file to measure its values: zip checkpoints mapped (torch's mmap=True: the reduction reads the
    /// page cache in place, nothing is copied into new memory first, which is most of an eager load's cost),
    /// other formats and deflated records read eagerly. The caller disposes the storages.
    /// </summary>
    public static TorchCheckpoint LoadForMeasuring(string path, TorchLoadOptions options) =>
        MappedOrEager(mmap => TorchLoader.Load(path, options with { Mmap = mmap }));

    /// <summary>The same, from an open source (an audit's file or stream; streams are read eagerly).</summary>
    internal static TorchCheckpoint LoadForMeasuring(Archive.FileSource source, TorchLoadOptions options) =>
        source.OpenFile is null ? TorchLoader.Load(source, options with { Mmap = false })
            : MappedOrEager(mmap => TorchLoader.Load(source, options with { Mmap = mmap }));

    /// <summary>-Mmap where the format allows it (stored zip records), else an eager load.</summary>
    private static TorchCheckpoint MappedOrEager(Func<bool, TorchCheckpoint> load)
    {
        try { return load(true); }
        catch (TorchLoadException e) when (e.Reason is TorchLoadErrorReason.UnsupportedFormat or TorchLoadErrorReason.UnsupportedCompression)
        {
            return load(false);
        }
    }

    /// <summary>True when <paramref name="device"/> can run the reduction (cpu, or a present accelerator).</summary>
    public static bool IsDeviceAvailable(string device) => device == "cpu" || IlgpuBackend.Find(device == "cuda" ? "cuda:0" : device) is not null;
}

using System.Management.Automation;
using TorchLoad.Core;
using TorchLoad.Core.Audit;

namespace TorchLoad.Commands;

/// <summary>Two checkpoints side by side: tensors added, removed and changed (dtype, shape, values by SHA-256).</summary>
[Cmdlet(VerbsData.Compare, "TorchCheckpoint")]
[OutputType(typeof(TensorDifference))]
public sealed class CompareTorchCheckpointCommand : TorchCmdletBase
{
    /// <summary>The reference: a checkpoint path or a loaded object.</summary>
    [Parameter(Mandatory = true, Position = 0)]
    public object? ReferenceObject { get; set; }

    /// <summary>The other checkpoint: a path or a loaded object.</summary>
    [Parameter(Mandatory = true, Position = 1, ValueFromPipeline = true)]
    public object? DifferenceObject { get; set; }

    /// <summary>Also writes tensors that are equal.</summary>
    [Parameter]
    public SwitchParameter IncludeEqual { get; set; }

    /// <summary>torch.allclose's atol: values within AbsoluteTolerance + RelativeTolerance·|difference| are not a change.</summary>
    [Parameter]
    [ValidateRange(0.0, double.MaxValue)]
    public double AbsoluteTolerance { get; set; }

    /// <summary>torch.allclose's rtol.</summary>
    [Parameter]
    [ValidateRange(0.0, double.MaxValue)]
    public double RelativeTolerance { get; set; }

    /// <summary>NaN equals NaN (torch.allclose's equal_nan).</summary>
    [Parameter]
    public SwitchParameter EqualNaN { get; set; }

    [Parameter]
    public bool WeightsOnly { get; set; } = true;

    [Parameter]
    [ArgumentCompleter(typeof(SafeGlobalCompleter))]
    public string[]? SafeGlobal { get; set; }

    private List<TensorInfo>? _reference;

    protected override void ProcessRecord()
    {
        Try(DifferenceObject, () =>
        {
            _reference ??= Rows(ReferenceObject);
            foreach (var d in CheckpointComparison.Compare(_reference, Rows(DifferenceObject), IncludeEqual, Tolerance())) WriteObject(d);
        });
    }

    /// <summary>Exact comparison unless a tolerance or -EqualNaN is given; a tolerance not given is 0.</summary>
    private Tolerance? Tolerance() =>
        MyInvocation.BoundParameters.ContainsKey(nameof(AbsoluteTolerance)) || MyInvocation.BoundParameters.ContainsKey(nameof(RelativeTolerance)) || EqualNaN
            ? new Tolerance(AbsoluteTolerance, RelativeTolerance, EqualNaN)
            : null;

    private List<TensorInfo> Rows(object? value)
    {
        var v = value is PSObject p ? p.BaseObject : value;
        if (TryGetPipedPath(v, out var path, out var literal))
        {
            var full = literal ? path : SessionState.Path.GetUnresolvedProviderPathFromPSPath(path);
            var checkpoint = TorchLoader.Load(full, new TorchLoadOptions
            {
                WeightsOnly = WeightsOnly, SafeGlobals = SafeGlobal ?? [], MapLocation = Core.Devices.MapLocation.ToDevice("cpu"), Cancellation = Cancellation,
            });
            return TensorInfo.From(checkpoint.Root, hash: true, full).ToList();
        }
        return TensorInfo.From(v, hash: true).ToList();
    }
}

using System.Management.Automation;
using TorchLoad.Core.Devices;
using TorchLoad.Core.Errors;
using TorchLoad.Core.Tensors;

namespace TorchLoad.Commands;

/// <summary>Moves storages (and so every tensor viewing them) between host memory and accelerators.</summary>
[Cmdlet(VerbsCommon.Move, "TorchStorage", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
[OutputType(typeof(TorchStorage))]
public sealed class MoveTorchStorageCommand : TorchCmdletBase
{
    [Parameter(Mandatory = true, ValueFromPipeline = true)]
    public object? InputObject { get; set; }

    [Parameter(Mandatory = true, Position = 0)]
    [ArgumentCompleter(typeof(DeviceCompleter))]
    [ValidateNotNullOrEmpty]
    public string Device { get; set; } = "cpu";

    [Parameter]
    public SwitchParameter PassThru { get; set; }

    private readonly HashSet<TorchStorage> _seen = new(ReferenceEqualityComparer.Instance);

    protected override void BeginProcessing()
    {
        if (!TorchDevice.TryParse(Device, out var d))
            ThrowTerminatingError(new ErrorRecord(new ArgumentException($"'{Device}' is not a device."), "InvalidDevice", ErrorCategory.InvalidArgument, Device));
        Device = d.Type == "cuda" && d.Index is null ? "cuda:0" : d.ToString();
    }

    protected override void ProcessRecord()
    {
        var input = InputObject is PSObject p ? p.BaseObject : InputObject;
        foreach (var (storage, _) in TensorWalker.Storages(input))
        {
            if (!_seen.Add(storage)) continue;
            var target = storage.ViewOf ?? storage;
            Try(storage, () =>
            {
                if (target.Buffer is null) throw new TorchLoadException(TorchLoadErrorReason.InvalidArgument, $"Storage {target.Key} was listed without data (Get-TorchStorage -Path); load it with Import-TorchCheckpoint first.");
                if (ShouldProcess($"storage {target.Key} ({target.DType}, {target.ByteLength} bytes on {target.Device})", $"Copy {target.ByteLength} bytes to {Device}"))
                {
                    if (!DeviceRegistry.IsAvailable(Device)) throw new TorchLoadException(TorchLoadErrorReason.DeviceUnavailable, $"Device '{Device}' is not available here; Get-TorchDevice lists the devices.");
                    DeviceRegistry.MoveTo(target, Device);
                }
                if (PassThru) WriteObject(storage);
            });
        }
    }
}

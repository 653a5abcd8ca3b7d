using System.Collections;
using System.Management.Automation;
using TorchLoad.Core;
using TorchLoad.Core.Audit;
using TorchLoad.Core.Safetensors;

namespace TorchLoad.Commands;

/// <summary>Writes a checkpoint's tensors to a .safetensors file (shared tensors de-duplicated as safetensors does).</summary>
[Cmdlet(VerbsData.Export, "TorchSafetensors", SupportsShouldProcess = true, DefaultParameterSetName = "InputObject")]
[OutputType(typeof(FileInfo))]
public sealed class ExportTorchSafetensorsCommand : TorchCmdletBase
{
    /// <summary>A loaded checkpoint (or any object holding tensors).</summary>
    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = "InputObject")]
    public object? InputObject { get; set; }

    /// <summary>A checkpoint file to convert.</summary>
    [Parameter(Mandatory = true, ParameterSetName = "LiteralPath")]
    [Alias("PSPath", "LP")]
    public string? LiteralPath { get; set; }

    /// <summary>The .safetensors file to write.</summary>
    [Parameter(Mandatory = true, Position = 0)]
    [ValidateNotNullOrEmpty]
    public string Destination { get; set; } = "";

    /// <summary>String metadata stored in the header's __metadata__ (format=pt is always added).</summary>
    [Parameter]
    public Hashtable? Metadata { get; set; }

    /// <summary>Replaces an existing file.</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    /// <summary>Safe mode for the checkpoint read from -LiteralPath or a piped file.</summary>
    [Parameter]
    public bool WeightsOnly { get; set; } = true;

    protected override void ProcessRecord()
    {
        var target = SessionState.Path.GetUnresolvedProviderPathFromPSPath(Destination);
        Try(target, () =>
        {
            object? root;
            TorchCheckpoint? checkpoint = null;
            if (ParameterSetName == "LiteralPath")
            {
                var source = SessionState.Path.GetUnresolvedProviderPathFromPSPath(LiteralPath!);
                checkpoint = TorchLoader.Load(source, new TorchLoadOptions { WeightsOnly = WeightsOnly, MapLocation = Core.Devices.MapLocation.ToDevice("cpu"), Cancellation = Cancellation });
                root = checkpoint.Root;
            }
            else
            {
                root = InputObject is PSObject p ? p.BaseObject : InputObject;
                // Get-Item x.pt | Export-TorchSafetensors: a piped file (or path) is a checkpoint to convert
                if (TryGetPipedPath(root, out var piped, out var literal))
                {
                    var source = literal ? piped : SessionState.Path.GetUnresolvedProviderPathFromPSPath(piped);
                    checkpoint = TorchLoader.Load(source, new TorchLoadOptions { WeightsOnly = WeightsOnly, MapLocation = Core.Devices.MapLocation.ToDevice("cpu"), Cancellation = Cancellation });
                    root = checkpoint.Root;
                }
            }
            var tensors = TensorInfo.From(root, hash: false).Select(t => (t.Name, t.Tensor!)).ToList();
            if (tensors.Count == 0)
            {
                WriteError(new ErrorRecord(new ArgumentException("The input holds no tensors; nothing to export."), "NoTensors", ErrorCategory.InvalidData, InputObject));
                return;
            }
            if (File.Exists(target) && !Force)
            {
                WriteError(new ErrorRecord(new IOException($"'{target}' exists; use -Force to replace it."), "DestinationExists", ErrorCategory.ResourceExists, target));
                return;
            }
            if (!ShouldProcess(target, $"Write {tensors.Count} tensors as safetensors")) return;
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal) { ["format"] = "pt" };
            if (checkpoint?.Format == "dcp")
            {
                // a DCP folder's non-tensor entries: those JSON can hold go into __metadata__, the rest are named
                var values = Core.Dcp.DcpExport.NonTensorMetadata(checkpoint, out var leftOut);
                foreach (var (key, value) in values) metadata[key] = value;
                if (leftOut.Count > 0) WriteWarning($"Non-tensor entries that JSON cannot hold are not exported: {string.Join(", ", leftOut)}");
            }
            foreach (DictionaryEntry e in Metadata ?? new Hashtable()) metadata[e.Key.ToString()!] = e.Value?.ToString() ?? "";
            var result = SafetensorsFile.Write(target, tensors, metadata, overwrite: Force, Cancellation);
            if (result.DroppedShared.Count > 0)
                WriteWarning($"Shared tensors written once (safetensors stores no aliases): dropped {string.Join(", ", result.DroppedShared)}");
            WriteObject(new FileInfo(target));
        });
    }
}

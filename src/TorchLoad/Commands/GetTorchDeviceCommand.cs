using System.Management.Automation;
using TorchLoad.Core.Devices;

namespace TorchLoad.Commands;

/// <summary>Lists the devices storages can be placed on: cpu, ilgpu-cpu and cuda:N.</summary>
[Cmdlet(VerbsCommon.Get, "TorchDevice")]
[OutputType(typeof(DeviceInfo))]
public sealed class GetTorchDeviceCommand : TorchCmdletBase
{
    [Parameter(Position = 0)]
    [SupportsWildcards]
    public string Name { get; set; } = "*";

    protected override void EndProcessing()
    {
        var pattern = new WildcardPattern(Name, WildcardOptions.IgnoreCase);
        foreach (var d in DeviceRegistry.List().Where(d => pattern.IsMatch(d.Name))) WriteObject(d);
    }
}

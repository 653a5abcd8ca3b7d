using System.Management.Automation;
using TorchLoad.Core.Errors;
using TorchLoad.Core.Pickle;

namespace TorchLoad.Commands;

/// <summary>torch.serialization.add_safe_globals: allows globals for every later load in this process.</summary>
[Cmdlet(VerbsCommon.Add, "TorchSafeGlobal")]
[OutputType(typeof(void))]
public sealed class AddTorchSafeGlobalCommand : TorchCmdletBase
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true)]
    [ArgumentCompleter(typeof(SafeGlobalCompleter))]
    [ValidateNotNullOrEmpty]
    public string[] Name { get; set; } = [];

    protected override void ProcessRecord()
    {
        foreach (var n in Name)
        {
            try { SafeGlobalRegistry.Add([n]); }
            catch (TorchLoadException e) { WriteError(ErrorRecordFactory.From(e, n)); }
        }
    }
}

/// <summary>torch.serialization.get_safe_globals: the user-added names (not the defaults).</summary>
[Cmdlet(VerbsCommon.Get, "TorchSafeGlobal")]
[OutputType(typeof(string))]
public sealed class GetTorchSafeGlobalCommand : TorchCmdletBase
{
    protected override void EndProcessing()
    {
        foreach (var n in SafeGlobalRegistry.Get()) WriteObject(n);
    }
}

/// <summary>torch.serialization.clear_safe_globals.</summary>
[Cmdlet(VerbsCommon.Clear, "TorchSafeGlobal", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(void))]
public sealed class ClearTorchSafeGlobalCommand : TorchCmdletBase
{
    protected override void EndProcessing()
    {
        var names = SafeGlobalRegistry.Get();
        if (names.Count > 0 && ShouldProcess($"{names.Count} safe globals ({string.Join(", ", names.Take(5))}{(names.Count > 5 ? ", ..." : "")})", "Clear"))
            SafeGlobalRegistry.Clear();
    }
}

using System.Management.Automation;
using TorchLoad.Core.Devices;
using TorchLoad.Core.Tensors;

namespace TorchLoad.Commands;

/// <summary>
/// torch.serialization.register_package in PowerShell form: a handler for custom location tags
/// (e.g. <c>npu:0</c>). Default placement runs handlers in priority order; the first whose
/// deserializer returns a storage wins.
/// </summary>
[Cmdlet(VerbsLifecycle.Register, "TorchLocationHandler")]
[OutputType(typeof(LocationHandler))]
public sealed class RegisterTorchLocationHandlerCommand : TorchCmdletBase
{
    /// <summary>Lower runs first; built-ins are cpu 10, ilgpu/cuda 20, meta 22.</summary>
    [Parameter(Mandatory = true, Position = 0)]
    public int Priority { get; set; }

    /// <summary>{ param($storage, $location) ... } returning a storage (placed) or $null (not mine).</summary>
    [Parameter(Mandatory = true, Position = 1)]
    public ScriptBlock? Deserializer { get; set; }

    /// <summary>{ param($storage) ... } returning the storage's location tag or $null.</summary>
    [Parameter]
    public ScriptBlock? Tagger { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string Name { get; set; } = "user";

    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void EndProcessing()
    {
        // Script text, not the bound block: handlers may run in other runspaces (ForEach-Object -Parallel).
        var deserializer = Deserializer!.ToString();
        var tagger = Tagger?.ToString();
        var handler = new LocationHandler(Priority, Name,
            tagger is null ? null : s => Run(tagger, s) as string,
            (s, tag) => Run(deserializer, s, tag) as TorchStorage);
        LocationRegistry.Register(handler);
        if (PassThru) WriteObject(handler);
    }

    private static object? Run(string script, params object[] args)
    {
        var results = ScriptBlock.Create(script).Invoke(args);
        var last = results.Count == 0 ? null : results[^1];
        return last is PSObject p ? p.BaseObject : last;
    }
}

/// <summary>Lists the location handlers in the order default placement runs them.</summary>
[Cmdlet(VerbsCommon.Get, "TorchLocationHandler")]
[OutputType(typeof(LocationHandler))]
public sealed class GetTorchLocationHandlerCommand : TorchCmdletBase
{
    protected override void EndProcessing()
    {
        foreach (var h in LocationRegistry.Handlers) WriteObject(h);
    }
}

/// <summary>Removes every user-registered location handler, keeping the built-ins.</summary>
[Cmdlet(VerbsCommon.Reset, "TorchLocationHandler", SupportsShouldProcess = true)]
[OutputType(typeof(void))]
public sealed class ResetTorchLocationHandlerCommand : TorchCmdletBase
{
    protected override void EndProcessing()
    {
        if (ShouldProcess("user-registered location handlers", "Remove")) LocationRegistry.Reset();
    }
}

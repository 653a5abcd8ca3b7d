using System.Management.Automation;

namespace TorchLoad.Commands;

/// <summary>
/// What the cmdlets that read checkpoint files share: -LiteralPath. -Path (wildcards) is declared by each kind below,
/// which differ in whether the pipeline binds paths to it by value.
/// </summary>
public abstract class CheckpointPathCmdletBase : TorchCmdletBase
{
    /// <summary>Checkpoint paths used verbatim.</summary>
    [Parameter(Mandatory = true, ParameterSetName = LiteralPathSet, ValueFromPipelineByPropertyName = true)]
    [Alias("PSPath", "LP", "FullName")] // a piped FileInfo is literal: a[1].pt is a name, not a pattern
    [ValidateNotNullOrEmpty]
    public string[]? LiteralPath { get; set; }
}

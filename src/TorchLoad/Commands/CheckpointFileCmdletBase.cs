using System.Management.Automation;
using TorchLoad.Core;

namespace TorchLoad.Commands;

/// <summary>
/// Import-TorchCheckpoint and Test-TorchCheckpoint: checkpoints as -Path (wildcards), -LiteralPath or -InputStream
/// (torch.load's file name or file object), paths and streams also from the pipeline, one result each.
/// </summary>
public abstract class CheckpointFileCmdletBase : CheckpointPathCmdletBase
{
    /// <summary>Checkpoint paths; wildcards allowed.</summary>
    [Parameter(Mandatory = true, Position = 0, ParameterSetName = PathSet, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[]? Path { get; set; }

    /// <summary>A Stream (read from its current position) or a byte array: torch.load's file object.</summary>
    [Parameter(Mandatory = true, ParameterSetName = InputStreamSet, ValueFromPipeline = true)]
    [StreamInput]
    public Stream? InputStream { get; set; }

    /// <summary>The most bytes of a non-seekable -InputStream that are buffered in memory.</summary>
    [Parameter]
    [ValidateRange(1L, long.MaxValue)]
    public long MaxStreamBytes { get; set; } = LoadLimits.Default.MaxStreamBytes;

    /// <summary>-Path or -LiteralPath resolved (see <see cref="TorchCmdletBase.ResolvePaths"/>).</summary>
    protected IEnumerable<string> ResolvedPaths() =>
        ResolvePaths(ParameterSetName == LiteralPathSet ? LiteralPath : Path, ParameterSetName == LiteralPathSet);
}

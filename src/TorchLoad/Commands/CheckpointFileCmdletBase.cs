using System.Management.Automation;
using TorchLoad.Core;

namespace TorchLoad.Commands;

/// <summary>
/// Import-TorchCheckpoint and Test-TorchCheckpoint: checkpoints as -Path (wildcards), -LiteralPath, -InputFile or
/// -InputStream (torch.load's file name or file object), paths, files and streams also from the pipeline, one result each.
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

    /// <summary>
    /// A file or folder from Get-ChildItem or Get-Item, its full name used verbatim. Piped files bind here by value:
    /// PowerShell binds a piped FileInfo to -LiteralPath by looking its PSPath property up, ~20 µs a file (more than
    /// auditing a small checkpoint), and by value in about half that.
    /// </summary>
    [Parameter(Mandatory = true, ParameterSetName = InputFileSet, ValueFromPipeline = true)]
    public FileSystemInfo? InputFile { get; set; }

    /// <summary>The most bytes of a non-seekable -InputStream that are buffered in memory.</summary>
    [Parameter]
    [ValidateRange(1L, long.MaxValue)]
    public long MaxStreamBytes { get; set; } = LoadLimits.Default.MaxStreamBytes;

    /// <summary>-Path or -LiteralPath resolved (see <see cref="TorchCmdletBase.ResolvePaths"/>), or -InputFile's full name.</summary>
    protected IEnumerable<string> ResolvedPaths() => ParameterSetName switch
    {
        InputFileSet => [InputFile!.FullName],
        LiteralPathSet => ResolvePaths(LiteralPath, literal: true),
        _ => ResolvePaths(Path, literal: false),
    };
}

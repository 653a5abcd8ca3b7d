using System.Management.Automation;
using TorchLoad.Core;

namespace TorchLoad.Commands;

/// <summary>
/// Get-TorchStorage, Get-TorchTensor and Measure-TorchTensor: a checkpoint as -Path (wildcards), -LiteralPath or
/// -InputStream, or a loaded object from the pipeline (-InputObject). A piped file or path string is read as a file,
/// a piped stream or byte array as a stream.
/// </summary>
public abstract class CheckpointOrObjectCmdletBase : CheckpointPathCmdletBase
{
    protected const string InputSet = "InputObject";

    [Parameter(Mandatory = true, Position = 0, ParameterSetName = PathSet, ValueFromPipelineByPropertyName = true)]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[]? Path { get; set; }

    /// <summary>A loaded checkpoint or anything holding tensors (a tensor, Get-TorchTensor rows, a storage).</summary>
    [Parameter(Mandatory = true, ParameterSetName = InputSet, ValueFromPipeline = true)]
    [AllowNull]
    public object? InputObject { get; set; }

    /// <summary>A Stream (read from its current position) or a byte array holding a checkpoint.</summary>
    [Parameter(Mandatory = true, ParameterSetName = InputStreamSet)]
    [StreamInput]
    public Stream? InputStream { get; set; }

    /// <summary>The most bytes of a non-seekable stream that are buffered in memory.</summary>
    [Parameter(ParameterSetName = InputStreamSet)]
    [Parameter(ParameterSetName = InputSet)]
    [ValidateRange(1L, long.MaxValue)]
    public long MaxStreamBytes { get; set; } = LoadLimits.Default.MaxStreamBytes;

    /// <summary>One ProcessRecord: files (paths, literal or not), a stream with its name, or a loaded object (unwrapped from its PSObject).</summary>
    protected void ProcessInput(Action<string[]?, bool> files, Action<Stream, string> stream, Action<object?> loaded)
    {
        if (ParameterSetName == InputStreamSet) { ProcessInputStream(InputStream!, stream); return; }
        if (ParameterSetName == InputSet)
        {
            var input = InputObject is PSObject p ? p.BaseObject : InputObject;
            // Get-ChildItem *.pt | Get-TorchStorage: a file (or path string) binds here by value; a FileInfo is literal
            if (TryGetPipedPath(input, out var piped, out var literal)) { files([piped], literal); return; }
            if (AsInputStream(input) is { } s) { ProcessInputStream(s, stream); return; }
            loaded(input);
            return;
        }
        files(ParameterSetName == LiteralPathSet ? LiteralPath : Path, ParameterSetName == LiteralPathSet);
    }
}

using System.Management.Automation;
using TorchLoad.Core.Errors;

namespace TorchLoad.Commands;

/// <summary>What every TorchLoad cmdlet shares: path resolution, Ctrl+C, and exception to ErrorRecord mapping.</summary>
public abstract class TorchCmdletBase : PSCmdlet
{
    protected const string PathSet = "Path";
    protected const string LiteralPathSet = "LiteralPath";

    private readonly CancellationTokenSource _cancel = new();

    protected CancellationToken Cancellation => _cancel.Token;

    protected override void StopProcessing() => _cancel.Cancel();

    /// <summary>Resolves -Path (wildcards) or -LiteralPath to file-system paths (files, or DCP checkpoint folders); a path that does not resolve is a non-terminating error.</summary>
    protected IEnumerable<string> ResolvePaths(string[]? paths, bool literal)
    {
        foreach (var p in paths ?? [])
        {
            List<string> resolved = [];
            try
            {
                if (literal)
                {
                    var full = SessionState.Path.GetUnresolvedProviderPathFromPSPath(p);
                    if (!File.Exists(full) && !Directory.Exists(full)) throw new ItemNotFoundException($"Cannot find path '{full}' because it does not exist.");
                    resolved.Add(full);
                }
                else
                {
                    resolved.AddRange(GetResolvedProviderPathFromPSPath(p, out var provider));
                    if (provider.Name != "FileSystem") throw new ArgumentException($"'{p}' is not a file-system path.");
                }
            }
            catch (Exception e) when (e is ItemNotFoundException or ArgumentException or NotSupportedException or System.Management.Automation.DriveNotFoundException or ProviderNotFoundException)
            {
                WriteError(new ErrorRecord(e, "PathNotFound", ErrorCategory.ObjectNotFound, p));
                continue;
            }
            // a folder goes on too: a DCP checkpoint is a folder (one without .metadata fails as NotACheckpoint)
            foreach (var r in resolved) yield return r;
        }
    }

    /// <summary>
    /// A file (FileInfo, from Get-ChildItem) or a path string that arrived where a loaded object was
    /// expected (pipeline by value): the path to load, and whether it is literal (a FileInfo's full name).
    /// </summary>
    protected static bool TryGetPipedPath(object? input, out string path, out bool literal)
    {
        (path, literal) = input switch
        {
            FileSystemInfo fi => (fi.FullName, true),
            string s => (s, false),
            _ => ("", false),
        };
        return input is FileSystemInfo or string;
    }

    /// <summary>-MapLocation to Core's form; a bad value ends the command with InvalidMapLocation (a parameter error).</summary>
    protected Core.Devices.MapLocation? ConvertMapLocation(object? value)
    {
        try { return MapLocationConverter.Convert(value); }
        catch (ArgumentException e)
        {
            ThrowTerminatingError(new ErrorRecord(e, "InvalidMapLocation", ErrorCategory.InvalidArgument, value));
            return null;
        }
    }

    /// <summary>Runs <paramref name="action"/>; a TorchLoadException becomes a non-terminating error for <paramref name="target"/>.</summary>
    protected void Try(object? target, Action action)
    {
        try { action(); }
        catch (TorchLoadException e) when (e.Reason == TorchLoadErrorReason.Cancelled)
        {
            ThrowTerminatingError(ErrorRecordFactory.From(e, target));
        }
        catch (TorchLoadException e)
        {
            WriteError(ErrorRecordFactory.From(e, target));
        }
        catch (InvalidOperationException e)
        {
            WriteError(new ErrorRecord(e, "InvalidOperation", ErrorCategory.InvalidOperation, target));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // a destination that cannot be written (Export-TorchSafetensors): this item fails, the pipeline goes on
            WriteError(new ErrorRecord(e, "IOError", ErrorCategory.WriteError, target));
        }
    }
}

using System.Management.Automation;
using TorchLoad.Core.Errors;

namespace TorchLoad.Commands;

/// <summary>What every TorchLoad cmdlet shares: path resolution, Ctrl+C, and exception to ErrorRecord mapping.</summary>
public abstract class TorchCmdletBase : PSCmdlet, IDisposable
{
    protected const string PathSet = "Path";
    protected const string LiteralPathSet = "LiteralPath";
    protected const string InputStreamSet = "InputStream";
    protected const string InputFileSet = "InputFile";

    private readonly CancellationTokenSource _cancel = new();

    protected CancellationToken Cancellation => _cancel.Token;

    protected override void StopProcessing() => _cancel.Cancel();

    /// <summary>Files audited or loaded on workers, written in input order (see <see cref="OrderedWork"/>).</summary>
    internal OrderedWork Work { get; } = new();

    /// <summary>PowerShell disposes the command when its pipeline ends, stopped or not: work still in flight is cancelled and awaited.</summary>
    public void Dispose()
    {
        _cancel.Cancel();
        Work.Abandon();
        _cancel.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>
    /// Resolves -Path (wildcards) or -LiteralPath to file-system paths (files, or DCP checkpoint folders); a pattern
    /// that matches nothing is a non-terminating error here, a named path that does not exist one when it is opened
    /// (see <see cref="TryFile"/>).
    /// </summary>
    protected IEnumerable<string> ResolvePaths(string[]? paths, bool literal)
    {
        foreach (var p in paths ?? [])
        {
            string? named = null; // one path, or what a pattern matched: no list per named path
            List<string>? matched = null;
            try
            {
                if (literal || !WildcardPattern.ContainsWildcardCharacters(p) && !p.Contains('`'))
                {
                    // a -Path without wildcard characters or escapes names one item, as -LiteralPath does; PowerShell's
                    // globbing costs ~0.4 ms a path (it reads /proc/self/mountinfo five times), more than auditing a small
                    // file. Nor is it looked up first: the load opens it anyway, and a stat on this thread cost ~5 µs a
                    // path (1,000 audits: ~3 ms of ~33); one that does not exist fails to open, and TryFile says PathNotFound.
                    named = FileSystemPath(p);
                }
                else
                {
                    matched = [.. GetResolvedProviderPathFromPSPath(p, out var provider)];
                    if (provider.Name != "FileSystem") throw new ArgumentException($"'{p}' is not a file-system path.");
                }
            }
            catch (Exception e) when (e is ItemNotFoundException or ArgumentException or NotSupportedException or System.Management.Automation.DriveNotFoundException or ProviderNotFoundException)
            {
                Work.WriteReady(); // after the results of the files before it
                WriteError(new ErrorRecord(e, "PathNotFound", ErrorCategory.ObjectNotFound, p));
                continue;
            }
            // a folder goes on too: a DCP checkpoint is a folder (one without .metadata fails as NotACheckpoint)
            if (named is not null) yield return named;
            else foreach (var r in matched!) yield return r;
        }
    }

    /// <summary>
    /// A literal path as a file-system path. A fully qualified path while the current location is a file-system
    /// one is the file itself (normalized); anything else (relative, ~, drive- or provider-qualified) goes through
    /// PowerShell, which resolves a plain absolute path at ~80 µs (it reads the mount table each time).
    /// </summary>
    private string FileSystemPath(string path)
    {
        // Get-ChildItem's PSPath names the provider: the file-system path follows it
        if (path.StartsWith(FileSystemProviderPrefix, StringComparison.OrdinalIgnoreCase) && System.IO.Path.IsPathFullyQualified(path.AsSpan(FileSystemProviderPrefix.Length)))
            return System.IO.Path.GetFullPath(path[FileSystemProviderPrefix.Length..]);
        if (System.IO.Path.IsPathFullyQualified(path) && SessionState.Path.CurrentLocation.Provider.Name == "FileSystem")
            return System.IO.Path.GetFullPath(path);
        return SessionState.Path.GetUnresolvedProviderPathFromPSPath(path);
    }

    private const string FileSystemProviderPrefix = @"Microsoft.PowerShell.Core\FileSystem::";

    /// <summary>True when nothing is at <paramref name="path"/> (asked only after it failed to open: see <see cref="ResolvePaths"/>).</summary>
    protected static bool IsMissing(string path) => !File.Exists(path) && !Directory.Exists(path);

    protected static ErrorRecord PathNotFound(string path) =>
        new(new ItemNotFoundException($"Cannot find path '{path}' because it does not exist."), "PathNotFound", ErrorCategory.ObjectNotFound, path);

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

    /// <summary>
    /// A piped or bound object that is checkpoint bytes rather than a path or a loaded object: a Stream, a byte
    /// array (a MemoryStream over it, read in place), or one byte of an array that PowerShell enumerated into the
    /// pipeline (collected until the bytes end). Null for anything else.
    /// </summary>
    protected static Stream? AsInputStream(object? input) => StreamInputAttribute.Convert(input is PSObject p ? p.BaseObject : input) as Stream;

    private MemoryStream? _pipedBytes;

    /// <summary>
    /// One -InputStream value: a piped byte is collected (<c>$bytes | Cmdlet</c> enumerates the array), anything
    /// else is loaded now, after the bytes collected before it. Call <see cref="EndInputStreams"/> in EndProcessing.
    /// </summary>
    protected void ProcessInputStream(Stream stream, Action<Stream, string> load)
    {
        if (stream is PipedByte b)
        {
            (_pipedBytes ??= new MemoryStream()).WriteByte(b.Value);
            return;
        }
        EndInputStreams(load); // also writes the results of files still in flight: streams are read here, in order
        load(stream, StreamName(stream));
    }

    /// <summary>Writes the results of files still in flight, then loads the bytes collected from the pipeline, if any.</summary>
    protected void EndInputStreams(Action<Stream, string> load)
    {
        Work.WriteReady();
        if (_pipedBytes is not { } bytes) return;
        _pipedBytes = null;
        bytes.Position = 0;
        load(bytes, "(piped bytes)");
    }

    /// <summary>How results and messages name a stream: a FileStream's file, else <c>(stream)</c>.</summary>
    protected static string StreamName(Stream stream) => stream is FileStream f ? f.Name : "(stream)";

    /// <summary>-Mmap maps a file: with a stream it is a parameter error, raised before anything is read.</summary>
    protected void RefuseMmapWithStream(bool mmap)
    {
        if (!mmap) return;
        ThrowTerminatingError(new ErrorRecord(
            new ParameterBindingException("-Mmap reads storages from their file when they are used; it cannot be combined with -InputStream (a stream or byte array). Load the stream without -Mmap, or save it to a file first."),
            "MmapWithInputStream", ErrorCategory.InvalidArgument, null));
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

    /// <summary>
    /// <see cref="Try"/> for a file <see cref="ResolvePaths"/> named: a load that cannot open it because nothing is
    /// there is PathNotFound (paths are not looked up before they are opened).
    /// </summary>
    protected void TryFile(string file, Action action) => Try(file, action, namedPath: true);

    /// <summary>Runs <paramref name="action"/>; a TorchLoadException becomes a non-terminating error for <paramref name="target"/>.</summary>
    protected void Try(object? target, Action action, bool namedPath = false)
    {
        try { action(); }
        catch (TorchLoadException e) when (e.Reason == TorchLoadErrorReason.Cancelled)
        {
            ThrowTerminatingError(ErrorRecordFactory.From(e, target));
        }
        catch (TorchLoadException e) when (namedPath && e.Reason == TorchLoadErrorReason.InvalidArgument && target is string path && IsMissing(path))
        {
            WriteError(PathNotFound(path));
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

/// <summary>
/// -InputStream's binding: a Stream as it is, a byte array as a MemoryStream over it (no copy), and a single byte
/// (an array PowerShell enumerated into the pipeline) as a <see cref="PipedByte"/> to collect. Without this a
/// byte array bound to -Path as one path per byte ("Cannot find path '80'").
/// </summary>
public sealed class StreamInputAttribute : ArgumentTransformationAttribute
{
    public override object? Transform(EngineIntrinsics engineIntrinsics, object? inputData) =>
        Convert(inputData is PSObject p ? p.BaseObject : inputData) ?? inputData;

    internal static object? Convert(object? value) => value switch
    {
        Stream s => s,
        byte[] bytes => new MemoryStream(bytes, 0, bytes.Length, writable: false, publiclyVisible: true),
        byte b => new PipedByte(b),
        _ => null,
    };
}

/// <summary>One byte of an enumerated byte array on its way through the pipeline (see <see cref="StreamInputAttribute"/>).</summary>
public sealed class PipedByte(byte value) : MemoryStream([value], writable: false)
{
    public byte Value { get; } = value;
}


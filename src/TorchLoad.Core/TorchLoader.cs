using TorchLoad.Core.Archive;
using TorchLoad.Core.Errors;

namespace TorchLoad.Core;

/// <summary>
/// The one entry point the cmdlets use: torch.load for a file or a stream. Detects the format by content
/// (zip, tar, legacy stream), never by extension, and turns every failure into a
/// <see cref="TorchLoadException"/> with a stable reason.
/// </summary>
public static class TorchLoader
{
    public static TorchCheckpoint Load(string path, TorchLoadOptions? options = null)
    {
        options ??= new TorchLoadOptions();
        if (TryOpenCheckpointFile(path) is { } file) return Load(file, null, path, options, ownsSource: true);
        if (Dcp.DcpFolder.TryResolve(path, out var folder)) return Guard(path, () => Dcp.DcpCheckpoint.Load(folder, options)); // a folder, or its .metadata
        if (ShardedCheckpoint.IsIndex(path)) return Guard(path, () => ShardedCheckpoint.Load(path, options));
        return Load(null, () => new FileSource(path), path, options, ownsSource: true);
    }

    /// <summary>
    /// The file at <paramref name="path"/> when it is one checkpoint file (not a DCP <c>.metadata</c> or a sharded
    /// index) that opens at once, or null. Opening first saves the stat that tells a DCP folder from a file, one of
    /// the few system calls a small checkpoint costs.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static FileSource? TryOpenCheckpointFile(string path) =>
        ShardedCheckpoint.IsIndex(path) || Path.GetFileName(path) == Dcp.DcpFolder.MetadataName ? null : FileSource.TryOpenRegular(path);

    /// <summary>
    /// torch.load for a file object: a stream from its current position to its end. A seekable stream
    /// (FileStream, MemoryStream) is read in place; a non-seekable one (GZipStream, an HTTP response) is
    /// buffered in memory, at most <see cref="LoadLimits.MaxStreamBytes"/>. <c>-Mmap</c> needs a file.
    /// </summary>
    /// <param name="name">How messages and results name the stream.</param>
    public static TorchCheckpoint Load(Stream stream, TorchLoadOptions? options = null, string name = "(stream)")
    {
        ArgumentNullException.ThrowIfNull(stream);
        options ??= new TorchLoadOptions();
        if (options.Mmap) throw new TorchLoadException(TorchLoadErrorReason.InvalidArgument, "-Mmap reads storages from their file later; it cannot be used with a stream.");
        return Load(null, () => FileSource.FromStream(stream, options.Limits.MaxStreamBytes, name), name, options, ownsSource: true);
    }

    /// <summary>A load from a source the caller keeps open afterwards (audits read it again for CRCs).</summary>
    internal static TorchCheckpoint Load(FileSource source, TorchLoadOptions options) =>
        Load(source, null, source.Path, options, ownsSource: false);

    /// <param name="opened">The source when it is open already (a file opened at once), else null and <paramref name="open"/> opens it.</param>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // once per file: see EngineWarmup
    private static TorchCheckpoint Load(FileSource? opened, Func<FileSource>? open, string name, TorchLoadOptions options, bool ownsSource)
    {
        LoadSession? session = null;
        try
        {
            try
            {
                session = opened is not null ? new LoadSession(opened, options, ownsSource) : new LoadSession(open!, options, ownsSource);
                var checkpoint = Detect(session) switch
                {
                    CheckpointFormat.Zip => ZipCheckpoint.Load(session),
                    CheckpointFormat.Tar => TarCheckpoint.Load(session),
                    CheckpointFormat.Safetensors => SafetensorsCheckpoint.Load(session),
                    _ => LegacyCheckpoint.Load(session),
                };
                // Before and after: the bytes just read are those of one version of the file, or the load fails
                // (torch.save rewrites a file in place, truncating it first, while audits read the same folder).
                if (session.File.HasChanged) throw session.File.Changed(); // freed by the catch below
                return checkpoint;
            }
            catch (Exception e) when (session is not null && e is not OperationCanceledException
                                      && !(e is TorchLoadException t && t.Reason is TorchLoadErrorReason.Cancelled or TorchLoadErrorReason.CheckpointChanged)
                                      && session.File.HasChanged)
            {
                // whatever went wrong (a truncated record, a pickle cut in half), the cause is the file changing under the load
                FreeStorages(session);
                throw session.File.Changed(e);
            }
            catch when (session is not null)
            {
                FreeStorages(session); // a load that fails returns nothing: its buffers (and -Mmap file handles) go now, not at the next GC
                throw;
            }
            finally
            {
                session?.Dispose();
            }
        }
        catch (Exception e) when (e is not TorchLoadException && AsLoadError(e, name) is { } mapped)
        {
            throw mapped; // as Guard does
        }
    }

    /// <summary>Turns every failure into a TorchLoadException with a stable reason.</summary>
    private static TorchCheckpoint Guard(string path, Func<TorchCheckpoint> load)
    {
        try
        {
            return load();
        }
        catch (Exception e) when (e is not TorchLoadException && AsLoadError(e, path) is { } mapped)
        {
            throw mapped;
        }
    }

    /// <summary>
    /// The typed error for an exception a load (or an audit) met, or null for one that must propagate as it is.
    /// A reader bug or a stream's own failure must still surface with a stable id, never as a raw .NET exception.
    /// </summary>
    internal static TorchLoadException? AsLoadError(Exception e, string path) => e switch
    {
        TorchLoadException t => t,
        OperationCanceledException => new TorchLoadException(TorchLoadErrorReason.Cancelled, "The load was cancelled.", inner: e),
        OutOfMemoryException => new TorchLoadException(TorchLoadErrorReason.LimitExceeded, $"The checkpoint needs more memory than is available: {e.Message}", inner: e) { LimitName = "memory" },
        // InvalidDataException: a GZipStream (or another decoding stream) over corrupt data
        IOException or UnauthorizedAccessException or InvalidDataException => new TorchLoadException(TorchLoadErrorReason.InvalidArgument, $"Cannot read '{path}': {e.Message}", inner: e),
        ArgumentException or InvalidOperationException or InvalidCastException or IndexOutOfRangeException or NullReferenceException
            or OverflowException or FormatException or NotSupportedException or KeyNotFoundException =>
            new TorchLoadException(TorchLoadErrorReason.MalformedPickle, $"The checkpoint could not be read: {e.GetType().Name}: {e.Message}", inner: e),
        _ => null,
    };

    private static void FreeStorages(LoadSession session)
    {
        foreach (var s in session.StorageOrder) s.Dispose();
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // once per file: see EngineWarmup
    private static CheckpointFormat Detect(LoadSession session)
    {
        var file = session.File;
        if (file.Length == 0) throw new TorchLoadException(TorchLoadErrorReason.NotACheckpoint, "The file is empty.");
        Span<byte> head = stackalloc byte[(int)Math.Min(512, file.Length)];
        file.ReadExactly(0, head);
        if (head.StartsWith("PK\x03\x04"u8)) return CheckpointFormat.Zip;
        if (head.StartsWith("PYTORCH1"u8))
            throw new TorchLoadException(TorchLoadErrorReason.UnsupportedFormat, "This archive format comes from a PyTorch preview release (PYTORCH1) and is not supported.");
        if (TarCheckpoint.LooksLikeTar(head)) return CheckpointFormat.Tar;
        if (Safetensors.SafetensorsFile.LooksLikeSafetensors(head, file.Length)) return CheckpointFormat.Safetensors;
        if (head.StartsWith("PK"u8))
            throw new TorchLoadException(TorchLoadErrorReason.InvalidArchive, "The file starts like a zip archive but not with a local file header (PK\\3\\4), which torch.load requires.", null, 0);
        return CheckpointFormat.Legacy;
    }

    private enum CheckpointFormat { Zip, Legacy, Tar, Safetensors }
}

using TorchLoad.Core.Archive;
using TorchLoad.Core.Errors;

namespace TorchLoad.Core;

/// <summary>
/// The one entry point the cmdlets use: torch.load for a file. Detects the format by content
/// (zip, tar, legacy stream), never by extension, and turns every failure into a
/// <see cref="TorchLoadException"/> with a stable reason.
/// </summary>
public static class TorchLoader
{
    public static TorchCheckpoint Load(string path, TorchLoadOptions? options = null)
    {
        options ??= new TorchLoadOptions();
        LoadSession? session = null;
        try
        {
            if (Dcp.DcpFolder.TryResolve(path, out var folder)) return Dcp.DcpCheckpoint.Load(folder, options); // a folder, or its .metadata
            if (ShardedCheckpoint.IsIndex(path)) return ShardedCheckpoint.Load(path, options);
            session = new LoadSession(path, options);
            return Detect(session) switch
            {
                CheckpointFormat.Zip => ZipCheckpoint.Load(session),
                CheckpointFormat.Tar => TarCheckpoint.Load(session),
                CheckpointFormat.Safetensors => SafetensorsCheckpoint.Load(session),
                _ => LegacyCheckpoint.Load(session),
            };
        }
        catch (TorchLoadException)
        {
            throw;
        }
        catch (OperationCanceledException e)
        {
            throw new TorchLoadException(TorchLoadErrorReason.Cancelled, "The load was cancelled.", inner: e);
        }
        catch (OutOfMemoryException e)
        {
            throw new TorchLoadException(TorchLoadErrorReason.LimitExceeded, $"The checkpoint needs more memory than is available: {e.Message}", inner: e) { LimitName = "memory" };
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new TorchLoadException(TorchLoadErrorReason.InvalidArgument, $"Cannot read '{path}': {e.Message}", inner: e);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or InvalidCastException or IndexOutOfRangeException
                                      or NullReferenceException or OverflowException or FormatException or NotSupportedException or KeyNotFoundException)
        {
            // A reader bug must still surface as a typed, stable error, never as a raw .NET exception.
            throw new TorchLoadException(TorchLoadErrorReason.MalformedPickle, $"The checkpoint could not be read: {e.GetType().Name}: {e.Message}", inner: e);
        }
        finally
        {
            session?.Dispose();
        }
    }

    private static CheckpointFormat Detect(LoadSession session)
    {
        var file = session.File;
        if (file.Length == 0) throw new TorchLoadException(TorchLoadErrorReason.NotACheckpoint, "The file is empty.");
        var head = new byte[(int)Math.Min(512, file.Length)];
        file.ReadExactly(0, head);
        if (head.AsSpan().StartsWith("PK\x03\x04"u8)) return CheckpointFormat.Zip;
        if (head.AsSpan().StartsWith("PYTORCH1"u8))
            throw new TorchLoadException(TorchLoadErrorReason.UnsupportedFormat, "This archive format comes from a PyTorch preview release (PYTORCH1) and is not supported.");
        if (TarCheckpoint.LooksLikeTar(head)) return CheckpointFormat.Tar;
        if (Safetensors.SafetensorsFile.LooksLikeSafetensors(head, file.Length)) return CheckpointFormat.Safetensors;
        if (head.AsSpan().StartsWith("PK"u8))
            throw new TorchLoadException(TorchLoadErrorReason.InvalidArchive, "The file starts like a zip archive but not with a local file header (PK\\3\\4), which torch.load requires.", null, 0);
        return CheckpointFormat.Legacy;
    }

    private enum CheckpointFormat { Zip, Legacy, Tar, Safetensors }
}

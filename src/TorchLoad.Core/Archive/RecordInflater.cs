using System.Buffers;
using ICSharpCode.SharpZipLib.Zip.Compression;
using TorchLoad.Core.Errors;

namespace TorchLoad.Core.Archive;

/// <summary>
/// The one reader of deflated zip records, for a load (into the storage's buffer) and an audit (into a CRC): pooled
/// chunks of at most 1 MiB, exactly the size the directory entry declares, and InvalidArchive for a record that does
/// not inflate, whatever SharpZipLib throws.
/// </summary>
internal static class RecordInflater
{
    /// <summary>Receives the inflated bytes in order; <paramref name="at"/> is where they start in the record.</summary>
    public delegate void Chunk(ReadOnlySpan<byte> bytes, long at);

    /// <summary>The most bytes a file's deflated records may declare (each, and together in a load): MaxInflateRatio times its size, saturating.</summary>
    public static long Limit(LoadLimits limits, long fileLength) =>
        limits.MaxInflateRatio > long.MaxValue / Math.Max(fileLength, 1) ? long.MaxValue : limits.MaxInflateRatio * Math.Max(fileLength, 1);

    /// <summary>Inflates exactly record.Size bytes, streaming the compressed input, into <paramref name="chunk"/>; more or fewer bytes than declared is an error.</summary>
    public static void Inflate(FileSource file, ZipRecord record, CancellationToken cancel, Chunk chunk)
    {
        var inflater = new Inflater(noHeader: true);
        // pooled, and no larger than the record needs: a fresh megabyte per small deflated record was most of a small load's cost
        var input = ArrayPool<byte>.Shared.Rent((int)Math.Min(Math.Max(record.CompressedSize, 1), 1 << 20));
        var scratch = ArrayPool<byte>.Shared.Rent((int)Math.Min(Math.Max(record.Size, 0), (1 << 20) - 1) + 1); // one byte more than declared shows "too long"
        long consumed = 0, done = 0;
        try
        {
            while (true)
            {
                if (inflater.IsNeedingInput && consumed < record.CompressedSize)
                {
                    var n = (int)Math.Min(input.Length, record.CompressedSize - consumed);
                    file.ReadExactly(record.DataOffset + consumed, input.AsSpan(0, n), record.Name);
                    inflater.SetInput(input, 0, n);
                    consumed += n;
                }
                int got;
                try { got = inflater.Inflate(scratch, 0, scratch.Length); }
                catch (Exception e) when (e is IndexOutOfRangeException or ArgumentException or InvalidOperationException)
                {
                    // SharpZipLib fails on some corrupt Huffman tables with raw exceptions: report the record as corrupt
                    throw new TorchLoadException(TorchLoadErrorReason.InvalidArchive, $"Deflated record '{record.Name}' is corrupt: {e.Message}", record.Name, inner: e);
                }
                if (got == 0)
                {
                    if (inflater.IsFinished || inflater.IsNeedingDictionary || inflater.IsNeedingInput && consumed >= record.CompressedSize) break;
                    continue;
                }
                if (got > record.Size - done)
                    throw new TorchLoadException(TorchLoadErrorReason.InvalidArchive, $"Deflated record '{record.Name}' inflates to more than the {record.Size} bytes its directory entry declares", record.Name);
                chunk(scratch.AsSpan(0, got), done);
                done += got;
                cancel.ThrowIfCancellationRequested();
            }
        }
        catch (ICSharpCode.SharpZipLib.SharpZipBaseException e)
        {
            throw new TorchLoadException(TorchLoadErrorReason.InvalidArchive, $"Deflated record '{record.Name}' is corrupt: {e.Message}", record.Name, inner: e);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(input);
            ArrayPool<byte>.Shared.Return(scratch);
        }
        if (done != record.Size)
            throw new TorchLoadException(TorchLoadErrorReason.InvalidArchive, $"Deflated record '{record.Name}' inflates to {done} bytes, not the {record.Size} its directory entry declares", record.Name);
    }
}

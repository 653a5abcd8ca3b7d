using System.Diagnostics;
using System.Runtime.InteropServices;
using TorchLoad.Core;
using TorchLoad.Core.Archive;
using TorchLoad.Core.Audit;
using TorchLoad.Core.Errors;
using TorchLoad.Core.Pickle;
using static TorchLoad.Tests.Support.CheckpointBuilder;
using static TorchLoad.Tests.Support.PickleBuilder;

namespace TorchLoad.Tests;

/// <summary>
/// Files opened through libc on Linux (<see cref="NativeFile"/>: open, statx, pread, statx, close) instead of .NET's
/// file handle, which made eleven system calls for a small checkpoint. What .NET reported (a missing file, a folder)
/// is still reported the same way; a FIFO, which .NET's open would have waited on forever, is refused at once.
/// </summary>
public sealed class NativeFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "torchload-native", Guid.NewGuid().ToString("N"))).FullName;

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    private static bool LibcFiles => OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture is Architecture.X64 or Architecture.Arm64;

    private static byte[] Checkpoint() =>
        ZipOf(Pickle(OrderedDict(("w", Float32Tensor("0", 4, [4])))), ("0", Floats(1, 2, 3, 4)));

    private string Write(string name, byte[] bytes)
    {
        var path = Path.Combine(_dir, name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    [Fact]
    public void ARegularFile_IsOpenedThroughLibcOnLinux_AndReadsItsBytes()
    {
        var bytes = Checkpoint();
        var path = Write("a.pt", bytes);
        using var source = FileSource.TryOpenRegular(path);
        if (!LibcFiles)
        {
            Assert.Null(source); // elsewhere the .NET handle is the only way in
            return;
        }
        Assert.NotNull(source);
        Assert.Equal(bytes.Length, source!.Length);
        var read = new byte[bytes.Length];
        source.ReadExactly(0, read);
        Assert.Equal(bytes, read);
        Assert.False(source.HasChanged);
    }

    [Fact]
    public void AFileRewrittenOrTruncatedAfterItWasOpened_HasChanged()
    {
        var path = Write("b.pt", Checkpoint());
        using var source = new FileSource(path);
        Assert.False(source.HasChanged);
        File.SetLastWriteTimeUtc(path, File.GetLastWriteTimeUtc(path).AddSeconds(-5)); // same size, another time
        Assert.True(source.HasChanged);
        using var second = new FileSource(path);
        using (var h = File.OpenHandle(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite)) RandomAccess.SetLength(h, 10);
        Assert.True(second.HasChanged);
    }

    [Fact]
    public void AClosedFile_HasChanged_InsteadOfThrowing()
    {
        var source = new FileSource(Write("c.pt", Checkpoint()));
        source.Dispose(); // a storage read after its load was freed asks this too
        Assert.True(source.HasChanged);
    }

    [Fact]
    public void AMissingFileAndAFolder_AreReportedAsBefore()
    {
        var missing = Path.Combine(_dir, "missing.pt");
        var e = Assert.Throws<TorchLoadException>(() => new FileSource(missing));
        Assert.Equal(TorchLoadErrorReason.InvalidArgument, e.Reason);
        Assert.Contains("Cannot open", e.Message);
        Assert.Contains(missing, e.Message);
        Assert.Null(FileSource.TryOpenRegular(missing));
        Assert.Null(FileSource.TryOpenRegular(_dir)); // a folder: the caller looks for a DCP checkpoint
        Assert.Equal(TorchLoadErrorReason.InvalidArgument, Assert.Throws<TorchLoadException>(() => new FileSource(_dir)).Reason);
    }

    [Fact]
    public void PathsWithNonAsciiNamesAndLongPaths_Load()
    {
        var deep = string.Join('/', Enumerable.Range(0, 12).Select(i => $"dossier-numéro-{i:D2}-{new string('x', 80)}"));
        foreach (var name in new[] { "modèle-über-日本.pt", Path.Combine(deep, "m.pt") })
        {
            var path = Write(name, Checkpoint());
            Assert.True(System.Text.Encoding.UTF8.GetByteCount(path) > (name.Contains('/') ? 1024 : 0));
            var root = Assert.IsType<PyDict>(TorchLoader.Load(path).Root);
            Assert.Equal(4, Assert.IsType<Core.Tensors.TorchTensor>(root["w"]).Shape[0]);
            Assert.Equal(AuditVerdict.Safe, CheckpointAudit.Audit(path).Verdict);
        }
    }

    [Fact]
    public async Task AFifo_IsRefusedAtOnce_NotWaitedOn()
    {
        if (!LibcFiles) return; // FIFOs and the libc path are Linux's
        var fifo = Path.Combine(_dir, "pipe.pt");
        using (var mk = Process.Start(new ProcessStartInfo("mkfifo", [fifo]) { UseShellExecute = false })!) await mk.WaitForExitAsync();
        Assert.True(File.Exists(fifo));
        var load = Task.Run(() => Assert.Throws<TorchLoadException>(() => TorchLoader.Load(fifo)));
        var audit = Task.Run(() => CheckpointAudit.Audit(fifo));
        var both = Task.WhenAll(load, audit);
        Assert.True(await Task.WhenAny(both, Task.Delay(TimeSpan.FromSeconds(20))) == both, "opening a FIFO waited for a writer");
        var (refused, row) = (await load, await audit);
        Assert.Equal(TorchLoadErrorReason.InvalidArgument, refused.Reason);
        Assert.Contains("not a regular file", refused.Message);
        Assert.Equal(nameof(TorchLoadErrorReason.InvalidArgument), row.ErrorId);
    }
}

using TorchLoad.Core;
using TorchLoad.Core.Audit;
using TorchLoad.Core.Pickle;
using TorchLoad.Core.Tensors;
using TorchLoad.Tests.Hostile;
using TorchLoad.Tests.Support;
using static TorchLoad.Core.Errors.TorchLoadErrorReason;
using static TorchLoad.Tests.Hostile.HostileAssert;
using static TorchLoad.Tests.Support.PickleBuilder;

namespace TorchLoad.Tests;

/// <summary>DCP folders built like torch writes them: re-assembly, nesting, listing, -Mmap and the audit.</summary>
public sealed class DcpTests
{
    /// <summary>A folder with every chunk layout the assembler handles: Shard(0) (with an empty chunk), Shard(1) over two files, a transposed chunk, a 0-d tensor; nested and list paths; a bytes entry.</summary>
    internal static DcpFolderBuilder Sample()
    {
        var b = new DcpFolderBuilder();
        var w = b.Tensor("model.w", [5, 3], ([0, 0], [3, 3]), ([3, 0], [2, 3]));
        w.Chunks[1].File = "__1_0.distcp";
        b.Tensor("model.bias", [1, 3], ([0, 0], [1, 3]), ([1, 0], [0, 3]));
        var cols = b.Tensor("cols", [2, 4], ([0, 0], [2, 2]), ([0, 2], [2, 2]));
        cols.Chunks[1].File = "__1_0.distcp";
        var t = b.Tensor("t", [4, 3], ([0, 0], [4, 3]));
        t.Chunks[0].Transposed = true;
        b.Tensor("scalar", [], ([], []));
        b.Bytes("epoch", new PickleBuilder().Proto(2).Int(7).Stop().ToArray());
        b.Bytes("opt.groups.0.lr", new PickleBuilder().Proto(2).BinFloat(0.5).Stop().ToArray(), ["opt", "groups", 0L, "lr"]);
        return b;
    }

    private static void AssertValues(TorchTensor t, long[] shape)
    {
        Assert.Equal(shape, t.Shape);
        var values = (float[])t.ToArray();
        for (var i = 0; i < values.Length; i++) Assert.Equal(DcpFolderBuilder.ValueAt(i), values[i]);
    }

    [Fact]
    public void Chunks_are_reassembled_and_nested_as_dcp_to_torch_save_does()
    {
        using var box = new HostileSandbox();
        var folder = Sample().Write(Path.Combine(box.Dir, "ckpt"));
        var cp = TorchLoader.Load(folder);
        Assert.Equal("dcp", cp.Format);
        var root = Assert.IsType<PyDict>(cp.Root);
        Assert.False(root.ContainsKey("model")); // 'model.w' is a top-level key: planner_data is (fqn,), never split on dots
        AssertValues(Assert.IsType<TorchTensor>(root["model.w"]), [5, 3]);
        AssertValues(Assert.IsType<TorchTensor>(root["model.bias"]), [1, 3]);
        AssertValues(Assert.IsType<TorchTensor>(root["cols"]), [2, 4]);
        var transposed = Assert.IsType<TorchTensor>(root["t"]);
        AssertValues(transposed, [4, 3]);
        Assert.Equal([3L, 1], transposed.Stride);
        AssertValues(Assert.IsType<TorchTensor>(root["scalar"]), []);
        Assert.Equal(7L, root["epoch"]);
        var groups = Assert.IsType<List<object?>>(Assert.IsType<PyDict>(root["opt"])["groups"]);
        Assert.Equal(0.5, Assert.IsType<PyDict>(groups[0])["lr"]);
    }

    [Fact]
    public void Metadata_only_lists_tensors_with_chunks_and_files_without_reading_items()
    {
        using var box = new HostileSandbox();
        var folder = Sample().Write(Path.Combine(box.Dir, "ckpt"));
        // corrupt every item: a listing must not read them
        foreach (var f in Directory.GetFiles(folder, "*.distcp")) { var len = new FileInfo(f).Length; File.WriteAllBytes(f, new byte[len]); }
        var cp = TorchLoader.Load(folder, new TorchLoadOptions { MetadataOnly = true });
        var rows = TensorInfo.From(cp, hash: false).ToDictionary(r => r.Name);
        Assert.Equal(["model.w", "model.bias", "cols", "t", "scalar"], rows.Keys);
        Assert.Equal(2, rows["model.w"].ChunkCount);
        Assert.Equal(["__0_0.distcp", "__1_0.distcp"], rows["model.w"].Files!);
        Assert.Equal(60, rows["model.w"].ByteLength);
        Assert.Equal(8, cp.DcpChunks.Count);
        Assert.Contains(cp.DcpChunks, c => c.Name == "cols" && c.Offsets.SequenceEqual([0L, 2]) && c.File == "__1_0.distcp");
    }

    [Fact]
    public void Hashes_equal_those_of_the_same_tensors_in_a_torch_save_file()
    {
        using var box = new HostileSandbox();
        var folder = Sample().Write(Path.Combine(box.Dir, "ckpt"));
        var rows = TensorInfo.From(TorchLoader.Load(folder), hash: true).ToDictionary(r => r.Name);
        var n = 15;
        var values = Enumerable.Range(0, n).Select(i => (float)i).ToArray();
        var file = CheckpointBuilder.ZipOf(new PickleBuilder().Proto(2).Value(OrderedDict(("model.w", Float32Tensor("0", n, [5, 3])))).Stop().ToArray(), ("0", CheckpointBuilder.Floats(values)));
        var single = TensorInfo.From(CheckpointBuilder.Load(file).Root, hash: true).Single();
        Assert.Equal(single.Sha256, rows["model.w"].Sha256);
    }

    [Fact]
    public void Mmap_makes_a_single_raw_chunk_a_view_of_the_file_and_assembles_the_rest()
    {
        using var box = new HostileSandbox();
        var folder = Sample().Write(Path.Combine(box.Dir, "ckpt"));
        var root = (PyDict)TorchLoader.Load(folder, new TorchLoadOptions { Mmap = true }).Root!;
        var t = Assert.IsType<TorchTensor>(root["t"]);
        Assert.True(t.Storage!.IsMapped);
        AssertValues(t, [4, 3]);
        var w = Assert.IsType<TorchTensor>(root["model.w"]);
        Assert.False(w.Storage!.IsMapped);
        AssertValues(w, [5, 3]);
    }

    [Fact]
    public void The_metadata_path_loads_its_folder()
    {
        using var box = new HostileSandbox();
        var folder = Sample().Write(Path.Combine(box.Dir, "ckpt"));
        var root = (PyDict)TorchLoader.Load(Path.Combine(folder, ".metadata")).Root!;
        AssertValues(Assert.IsType<TorchTensor>(root["cols"]), [2, 4]);
    }

    [Fact]
    public void Audit_of_a_good_folder_is_safe_and_names_dcp_classes_allowed()
    {
        using var box = new HostileSandbox();
        var folder = Sample().Write(Path.Combine(box.Dir, "ckpt"));
        var result = CheckpointAudit.Audit(folder);
        Assert.Equal(AuditVerdict.Safe, result.Verdict);
        Assert.Equal("dcp", result.Format);
        Assert.Equal(5, result.TensorCount);
        Assert.Contains(result.Globals, g => g.Name == "torch.distributed.checkpoint.metadata.Metadata" && g.Verdict == "Allowed");
    }

    [Fact]
    public void Audit_finds_a_corrupt_crc_inside_an_item()
    {
        using var box = new HostileSandbox();
        var b = Sample();
        var folder = b.Write(Path.Combine(box.Dir, "ckpt"));
        var file = Path.Combine(folder, "__1_0.distcp");
        var bytes = File.ReadAllBytes(file);
        var payload = bytes.AsSpan().IndexOf(CheckpointBuilder.Floats(9, 10, 11));
        Assert.True(payload > 0);
        bytes[payload] ^= 0x55;
        File.WriteAllBytes(file, bytes);
        Assert.Equal(AuditVerdict.Corrupt, CheckpointAudit.Audit(folder).Verdict);
        Assert.Equal(AuditVerdict.Safe, CheckpointAudit.Audit(folder, verifyCrc: false).Verdict);
    }

    [Fact]
    public void MapLocation_SafeGlobal_and_the_limits_apply_as_for_files()
    {
        using var box = new HostileSandbox();
        var b = Sample();
        b.Bytes("args", new PickleBuilder().Proto(2).Global("argparse", "Namespace").Op(')').NewObj().Stop().ToArray());
        var folder = b.Write(Path.Combine(box.Dir, "ckpt"));
        Refused(box.Load(folder, weightsOnly: true), UnsafeGlobal, "argparse.Namespace");
        var root = (PyDict)box.Load(folder, weightsOnly: true, o => o with { SafeGlobals = ["argparse.Namespace"] }).Root!;
        Assert.Equal("argparse.Namespace", Assert.IsType<PyObject>(root["args"]).ClassName);

        var meta = (PyDict)TorchLoader.Load(folder, new TorchLoadOptions { WeightsOnly = false, MapLocation = Core.Devices.MapLocation.ToDevice("meta") }).Root!;
        Assert.Equal("meta", Assert.IsType<TorchTensor>(meta["model.w"]).Device);

        var e = Refused(box.Load(folder, weightsOnly: false, o => o with { Limits = LoadLimits.Default with { MaxContainerItems = 3 } }), LimitExceeded);
        Assert.Equal(nameof(LoadLimits.MaxContainerItems), e.LimitName);
    }
}

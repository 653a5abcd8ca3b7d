using TorchLoad.Core;
using TorchLoad.Core.Errors;
using TorchLoad.Core.Pickle;
using TorchLoad.Tests.Hostile;
using TorchLoad.Tests.Support;
using static TorchLoad.Core.Errors.TorchLoadErrorReason;
using static TorchLoad.Tests.Hostile.HostileAssert;
using static TorchLoad.Tests.Support.PickleBuilder;

namespace TorchLoad.Tests;

/// <summary>
/// Hostile DCP folders (dcp-format.md section 6; torch 2.6 ran code from .metadata and from a bytes entry,
/// read another checkpoint's data through '..' and returned uninitialised memory for gaps). Each is refused
/// with its stable reason in safe and permissive mode, within the sandbox's time and memory bounds, and the
/// structural ones also by the metadata-only listing (Get-TorchTensor without -Hash).
/// </summary>
public sealed class DcpHostileTests
{
    private static LoadOutcome Load(HostileSandbox box, DcpFolderBuilder b, bool weightsOnly, bool metadataOnly = false, string name = "ckpt") =>
        box.Load(b.Write(Path.Combine(box.Dir, name)), weightsOnly, o => o with { MetadataOnly = metadataOnly });

    /// <summary>One valid tensor "w" (5 x 3, two Shard(0) chunks in two files), to tamper with.</summary>
    private static DcpFolderBuilder Base(out DcpFolderBuilder.Entry w)
    {
        var b = new DcpFolderBuilder();
        w = b.Tensor("w", [5, 3], ([0, 0], [3, 3]), ([3, 0], [2, 3]));
        w.Chunks[1].File = "__1_0.distcp";
        return b;
    }

    public static TheoryData<bool, bool> Modes => new() { { true, false }, { false, false }, { true, true }, { false, true } };

    [Theory]
    [MemberData(nameof(Modes))]
    public void A_code_execution_global_in_metadata_is_refused_in_every_mode(bool weightsOnly, bool metadataOnly)
    {
        using var box = new HostileSandbox();
        var b = Base(out _);
        b.ExtraMetadataFields.Add(("exploit", Call("posix", "system", box.Touch)));
        Refused(Load(box, b, weightsOnly, metadataOnly), UnsafeGlobal, "posix.system");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_torch_allowlisted_global_is_still_not_a_dcp_class(bool weightsOnly)
    {
        using var box = new HostileSandbox();
        var b = Base(out _);
        b.ExtraMetadataFields.Add(("x", Call("collections", "OrderedDict")));
        Refused(Load(box, b, weightsOnly), UnsafeGlobal, "collections.OrderedDict");
    }

    [Fact]
    public void A_code_execution_global_in_a_bytes_entry_is_refused_in_safe_mode_and_inert_in_permissive_mode()
    {
        using var box = new HostileSandbox();
        var b = Base(out _);
        b.Bytes("payload", HostilePickle.Call("os", "system", box.Touch));
        Refused(Load(box, b, weightsOnly: true), UnsafeGlobal, "os.system");
        var root = (PyDict)Load(box, b, weightsOnly: false, name: "ckpt2").Root!;
        Assert.Equal("os.system", Assert.IsType<PyObject>(root["payload"]).ClassName);
        Assert.Null(Load(box, b, weightsOnly: true, metadataOnly: true, name: "ckpt3").Error); // a listing never reads bytes entries
    }

    [Theory]
    [InlineData("../other/__0_0.distcp")]
    [InlineData("..")]
    [InlineData(".")]
    [InlineData("")]
    [InlineData("/etc/passwd")]
    [InlineData("\\\\server\\share\\x")]
    [InlineData("C:x.distcp")]
    [InlineData("sub/__0_0.distcp")]
    [InlineData("a\u0001b")]
    public void A_relative_path_that_is_not_a_plain_file_in_the_folder_is_an_invalid_record_name(string path)
    {
        using var box = new HostileSandbox();
        Directory.CreateDirectory(Path.Combine(box.Dir, "other"));
        box.Write("other/__0_0.distcp", DcpFolderBuilder.ChunkItem([5, 3], [0, 0], [3, 3]));
        foreach (var (weightsOnly, metadataOnly) in new[] { (true, false), (false, false), (true, true) })
        {
            var b = Base(out var w);
            w.Chunks[0].RelativePath = path;
            Refused(Load(box, b, weightsOnly, metadataOnly, $"ckpt{weightsOnly}{metadataOnly}"), InvalidRecordName);
        }
    }

    [Fact]
    public void A_data_file_that_is_a_folder_or_a_link_is_an_invalid_record_name()
    {
        using var box = new HostileSandbox();
        var b = Base(out var w);
        var folder = b.Write(Path.Combine(box.Dir, "ckpt"));
        var outside = box.Write("outside.distcp", File.ReadAllBytes(Path.Combine(folder, "__1_0.distcp")));
        File.Delete(Path.Combine(folder, "__1_0.distcp"));
        File.CreateSymbolicLink(Path.Combine(folder, "__1_0.distcp"), outside);
        Refused(box.Load(folder, true), InvalidRecordName);
        File.Delete(Path.Combine(folder, "__1_0.distcp"));
        Directory.CreateDirectory(Path.Combine(folder, "__1_0.distcp"));
        Refused(box.Load(folder, true), InvalidRecordName);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void A_range_past_the_end_of_its_file_is_truncated(bool weightsOnly, bool metadataOnly)
    {
        using var box = new HostileSandbox();
        var b = Base(out var w);
        w.Chunks[1].Length = 1L << 40;
        Refused(Load(box, b, weightsOnly, metadataOnly), TruncatedCheckpoint);
        var c = Base(out var w2);
        w2.Chunks[1].Offset = -5;
        Refused(Load(box, c, weightsOnly, metadataOnly, "ckpt2"), TruncatedCheckpoint);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void A_missing_data_file_is_a_missing_record(bool weightsOnly, bool metadataOnly)
    {
        using var box = new HostileSandbox();
        var b = Base(out var w);
        w.Chunks[1].RelativePath = "__7_0.distcp";
        Refused(Load(box, b, weightsOnly, metadataOnly), MissingRecord);
    }

    [Fact]
    public void A_folder_without_metadata_is_not_a_checkpoint_and_newer_savers_are_named()
    {
        using var box = new HostileSandbox();
        var folder = Base(out _).Write(Path.Combine(box.Dir, "ckpt"));
        File.Move(Path.Combine(folder, ".metadata"), Path.Combine(folder, ".metadata.tmp"));
        Assert.Contains("did not finish", Refused(box.Load(folder, true), NotACheckpoint).Message);
        Refused(box.Load(Directory.CreateDirectory(Path.Combine(box.Dir, "empty")).FullName, true), NotACheckpoint);
        File.Move(Path.Combine(folder, ".metadata.tmp"), Path.Combine(folder, "__0.metadata"));
        Assert.Contains("rank-local", Refused(box.Load(folder, true), UnsupportedFormat).Message);
    }

    public static TheoryData<string, long[][]> BadTilings => new()
    {
        { "overlap", [[0, 0], [3, 3], [2, 0], [3, 3]] },
        { "gap", [[0, 0], [3, 3], [4, 0], [1, 3]] },
        { "outside", [[0, 0], [3, 3], [3, 0], [3, 3]] },
        { "negative", [[0, 0], [3, 3], [-1, 0], [2, 3]] },
        { "rank", [[0, 0], [3, 3], [3], [2]] },
        { "overlap-and-gap-with-the-right-volume", [[0, 0], [3, 3], [2, 0], [2, 3]] },
    };

    [Theory]
    [MemberData(nameof(BadTilings))]
    public void Chunks_that_overlap_leave_gaps_or_reach_outside_are_invalid_geometry(string what, long[][] boxes)
    {
        using var box = new HostileSandbox();
        foreach (var (weightsOnly, metadataOnly) in new[] { (true, false), (false, false), (true, true) })
        {
            var b = new DcpFolderBuilder();
            var e = b.Tensor("w", [5, 3], (boxes[0], boxes[1]), (boxes[2], boxes[3]));
            // items hold well-formed float tensors of the declared chunk shapes where that is possible
            foreach (var c in e.Chunks)
            {
                var sizes = c.Sizes.Length == 2 ? c.Sizes.Select(s => Math.Max(s, 0)).ToArray() : [1L, 1];
                c.Item = DcpFolderBuilder.ChunkItem(sizes, [0, 0], sizes);
            }
            var error = Refused(Load(box, b, weightsOnly, metadataOnly, $"{what}{weightsOnly}{metadataOnly}"), InvalidTensorGeometry);
            Assert.Contains("'w'", error.Message);
        }
    }

    [Fact]
    public void A_chunk_payload_of_another_dtype_or_shape_is_invalid_geometry()
    {
        using var box = new HostileSandbox();
        var b = Base(out var w);
        w.Chunks[1].Item = DcpFolderBuilder.ChunkItem([5, 3], [0, 0], [3, 3]); // 3 rows where 2 are declared
        Refused(Load(box, b, true), InvalidTensorGeometry);
        var c = Base(out var w2);
        var pickle = new PickleBuilder().Proto(2).Value(TensorV2(Storage("DoubleStorage", "0", 6), 0, [2, 3], [3, 1])).Stop().ToArray();
        w2.Chunks[1].Item = CheckpointBuilder.ZipOf(pickle, ("0", new byte[48]));
        Assert.Contains("float64", Refused(Load(box, c, false, name: "ckpt2"), InvalidTensorGeometry).Message);
        var d = Base(out var w3);
        w3.Chunks[1].Item = CheckpointBuilder.ZipOf(new PickleBuilder().Proto(2).Int(3).Stop().ToArray());
        Refused(Load(box, d, true, name: "ckpt3"), InvalidTensorGeometry);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_huge_declared_tensor_over_a_tiny_item_is_refused_before_allocating(bool weightsOnly)
    {
        using var box = new HostileSandbox();
        var b = new DcpFolderBuilder();
        var e = b.Tensor("huge", [1L << 20, 1L << 20], ([0, 0], [1L << 20, 1L << 20]));
        e.Chunks[0].Item = DcpFolderBuilder.ChunkItem([2, 2], [0, 0], [2, 2]);
        Refused(Load(box, b, weightsOnly), InvalidTensorGeometry);
        var c = new DcpFolderBuilder();
        c.Tensor("overflow", [1L << 40, 1L << 40], ([0, 0], [1L << 40, 1L << 40]));
        Refused(Load(box, c, weightsOnly, name: "ckpt2"), InvalidTensorGeometry);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void Unknown_transforms_are_unsupported_compression(bool weightsOnly, bool metadataOnly)
    {
        using var box = new HostileSandbox();
        var b = Base(out var w);
        w.Chunks[0].Transforms = ["stream.zstd/1"];
        Assert.Contains("stream.zstd/1", Refused(Load(box, b, weightsOnly, metadataOnly), UnsupportedCompression).Message);
    }

    [Fact]
    public void An_item_that_is_not_a_torch_save_archive_is_refused()
    {
        using var box = new HostileSandbox();
        var b = Base(out var w);
        w.Chunks[0].Item = new byte[200];
        Refused(Load(box, b, true), InvalidArchive);
        var c = Base(out var w2);
        var header = "{\"w\":{\"dtype\":\"F32\",\"shape\":[3,3],\"data_offsets\":[0,36]}}"u8.ToArray();
        w2.Chunks[0].Item = [.. BitConverter.GetBytes((ulong)header.Length), .. header, .. new byte[36]];
        Assert.Contains("safetensors", Refused(Load(box, c, true, name: "ckpt2"), UnsupportedFormat).Message);
    }

    [Fact]
    public void A_list_index_far_past_the_keys_is_a_limit_not_a_giant_list()
    {
        using var box = new HostileSandbox();
        var b = Base(out _);
        b.Bytes("x", new PickleBuilder().Proto(2).Int(1).Stop().ToArray(), ["l", 1L << 40]);
        Refused(Load(box, b, true), LimitExceeded);
    }

    [Fact]
    public void Planner_paths_that_contradict_each_other_are_malformed()
    {
        using var box = new HostileSandbox();
        var b = Base(out _);
        b.Bytes("a", new PickleBuilder().Proto(2).Int(1).Stop().ToArray(), ["w", "inner"]); // 'w' is a tensor
        Refused(Load(box, b, true), MalformedPickle);
    }

    [Fact]
    public void Metadata_that_is_not_dcp_shaped_is_malformed()
    {
        using var box = new HostileSandbox();
        var folder = Directory.CreateDirectory(Path.Combine(box.Dir, "ckpt")).FullName;
        File.WriteAllBytes(Path.Combine(folder, ".metadata"), new PickleBuilder().Proto(2).Int(5).Stop().ToArray());
        Refused(box.Load(folder, false), MalformedPickle);
        File.WriteAllBytes(Path.Combine(folder, ".metadata"),
            new PickleBuilder().Proto(2).Value(DcpFolderBuilder.Dataclass("torch.distributed.checkpoint.metadata", "Metadata", null)).Stop().ToArray());
        Refused(box.Load(folder, true), MalformedPickle);
        File.WriteAllBytes(Path.Combine(folder, ".metadata"), [0x80, 0x02, (byte)'Q', (byte)'.']);
        RefusedAny(box.Load(folder, true), MalformedPickle, InvalidPersistentId);
    }
}

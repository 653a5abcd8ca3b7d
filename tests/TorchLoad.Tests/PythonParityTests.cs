using System.Buffers.Binary;
using TorchLoad.Core;
using TorchLoad.Core.Errors;
using TorchLoad.Core.Pickle;
using TorchLoad.Core.Tensors;
using TorchLoad.Tests.Support;
using static TorchLoad.Tests.Support.CheckpointBuilder;
using static TorchLoad.Tests.Support.PickleBuilder;

namespace TorchLoad.Tests;

/// <summary>
/// Classes of files where TorchLoad and Python's torch.load disagreed (issue #11: measured on files written
/// by torch 2.6 and 1.13): each test states what torch gives and failed before the fix.
/// </summary>
public class PythonParityTests
{
    private static readonly TorchLoadOptions Permissive = new() { WeightsOnly = false }; // builtins.bytes is a permissive-mode value
    private static TorchTensor Tensor(object? v) => Assert.IsType<TorchTensor>(v);

    // ------------------------------------------------------------------ per-channel quantizer parameters

    /// <summary>_rebuild_qtensor of a 2-channel quint8 tensor whose scales/zero points are nested tensors.</summary>
    private static byte[] PerChannel(string savedScheme, string zeroPointStorage, byte[] zeroPoints)
    {
        var pickle = Pickle(Call("torch._utils", "_rebuild_qtensor",
            Storage("QUInt8Storage", "0", 4), 0L, new long[] { 2, 2 }, new long[] { 2, 1 },
            new object?[]
            {
                G("torch", savedScheme),
                TensorV2(Storage("DoubleStorage", "1", 2), 0, [2], [1]),
                TensorV2(Storage(zeroPointStorage, "2", 2), 0, [2], [1]),
                0L,
            }, false, OrderedDict()));
        return ZipOf(pickle, ("0", [1, 2, 3, 4]), ("1", Doubles(0.1, 0.2)), ("2", zeroPoints));
    }

    private static byte[] Doubles(params double[] v)
    {
        var b = new byte[v.Length * 8];
        for (var i = 0; i < v.Length; i++) BinaryPrimitives.WriteDoubleLittleEndian(b.AsSpan(i * 8), v[i]);
        return b;
    }

    [Fact]
    public void PerChannel_FloatZeroPoints_AreFloatQParams()
    {
        // torch 2.x saves a float-qparams tensor's scheme as per_channel_affine; its quantizer is chosen by the zero points' dtype
        var t = Tensor(Load(PerChannel("per_channel_affine", "FloatStorage", Floats(0.5f, 1f))).Root);
        Assert.Equal("per_channel_affine_float_qparams", t.QScheme!.Name);
        Assert.Equal(new[] { 0.5f, 1f }, Assert.IsType<float[]>(t.QZeroPoints!.ToArray()));
        Assert.Equal(0L, t.QAxis);
    }

    [Fact]
    public void PerChannel_IntegerZeroPoints_StayPerChannelAffine()
    {
        var t = Tensor(Load(PerChannel("per_channel_affine", "LongStorage", Longs(0, 1))).Root);
        Assert.Equal("per_channel_affine", t.QScheme!.Name);
        Assert.Equal(new[] { 0L, 1L }, Assert.IsType<long[]>(t.QZeroPoints!.ToArray()));
    }

    [Fact]
    public void PerChannel_FloatQParamsSchemeWithIntegerZeroPoints_IsPerChannelAffine() =>
        Assert.Equal("per_channel_affine", Tensor(Load(PerChannel("per_channel_affine_float_qparams", "LongStorage", Longs(0, 1))).Root).QScheme!.Name);

    [Theory]
    [InlineData("per_channel_affine", "per_channel_affine", "int64")]
    [InlineData("per_channel_affine_float_qparams", "per_channel_affine_float_qparams", "float32")]
    public void PerChannel_ListParameters_ConvertByTheSavedScheme(string saved, string expected, string zeroPointDType)
    {
        // older files give scales and zero points as Python lists: float64/int64, or float32/float32 for float qparams
        var pickle = Pickle(Call("torch._utils", "_rebuild_qtensor",
            Storage("QUInt8Storage", "0", 2), 0L, new long[] { 2 }, new long[] { 1 },
            new PList(G("torch", saved), new PList(0.1, 0.2), new PList(1L, 2L), 0L), false, OrderedDict()));
        var t = Tensor(Load(ZipOf(pickle, ("0", [7, 9]))).Root);
        Assert.Equal(expected, t.QScheme!.Name);
        Assert.Equal(zeroPointDType, t.QZeroPoints!.DType.Name);
        Assert.Equal(new[] { 1.0, 2.0 }, t.QZeroPoints.ToArray() switch { float[] f => f.Select(x => (double)x), long[] l => l.Select(x => (double)x), var o => throw new InvalidOperationException(o.GetType().Name) });
        Assert.Equal(2L, t.QScales!.ElementCount);
    }

    // ------------------------------------------------------------------ lists where Python accepts any sequence

    [Fact]
    public void OrderedDict_FromListsOfKeyValueLists_Loads()
    {
        // what Python 2's OrderedDict.__reduce__ wrote: OrderedDict([[key, value], ...])
        var d = Assert.IsType<PyDict>(Load(ZipOf(Pickle(Call("collections", "OrderedDict",
            new PList(new PList("b", 1L), new PList("a", 2L), new object?[] { "c", 3L }))))).Root);
        Assert.Equal("collections.OrderedDict", d.PythonType);
        Assert.Equal(new object?[] { "b", "a", "c" }, ((System.Collections.IDictionary)d).Keys.Cast<object?>().ToArray());
        Assert.Equal(2L, d["a"]);
    }

    [Fact]
    public void OrderedDict_ItemThatIsNotAPair_IsMalformed() =>
        Fails(ZipOf(Pickle(Call("collections", "OrderedDict", new PList(new PList("a", 1L, 2L))))), TorchLoadErrorReason.MalformedPickle);

    [Fact]
    public void Counter_FromASequence_CountsItsElements()
    {
        var d = Assert.IsType<PyDict>(Load(ZipOf(Pickle(Call("collections", "Counter", new PList("a", "b", "a"))))).Root);
        Assert.Equal(2L, d["a"]);
        Assert.Equal(1L, d["b"]);
    }

    [Fact]
    public void Set_FromADict_HoldsItsKeys() =>
        Assert.Equal(new object?[] { "x", "y" }, Assert.IsType<PySet>(Load(ZipOf(Pickle(Call("builtins", "set", new PDict(("x", 1L), ("y", 2L)))))).Root).ToArray());

    [Fact]
    public void Bytes_FromATupleOfInts_Loads() =>
        Assert.Equal(new byte[] { 1, 255 }, Load(ZipOf(Pickle(Call("builtins", "bytes", new object?[] { new object?[] { 1L, 255L } }))), Permissive).Root);

    [Fact]
    public void Bytes_OutOfRange_IsMalformedNotARawOverflow() =>
        Fails(ZipOf(Pickle(Call("builtins", "bytes", new PList(new PList(1L, 256L))))), TorchLoadErrorReason.MalformedPickle, Permissive);

    [Fact]
    public void Sparse_DataAsAList_Loads()
    {
        var pickle = Pickle(Call("torch._utils", "_rebuild_sparse_tensor",
            Call("torch.serialization", "_get_layout", "torch.sparse_coo"),
            new PList(TensorV2(Storage("LongStorage", "0", 2), 0, [1, 2], [2, 1]), TensorV2(Storage("FloatStorage", "1", 2), 0, [2], [1]), new long[] { 3 })));
        var t = Tensor(Load(ZipOf(pickle, ("0", Longs(0, 2)), ("1", Floats(5f, 6f)))).Root);
        Assert.Equal(new long[] { 3 }, t.Shape);
        Assert.Equal(new[] { 5f, 6f }, Assert.IsType<float[]>(t.Values!.ToArray()));
    }

    // ------------------------------------------------------------------ properties torch computes (found by the conformance runner)

    [Theory]
    [InlineData(new long[] { 2, 0, 3 }, new long[] { 1, 1, 1 })]
    [InlineData(new long[] { 0 }, new long[] { 7 })]
    public void IsContiguous_TrueForEveryTensorWithoutElements(long[] shape, long[] stride)
    {
        var t = Tensor(Load(ZipOf(Pickle(TensorV2(Storage("FloatStorage", "0", 0), 0, shape, stride)), ("0", []))).Root);
        Assert.Equal(0L, t.ElementCount);
        Assert.True(t.IsContiguous);
    }

    [Fact]
    public void Nested_ElementCountCountsEveryComponent()
    {
        // two components of 2x3 and 1x3 over a buffer of 9 values: torch's numel is 9, not the outer size 2
        var pickle = Pickle(Call("torch._utils", "_rebuild_nested_tensor",
            TensorV2(Storage("FloatStorage", "0", 9), 0, [9], [1]),
            TensorV2(Storage("LongStorage", "1", 4), 0, [2, 2], [2, 1]),
            TensorV2(Storage("LongStorage", "2", 4), 0, [2, 2], [2, 1]),
            TensorV2(Storage("LongStorage", "3", 2), 0, [2], [1])));
        var t = Tensor(Load(ZipOf(pickle, ("0", Floats(1, 2, 3, 4, 5, 6, 7, 8, 9)), ("1", Longs(2, 3, 1, 3)), ("2", Longs(3, 1, 3, 1)), ("3", Longs(0, 6)))).Root);
        Assert.True(t.IsNested);
        Assert.Equal(9L, t.ElementCount);
    }

    [Theory]
    [InlineData(1, true)]
    [InlineData(2, false)]
    public void SparseCoo_WithoutARecordedFlag_IsCoalescedBelowTwoEntries(int nnz, bool coalesced)
    {
        // torch 1.13 files do not record is_coalesced; torch marks a COO tensor coalesced when nnz < 2
        var pickle = Pickle(Call("torch._utils", "_rebuild_sparse_tensor",
            Call("torch.serialization", "_get_layout", "torch.sparse_coo"),
            new object?[] { TensorV2(Storage("LongStorage", "0", nnz), 0, [1, nnz], [nnz, 1]), TensorV2(Storage("FloatStorage", "1", nnz), 0, [nnz], [1]), new long[] { 3 } }));
        var t = Tensor(Load(ZipOf(pickle, ("0", Longs(Enumerable.Range(0, nnz).Select(i => (long)i).ToArray())), ("1", Floats(Enumerable.Repeat(1f, nnz).ToArray())))).Root);
        Assert.Equal(coalesced, t.IsCoalesced);
    }

    // ------------------------------------------------------------------ pinned behaviour (already right, kept right)

    [Fact]
    public void Quint4x2_TensorBytesAreOneCodePerElement_StorageBytesArePacked()
    {
        // object-model.md: ToByteArray gives one code per element, low bits first; Storage.ToByteArray the packed bytes
        var pickle = Pickle(Call("torch._utils", "_rebuild_qtensor",
            Storage("QUInt4x2Storage", "0", 2), 0L, new long[] { 3 }, new long[] { 1 },
            new object?[] { G("torch", "per_tensor_affine"), 0.5, 1L }, false, OrderedDict()));
        var t = Tensor(Load(ZipOf(pickle, ("0", [0x21, 0x0F]))).Root);
        Assert.Equal("quint4x2", t.DType.Name);
        Assert.Equal(new byte[] { 0x1, 0x2, 0xF }, t.ToByteArray());
        Assert.Equal(new byte[] { 0x21, 0x0F }, t.Storage!.ToByteArray());
    }

    [Fact]
    public void Legacy_V3DTypes_LoadAlthoughTorchCannotReadThemBack()
    {
        // torch 2.6 writes v3 dtypes into a legacy stream as UntypedStorage + _rebuild_tensor_v3, then fails on its own file
        Fragment Untyped(string key, long bytes) => b =>
            b.Mark().Str("storage").Global("torch.storage", "UntypedStorage").Str(key).Str("cpu").Int(bytes).None().Tuple().BinPersId();
        var pickle = Pickle(new PDict(
            ("u16", TensorV3(Untyped("10", 6), 0, [3], [1], "uint16")),
            ("f8", TensorV3(Untyped("11", 2), 0, [2], [1], "float8_e4m3fn"))));
        var u16 = new byte[6];
        for (var i = 0; i < 3; i++) BinaryPrimitives.WriteUInt16LittleEndian(u16.AsSpan(i * 2), (ushort)(65535 - i));
        var cp = Load(Legacy(pickle, ["10", "11"], [(6, u16), (2, [0x38, 0xC0])]));
        Assert.Equal("legacy", cp.Format);
        var d = Assert.IsType<PyDict>(cp.Root);
        var a = Tensor(d["u16"]);
        Assert.Equal("uint16", a.DType.Name);
        Assert.Equal(new ushort[] { 65535, 65534, 65533 }, Assert.IsType<ushort[]>(a.ToArray()));
        var f8 = Tensor(d["f8"]);
        Assert.Equal("float8_e4m3fn", f8.DType.Name);
        Assert.Equal(new byte[] { 0x38, 0xC0 }, f8.ToByteArray());
    }
}

using System.Buffers.Binary;
using System.Numerics;
using System.Text;
using TorchLoad.Core;
using TorchLoad.Core.Errors;
using TorchLoad.Core.Pickle;
using TorchLoad.Core.Tensors;
using TorchLoad.Tests.Support;
using static TorchLoad.Tests.Support.PickleBuilder;

namespace TorchLoad.Tests;

/// <summary>
/// One test (or theory row) per opcode of Opcodes.cs. Each states the pickle bytes (as a Latin-1
/// string, "\u0085" = byte 0x85) and loads them as the data.pkl of a zip checkpoint (exact record
/// length, so a missing STOP is visible) or as the object pickle of a legacy stream.
/// </summary>
public class PickleOpcodeTests
{
    private static readonly TorchLoadOptions Permissive = new() { WeightsOnly = false };

    private static object? Run(string pickle, TorchLoadOptions? options = null) =>
        CheckpointBuilder.Load(CheckpointBuilder.ZipOf(L(pickle)), options).Root;

    private static object? RunLegacy(string pickle, TorchLoadOptions? options = null) =>
        CheckpointBuilder.Load(CheckpointBuilder.LegacyOf(L(pickle)), options).Root;

    private static TorchLoadException Fail(string pickle, TorchLoadErrorReason reason, TorchLoadOptions? options = null) =>
        CheckpointBuilder.Fails(CheckpointBuilder.ZipOf(L(pickle)), reason, options);

    private static string U64(ulong v) { var b = new byte[8]; BinaryPrimitives.WriteUInt64LittleEndian(b, v); return System.Text.Encoding.Latin1.GetString(b); }
    private static string BE64(ulong v) { var b = new byte[8]; BinaryPrimitives.WriteUInt64BigEndian(b, v); return System.Text.Encoding.Latin1.GetString(b); }

    private static object?[] Tuple(object? v) => Assert.IsType<object?[]>(v);
    private static List<object?> List(object? v) => Assert.IsType<List<object?>>(v);
    private static PyDict Dict(object? v) => Assert.IsType<PyDict>(v);

    // ------------------------------------------------------------------ PROTO / STOP

    [Fact]
    public void Proto_IsRecordedAndTransparent()
    {
        var cp = CheckpointBuilder.Load(CheckpointBuilder.ZipOf(L("\u0080\u0004K\u0009.")));
        Assert.Equal(9L, cp.Root);
        Assert.Equal(4, cp.PickleProtocol);
    }

    [Fact]
    public void Proto_5_IsAccepted() => Assert.Equal(1L, Run("\u0080\u0005K\u0001."));

    [Fact]
    public void Proto_AboveFive_IsMalformed() => Fail("\u0080\u0006N.", TorchLoadErrorReason.MalformedPickle);

    [Fact]
    public void Stop_ReturnsTheOneValue() => Assert.Equal(7L, Run("K\u0007."));

    // Python's unpickler and torch's weights-only one return the top value and ignore the rest (issue #11)
    [Fact]
    public void Stop_WithTwoValuesOnTheStack_ReturnsTheTop() => Assert.Equal(2L, Run("K\u0001K\u0002."));

    [Fact]
    public void Stop_InsideAnOpenMarkWithAValue_ReturnsTheTop() => Assert.Equal(1L, Run("K\u0005(K\u0001."));

    [Fact]
    public void Stop_InsideAnOpenMark_IsMalformed() => Fail("N(.", TorchLoadErrorReason.MalformedPickle);

    [Fact]
    public void Stop_WithValuesLeft_StillCountsAgainstTheLimits() =>
        Fail("(((((((((((((((((((((K\u0001.", TorchLoadErrorReason.LimitExceeded, new TorchLoadOptions { Limits = LoadLimits.Default with { MaxNestingDepth = 8 } });

    [Fact]
    public void Stop_WithEmptyStack_IsMalformed() => Fail(".", TorchLoadErrorReason.MalformedPickle);

    [Fact]
    public void Stop_BytesAfterStop_AreAWarningNotAnError()
    {
        var cp = CheckpointBuilder.Load(CheckpointBuilder.ZipOf(L("K\u0003.junk")));
        Assert.Equal(3L, cp.Root);
        Assert.Contains(cp.Warnings, w => w.Contains("4 bytes after its STOP"));
    }

    [Fact]
    public void MissingStop_IsTruncated() => Fail("K\u0001", TorchLoadErrorReason.TruncatedCheckpoint);

    [Fact]
    public void EmptyPickle_IsTruncated() => Fail("", TorchLoadErrorReason.TruncatedCheckpoint);

    // ------------------------------------------------------------------ MARK / POP / POP_MARK / DUP

    [Fact]
    public void Mark_Tuple_CollectsItemsAboveTheMark()
    {
        var t = Tuple(Run("K\u0009(K\u0001K\u0002K\u0003t\u0086."));
        Assert.Equal(9L, t[0]);
        Assert.Equal(new object?[] { 1L, 2L, 3L }, Tuple(t[1]));
    }

    [Fact]
    public void Mark_Nested()
    {
        var t = Tuple(Run("((K\u0001tK\u0002t."));
        Assert.Equal(new object?[] { 1L }, Tuple(t[0]));
        Assert.Equal(2L, t[1]);
    }

    [Fact]
    public void Pop_DiscardsTheTop() => Assert.Equal(1L, Run("K\u0001K\u00020."));

    [Fact]
    public void Pop_OfAnEmptyMarkFrame_PopsTheMark() => Assert.Equal(1L, Run("K\u0001(0."));

    [Fact]
    public void Pop_OnEmptyStack_IsMalformed() => Fail("0N.", TorchLoadErrorReason.MalformedPickle);

    [Fact]
    public void PopMark_DiscardsEverythingToTheMark() => Assert.Equal(7L, Run("K\u0007(K\u0001K\u00021."));

    [Fact]
    public void PopMark_WithoutMark_IsMalformed() => Fail("K\u00011K\u0001.", TorchLoadErrorReason.MalformedPickle);

    [Fact]
    public void Dup_PushesTheSameObjectAgain()
    {
        var t = Tuple(Run("]2\u0086."));
        Assert.Same(t[0], t[1]);
        Assert.IsType<List<object?>>(t[0]);
    }

    // ------------------------------------------------------------------ numbers

    [Theory]
    [InlineData("F1.5\n.", 1.5)]
    [InlineData("F-2.25\n.", -2.25)]
    [InlineData("F1e300\n.", 1e300)]
    [InlineData("Finf\n.", double.PositiveInfinity)]
    [InlineData("F-inf\n.", double.NegativeInfinity)]
    public void Float_ParsesTheTextLine(string pickle, double expected) => Assert.Equal(expected, Assert.IsType<double>(Run(pickle)));

    [Fact]
    public void Float_NanAndNegativeZero()
    {
        Assert.True(double.IsNaN(Assert.IsType<double>(Run("Fnan\n."))));
        Assert.Equal(unchecked((long)0x8000000000000000), BitConverter.DoubleToInt64Bits(Assert.IsType<double>(Run("F-0.0\n."))));
    }

    [Fact]
    public void Float_NotANumber_IsMalformed() => Fail("Fabc\n.", TorchLoadErrorReason.MalformedPickle);

    [Theory]
    [InlineData("I42\n.", 42L)]
    [InlineData("I-7\n.", -7L)]
    [InlineData("I1\n.", 1L)]
    [InlineData("I0\n.", 0L)]
    [InlineData("I9223372036854775807\n.", long.MaxValue)]
    public void Int_DecimalLine(string pickle, long expected) => Assert.Equal(expected, Assert.IsType<long>(Run(pickle)));

    [Fact]
    public void Int_I00AndI01_AreBooleans()
    {
        Assert.False(Assert.IsType<bool>(Run("I00\n.")));
        Assert.True(Assert.IsType<bool>(Run("I01\n.")));
    }

    [Fact]
    public void Int_BeyondInt64_IsBigInteger() =>
        Assert.Equal(BigInteger.Parse("123456789012345678901234567890"), Assert.IsType<BigInteger>(Run("I123456789012345678901234567890\n.")));

    [Fact]
    public void Int_NotANumber_IsMalformed() => Fail("Ixyz\n.", TorchLoadErrorReason.MalformedPickle);

    [Fact]
    public void Int_WithoutNewline_IsTruncated() => Fail("I42", TorchLoadErrorReason.TruncatedCheckpoint);

    [Theory]
    [InlineData("J\u00ff\u00ff\u00ff\u00ff.", -1L)]
    [InlineData("J\u0000\u0000\u0000\u0080.", (long)int.MinValue)]
    [InlineData("J\u00ff\u00ff\u00ff\u007f.", (long)int.MaxValue)]
    [InlineData("J\u0001\u0002\u0003\u0004.", 0x04030201L)]
    public void BinInt_IsSignedLittleEndian32(string pickle, long expected) => Assert.Equal(expected, Assert.IsType<long>(Run(pickle)));

    [Theory]
    [InlineData("K\u0000.", 0L)]
    [InlineData("K\u00ff.", 255L)]
    public void BinInt1_IsUnsignedByte(string pickle, long expected) => Assert.Equal(expected, Assert.IsType<long>(Run(pickle)));

    [Theory]
    [InlineData("M\u00ff\u00ff.", 65535L)]
    [InlineData("M\u0001\u0002.", 513L)]
    public void BinInt2_IsUnsignedLittleEndian16(string pickle, long expected) => Assert.Equal(expected, Assert.IsType<long>(Run(pickle)));

    [Fact]
    public void BinInt_Truncated_IsTruncated() => Fail("J\u0001\u0002", TorchLoadErrorReason.TruncatedCheckpoint);

    [Fact]
    public void Long_TextWithLSuffix()
    {
        Assert.Equal(BigInteger.Parse("12345678901234567890"), Assert.IsType<BigInteger>(Run("L12345678901234567890L\n.")));
        Assert.Equal(-5L, Assert.IsType<long>(Run("L-5L\n.")));
        Assert.Equal(7L, Assert.IsType<long>(Run("L7\n.")));
    }

    [Theory]
    [InlineData("\u008a\u0000.", 0L)]
    [InlineData("\u008a\u0001\u00ff.", -1L)]
    [InlineData("\u008a\u0001\u0080.", -128L)]
    [InlineData("\u008a\u0002\u0080\u0000.", 128L)]
    [InlineData("\u008a\u0002\u0000\u0080.", -32768L)]
    [InlineData("\u008a\u0008\u00ff\u00ff\u00ff\u00ff\u00ff\u00ff\u00ff\u007f.", long.MaxValue)]
    [InlineData("\u008a\u0008\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0080.", long.MinValue)]
    [InlineData("\u008a\u0009\u00ff\u00ff\u00ff\u00ff\u00ff\u00ff\u00ff\u00ff\u00ff.", -1L)]
    public void Long1_TwosComplementLittleEndian(string pickle, long expected) => Assert.Equal(expected, Assert.IsType<long>(Run(pickle)));

    [Fact]
    public void Long1_NineBytes_IsBigInteger()
    {
        Assert.Equal(BigInteger.One << 64, Assert.IsType<BigInteger>(Run("\u008a\u0009\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0001.")));
        Assert.Equal(-(BigInteger.One << 64), Assert.IsType<BigInteger>(Run("\u008a\u0009\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u00ff.")));
        Assert.Equal((BigInteger)long.MaxValue + 1, Assert.IsType<BigInteger>(Run("\u008a\u0009\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0080\u0000.")));
    }

    [Fact]
    public void Long1_TheLegacyMagicNumber() =>
        Assert.Equal(CheckpointBuilder.LegacyMagic, Assert.IsType<BigInteger>(Run("\u008a\u000a\u006c\u00fc\u009c\u0046\u00f9\u0020\u006a\u00a8\u0050\u0019.")));

    [Fact]
    public void Long1_DeclaringMoreBytesThanLeft_IsTruncated() => Fail("\u008a\u0005\u0001.", TorchLoadErrorReason.TruncatedCheckpoint);

    [Fact]
    public void Long4_FourByteLength()
    {
        Assert.Equal(1000L, Assert.IsType<long>(Run("\u008b\u0002\u0000\u0000\u0000\u00e8\u0003.")));
        Assert.Equal(BigInteger.One << 64, Assert.IsType<BigInteger>(Run("\u008b\u0009\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0001.")));
    }

    [Fact]
    public void Long4_NegativeLength_IsMalformed() => Fail("\u008b\u00ff\u00ff\u00ff\u00ff.", TorchLoadErrorReason.MalformedPickle);

    [Fact]
    public void None_IsNull() => Assert.Null(Run("N."));

    [Fact]
    public void NewTrue_NewFalse_AreBooleans()
    {
        Assert.True(Assert.IsType<bool>(Run("\u0088.")));
        Assert.False(Assert.IsType<bool>(Run("\u0089.")));
    }

    [Theory]
    [InlineData(0x3FF8000000000000UL)] // 1.5
    [InlineData(0xC000000000000000UL)] // -2
    [InlineData(0x8000000000000000UL)] // -0.0
    [InlineData(0x7FF0000000000000UL)] // +inf
    [InlineData(0xFFF0000000000000UL)] // -inf
    [InlineData(0x7FF8000000000001UL)] // NaN with a payload
    [InlineData(0x0000000000000001UL)] // smallest subnormal
    public void BinFloat_IsBigEndianAndBitExact(ulong bits)
    {
        var d = Assert.IsType<double>(Run("G" + BE64(bits) + "."));
        Assert.Equal(bits, (ulong)BitConverter.DoubleToInt64Bits(d));
    }

    [Fact]
    public void BinFloat_Value() => Assert.Equal(1.5, Run("G\u003f\u00f8\u0000\u0000\u0000\u0000\u0000\u0000."));

    // ------------------------------------------------------------------ strings and bytes

    [Theory]
    [InlineData("S'abc'\n.", "abc")]
    [InlineData("S\"it's\"\n.", "it's")]
    [InlineData("S'a\\nb\\x41\\'c\\\\d'\n.", "a\nbA'c\\d")]
    [InlineData("S'\\101\\t\\r'\n.", "A\t\r")]
    [InlineData("S''\n.", "")]
    public void String_QuotedLiteralWithEscapes(string pickle, string expected) => Assert.Equal(expected, Run(pickle));

    [Fact]
    public void String_Unquoted_IsMalformed() => Fail("Sabc\n.", TorchLoadErrorReason.MalformedPickle);

    [Fact]
    public void String_WithBytesEncoding_IsByteArray() =>
        Assert.Equal("abc"u8.ToArray(), Run("S'abc'\n.", new TorchLoadOptions { Encoding = PickleStringEncoding.Bytes }));

    [Fact]
    public void String_Latin1Escape_DecodesWithLatin1() =>
        Assert.Equal("\u00e9", Run("S'\\xe9'\n.", new TorchLoadOptions { Encoding = PickleStringEncoding.Latin1 }));

    [Fact]
    public void BinString_LengthPrefixed()
    {
        Assert.Equal("abc", Run("T\u0003\u0000\u0000\u0000abc."));
        Assert.Equal("h\u00e9", Run("T\u0002\u0000\u0000\u0000h\u00e9.", new TorchLoadOptions { Encoding = PickleStringEncoding.Latin1 }));
        Assert.Equal(new byte[] { 0x68, 0xE9 }, Run("T\u0002\u0000\u0000\u0000h\u00e9.", new TorchLoadOptions { Encoding = PickleStringEncoding.Bytes }));
    }

    [Fact]
    public void BinString_LengthPastTheEnd_IsTruncated() => Fail("T\u0010\u0000\u0000\u0000abc.", TorchLoadErrorReason.TruncatedCheckpoint);

    [Theory]
    [InlineData(PickleStringEncoding.Utf8, "U\u0003abc.", "abc")]
    [InlineData(PickleStringEncoding.Ascii, "U\u0003abc.", "abc")]
    [InlineData(PickleStringEncoding.Latin1, "U\u0002h\u00e9.", "h\u00e9")]
    [InlineData(PickleStringEncoding.Utf8, "U\u0002\u00c3\u00a9.", "\u00e9")]
    [InlineData(PickleStringEncoding.Latin1, "U\u0002\u00c3\u00a9.", "\u00c3\u00a9")]
    public void ShortBinString_DecodesWithTheEncoding(PickleStringEncoding encoding, string pickle, string expected) =>
        Assert.Equal(expected, Run(pickle, new TorchLoadOptions { Encoding = encoding }));

    [Fact]
    public void ShortBinString_BytesEncoding_KeepsTheRawBytes() =>
        Assert.Equal(new byte[] { 0x68, 0xE9 }, Assert.IsType<byte[]>(Run("U\u0002h\u00e9.", new TorchLoadOptions { Encoding = PickleStringEncoding.Bytes })));

    [Theory]
    [InlineData(PickleStringEncoding.Ascii)]
    [InlineData(PickleStringEncoding.Utf8)]
    public void ShortBinString_NonAsciiByte_FailsForAsciiAndUtf8(PickleStringEncoding encoding) =>
        Fail("U\u0002h\u00e9.", TorchLoadErrorReason.MalformedPickle, new TorchLoadOptions { Encoding = encoding });

    [Fact]
    public void ShortBinString_InLegacyStream_AsDictKeyWithBytesEncoding()
    {
        var d = Dict(RunLegacy("}U\u0001kK\u0001s.", new TorchLoadOptions { Encoding = PickleStringEncoding.Bytes }));
        var key = Assert.IsType<byte[]>(Assert.Single(d.KeyList));
        Assert.Equal("k"u8.ToArray(), key);
    }

    [Fact]
    public void Unicode_RawUnicodeEscape() =>
        Assert.Equal("caf\u00e9 \u20ac \U0001F600", Run("Vcaf\u00e9 \\u20ac \\U0001f600\n."));

    [Fact]
    public void Unicode_BadEscape_IsMalformed() => Fail("V\\u12\n.", TorchLoadErrorReason.MalformedPickle);

    [Fact]
    public void BinUnicode_Utf8()
    {
        Assert.Equal("h\u00e9llo", Run("X\u0006\u0000\u0000\u0000h\u00c3\u00a9llo."));
        Assert.Equal("", Run("X\u0000\u0000\u0000\u0000."));
    }

    [Fact]
    public void BinUnicode_LoneSurrogate_IsKeptLikeSurrogatepass() =>
        Assert.Equal("\ud800", Run("X\u0003\u0000\u0000\u0000\u00ed\u00a0\u0080."));

    [Fact]
    public void BinUnicode_InvalidUtf8_IsMalformed() => Fail("X\u0001\u0000\u0000\u0000\u00ff.", TorchLoadErrorReason.MalformedPickle);

    [Fact]
    public void ShortBinUnicode() => Assert.Equal("hi\u00e9", Run("\u008c\u0004hi\u00c3\u00a9."));

    [Fact]
    public void BinUnicode8()
    {
        Assert.Equal("hi", Run("\u008d" + U64(2) + "hi."));
        Fail("\u008d" + U64(1000) + "hi.", TorchLoadErrorReason.TruncatedCheckpoint);
    }

    [Fact]
    public void BinBytes() => Assert.Equal(new byte[] { 0, 1, 255 }, Assert.IsType<byte[]>(Run("B\u0003\u0000\u0000\u0000\u0000\u0001\u00ff.")));

    [Fact]
    public void ShortBinBytes() => Assert.Equal(new byte[] { 0xAB, 0xCD }, Assert.IsType<byte[]>(Run("C\u0002\u00ab\u00cd.")));

    [Fact]
    public void BinBytes8()
    {
        Assert.Equal(new byte[] { 0xAB, 0xCD }, Assert.IsType<byte[]>(Run("\u008e" + U64(2) + "\u00ab\u00cd.")));
        Fail("\u008e" + U64(ulong.MaxValue) + "\u00ab\u00cd.", TorchLoadErrorReason.TruncatedCheckpoint);
    }

    [Fact]
    public void ByteArray8() => Assert.Equal(new byte[] { 1, 2, 3 }, Assert.IsType<byte[]>(Run("\u0096" + U64(3) + "\u0001\u0002\u0003.")));

    // ------------------------------------------------------------------ tuples

    [Fact]
    public void EmptyTuple() => Assert.Empty(Tuple(Run(").")));

    [Fact]
    public void Tuple_FromMark() => Assert.Equal(new object?[] { 1L, "a", null }, Tuple(Run("(K\u0001\u008c\u0001aNt.")));

    [Fact]
    public void Tuple_WithoutMark_IsMalformed() => Fail("K\u0001t.", TorchLoadErrorReason.MalformedPickle);

    [Fact]
    public void Tuple1() => Assert.Equal(new object?[] { 1L }, Tuple(Run("K\u0001\u0085.")));

    [Fact]
    public void Tuple2() => Assert.Equal(new object?[] { 1L, 2L }, Tuple(Run("K\u0001K\u0002\u0086.")));

    [Fact]
    public void Tuple3() => Assert.Equal(new object?[] { 1L, 2L, 3L }, Tuple(Run("K\u0001K\u0002K\u0003\u0087.")));

    [Fact]
    public void Tuple2_Underflow_IsMalformed() => Fail("K\u0001\u0086.", TorchLoadErrorReason.MalformedPickle);

    [Fact]
    public void Tuple1_CannotReachBelowAMark() => Fail("K\u0001(\u0085t.", TorchLoadErrorReason.MalformedPickle);

    // ------------------------------------------------------------------ lists

    [Fact]
    public void EmptyList() => Assert.Empty(List(Run("].")));

    [Fact]
    public void List_FromMark() => Assert.Equal(new object?[] { 1L, 2L }, List(Run("(K\u0001K\u0002l.")));

    [Fact]
    public void Append() => Assert.Equal(new object?[] { 1L, 2L }, List(Run("]K\u0001aK\u0002a.")));

    [Fact]
    public void Appends() => Assert.Equal(new object?[] { 0L, 1L, 2L, 3L }, List(Run("]K\u0000a(K\u0001K\u0002K\u0003e.")));

    [Fact]
    public void Append_Underflow_IsMalformed() => Fail("a.", TorchLoadErrorReason.MalformedPickle);

    // ------------------------------------------------------------------ dicts

    [Fact]
    public void EmptyDict()
    {
        var d = Dict(Run("}."));
        Assert.Empty(d);
        Assert.Equal("dict", d.PythonType);
    }

    [Fact]
    public void Dict_FromMark_KeepsInsertionOrder()
    {
        var d = Dict(Run("(\u008c\u0001bK\u0001\u008c\u0001aK\u0002d."));
        Assert.Equal(new object?[] { "b", "a" }, d.KeyList.ToArray());
        Assert.Equal(1L, d["b"]);
        Assert.Equal(2L, d["a"]);
    }

    [Fact]
    public void Dict_OddItemCount_IsMalformed() => Fail("(K\u0001d.", TorchLoadErrorReason.MalformedPickle);

    [Fact]
    public void SetItem()
    {
        var d = Dict(Run("}\u008c\u0001aK\u0001s."));
        Assert.Equal(1L, d["a"]);
    }

    [Fact]
    public void SetItems_OverwriteKeepsPosition()
    {
        var d = Dict(Run("}(\u008c\u0001aK\u0001\u008c\u0001bK\u0002\u008c\u0001aK\u0003u."));
        Assert.Equal(new object?[] { "a", "b" }, d.KeyList.ToArray());
        Assert.Equal(3L, d["a"]);
    }

    [Fact]
    public void SetItems_KeysOfTheirOwnTypes()
    {
        // {None: 1, 2: 3, (4,): 5}
        var d = Dict(Run("}(NK\u0001K\u0002K\u0003K\u0004\u0085K\u0005u."));
        Assert.Equal(3, d.Count);
        Assert.True(d.TryGetValue(null, out var v0)); Assert.Equal(1L, v0);
        Assert.True(d.TryGetValue(2L, out var v1)); Assert.Equal(3L, v1);
        Assert.True(d.TryGetValue(new object?[] { 4L }, out var v2)); Assert.Equal(5L, v2);
        Assert.IsType<long>(d.KeyList.ElementAt(1));
    }

    [Fact]
    public void SetItems_OddCount_IsMalformed() => Fail("}(K\u0001u.", TorchLoadErrorReason.MalformedPickle);

    // ------------------------------------------------------------------ sets

    [Fact]
    public void EmptySet()
    {
        var s = Assert.IsType<PySet>(Run("\u008f."));
        Assert.Equal(0, s.Count);
        Assert.False(s.IsFrozen);
    }

    [Fact]
    public void AddItems_DeduplicatesInOrder()
    {
        var s = Assert.IsType<PySet>(Run("\u008f(K\u0002K\u0001K\u0002\u0090."));
        Assert.Equal(new object?[] { 2L, 1L }, s.ToArray());
    }

    [Fact]
    public void AddItems_OnAList_IsMalformed() => Fail("](K\u0001\u0090.", TorchLoadErrorReason.MalformedPickle);

    [Fact]
    public void FrozenSet()
    {
        var s = Assert.IsType<PySet>(Run("(K\u0001K\u0002K\u0001\u0091."));
        Assert.True(s.IsFrozen);
        Assert.Equal(2, s.Count);
        Assert.True(s.Contains(1L));
    }

    // ------------------------------------------------------------------ memo

    [Fact]
    public void Put_Get_TextMemo()
    {
        Assert.Equal(new object?[] { 5L }, List(Run("(K\u0005lp0\n0g0\n.")));
        var t = Tuple(Run("]p7\ng7\n\u0086."));
        Assert.Same(t[0], t[1]);
    }

    [Fact]
    public void Put_BadIndex_IsMalformed() => Fail("]pabc\n.", TorchLoadErrorReason.MalformedPickle);

    [Fact]
    public void BinPut_BinGet_SameObject()
    {
        var t = Tuple(Run("]q\u0001h\u0001\u0086."));
        Assert.Same(t[0], t[1]);
    }

    [Fact]
    public void LongBinPut_LongBinGet_SameObject()
    {
        var t = Tuple(Run("]r\u0000\u0000\u0001\u0000j\u0000\u0000\u0001\u0000\u0086."));
        Assert.Same(t[0], t[1]);
    }

    [Fact]
    public void Memoize_NumbersEntriesInOrder()
    {
        var t = Tuple(Run("(]\u0094)\u0094h\u0000h\u0001t."));
        Assert.Equal(4, t.Length);
        Assert.Same(t[0], t[2]);
        Assert.Same(t[1], t[3]);
        Assert.IsType<List<object?>>(t[2]);
    }

    [Fact]
    public void Memo_ListCycle()
    {
        var list = List(Run("]\u0094h\u0000a."));
        Assert.Same(list, Assert.Single(list));
    }

    [Fact]
    public void Memo_DictCycle()
    {
        var d = Dict(Run("}\u0094\u008c\u0004selfh\u0000s."));
        Assert.Same(d, d["self"]);
    }

    [Fact]
    public void Memo_SameObjectTwiceInADict()
    {
        var d = Dict(Run("}(\u008c\u0001a]q\u0000\u008c\u0001bh\u0000u."));
        Assert.Same(d["a"], d["b"]);
    }

    [Fact]
    public void Memo_FarAndNearIndices_AndMemoizedNone()
    {
        // 0 and 4095 sit in the first chunk of the memo; 9000 is past 2 * entries + 4096, so it is kept
        // aside in the sparse table; a memoized None reads back as None, not as an unwritten slot.
        var t = Tuple(Run("(N\u0094K\u0007r\u00ff\u000f\u0000\u0000K\u0008r\u0028\u0023\u0000\u0000" +
                          "h\u0000j\u00ff\u000f\u0000\u0000j\u0028\u0023\u0000\u0000t."));
        Assert.Equal(new object?[] { null, 7L, 8L, null, 7L, 8L }, t);
    }

    [Fact]
    public void Memo_IndicesThatDoubleStayBounded()
    {
        // A hostile memo: one value put at 1000, 3024, 7072, ... (each twice the last plus 1024) up to 2^31.
        // Growing a dense memo to the highest index would allocate gigabytes from a 150-byte file.
        var p = new StringBuilder("\u0080\u0002K\u0005");
        var indices = new List<uint>();
        for (ulong i = 1000; i < 1UL << 31; i = i * 2 + 1024) indices.Add((uint)i);
        foreach (var i in indices) p.Append('r').Append(LE32(i));
        p.Append('0').Append('j').Append(LE32(indices[^1])).Append('.');
        var before = GC.GetAllocatedBytesForCurrentThread();
        Assert.Equal(5L, Run(p.ToString()));
        Assert.InRange(GC.GetAllocatedBytesForCurrentThread() - before, 0, 16L << 20);
    }

    [Fact]
    public void Memo_FirstChunkGrowsWithItsIndices()
    {
        // the first chunk starts short and doubles: entries below, at and past each of its lengths read back
        var put = new StringBuilder("(");
        var get = new StringBuilder();
        uint[] indices = [0, 63, 64, 127, 200, 1000, 4095, 4096];
        foreach (var i in indices) { put.Append('K').Append((char)(i % 200)).Append('r').Append(LE32(i)).Append('0'); get.Append('j').Append(LE32(i)); }
        var t = Tuple(Run(put.ToString() + get + "t."));
        Assert.Equal(indices.Select(i => (object?)(long)(i % 200)).ToArray(), t);
    }

    [Fact]
    public void Memo_SmallPickle_AllocatesLittle()
    {
        // a small checkpoint's pickle has a few memo entries: no 32 KiB chunk for them (auditing 1,000 small files)
        // (the whole load of a zip holding it: the memo's old first chunk alone was 32 KiB)
        var file = CheckpointBuilder.ZipOf(L("]q\u0000h\u0000\u0086."));
        CheckpointBuilder.Load(file);
        var before = GC.GetAllocatedBytesForCurrentThread();
        CheckpointBuilder.Load(file);
        Assert.InRange(GC.GetAllocatedBytesForCurrentThread() - before, 0, 24 << 10);
    }

    private static string LE32(uint v) { var b = new byte[4]; BinaryPrimitives.WriteUInt32LittleEndian(b, v); return System.Text.Encoding.Latin1.GetString(b); }

    [Theory]
    [InlineData("h\u0003.")]
    [InlineData("j\u0003\u0000\u0000\u0000.")]
    [InlineData("g3\n.")]
    [InlineData("K\u0001q\u0000h\u00c8.")] // inside the first chunk's reach but past its current length
    [InlineData("K\u0001q\u0000j\u00ff\u000f\u0000\u0000.")]
    public void Get_UnwrittenMemoEntry_IsMalformed(string pickle) => Fail(pickle, TorchLoadErrorReason.MalformedPickle);

    [Fact]
    public void BinPut_OnEmptyStack_IsMalformed() => Fail("q\u0000N.", TorchLoadErrorReason.MalformedPickle);

    // ------------------------------------------------------------------ globals and objects

    [Fact]
    public void Global_OrderedDict()
    {
        var d = Dict(Run("ccollections\nOrderedDict\n)R."));
        Assert.Equal("collections.OrderedDict", d.PythonType);
    }

    [Fact]
    public void Global_DTypeIsAValue() =>
        Assert.Same(TorchDType.Float32, Run("ctorch\nfloat32\n."));

    [Fact]
    public void Global_Unknown_IsUnsafeInWeightsOnlyMode()
    {
        var e = Fail("cmymod\nFoo\n.", TorchLoadErrorReason.UnsafeGlobal);
        Assert.Equal("mymod.Foo", e.GlobalName);
    }

    [Fact]
    public void Global_Unknown_IsAClassReferenceInPermissiveMode() =>
        Assert.Equal("mymod.Foo", Assert.IsType<PyGlobal>(Run("cmymod\nFoo\n.", Permissive)).ClassName);

    [Fact]
    public void StackGlobal_TakesModuleAndNameFromTheStack()
    {
        var d = Dict(Run("\u008c\u000bcollections\u008c\u000bOrderedDict\u0093)R."));
        Assert.Equal("collections.OrderedDict", d.PythonType);
    }

    [Fact]
    public void StackGlobal_NonStringArguments_AreMalformed() => Fail("K\u0001K\u0002\u0093.", TorchLoadErrorReason.MalformedPickle);

    [Fact]
    public void Reduce_CallsAnAllowedGlobal()
    {
        var s = Assert.IsType<PySet>(Run("cbuiltins\nset\n]K\u0001aK\u0002a\u0085R."));
        Assert.Equal(new object?[] { 1L, 2L }, s.ToArray());
    }

    [Fact]
    public void Reduce_ArgumentsNotATuple_IsMalformed() => Fail("cbuiltins\nset\n]R.", TorchLoadErrorReason.MalformedPickle);

    [Fact]
    public void Reduce_OnANonGlobal_IsMalformed() => Fail("])R.", TorchLoadErrorReason.MalformedPickle);

    [Fact]
    public void Reduce_UnknownClassInPermissiveMode_IsAnInertCall()
    {
        var o = Assert.IsType<PyObject>(Run("cmymod\nf\nK\u0001K\u0002\u0086R.", Permissive));
        Assert.Equal("mymod.f", o.ClassName);
        Assert.Equal(new object?[] { 1L, 2L }, o.Args);
        Assert.Equal("call", o.ConstructedBy);
    }

    [Fact]
    public void NewObj_AllowedClass() =>
        Assert.Equal("collections.OrderedDict", Dict(Run("ccollections\nOrderedDict\n)\u0081.")).PythonType);

    [Fact]
    public void NewObj_PermissiveUnknownClass()
    {
        var o = Assert.IsType<PyObject>(Run("cmymod\nFoo\nK\u0001\u0085\u0081.", Permissive));
        Assert.Equal("mymod.Foo", o.ClassName);
        Assert.Equal(new object?[] { 1L }, o.Args);
        Assert.Equal("new", o.ConstructedBy);
    }

    [Fact]
    public void NewObj_ArgumentsNotATuple_IsMalformed() => Fail("ccollections\nOrderedDict\n]\u0081.", TorchLoadErrorReason.MalformedPickle);

    [Fact]
    public void NewObjEx_ArgsAndKwargs()
    {
        var o = Assert.IsType<PyObject>(Run("cmymod\nFoo\nK\u0001\u0085}\u008c\u0001kK\u0002s\u0092.", Permissive));
        Assert.Equal(new object?[] { 1L }, o.Args);
        Assert.Equal(2L, o.KwArgs!["k"]);
        Assert.Equal("new", o.ConstructedBy);
    }

    [Fact]
    public void NewObjEx_KwargsNotADict_IsMalformed() => Fail("cmymod\nFoo\n)]\u0092.", TorchLoadErrorReason.MalformedPickle, Permissive);

    [Fact]
    public void Obj_ClassIsTheFirstItemAfterTheMark()
    {
        var o = Assert.IsType<PyObject>(Run("(cmymod\nFoo\nK\u0001K\u0002o.", Permissive));
        Assert.Equal("mymod.Foo", o.ClassName);
        Assert.Equal(new object?[] { 1L, 2L }, o.Args);
    }

    [Fact]
    public void Obj_WithoutClass_IsMalformed() => Fail("(o.", TorchLoadErrorReason.MalformedPickle, Permissive);

    [Fact]
    public void Inst_NamesTheClassInline()
    {
        var o = Assert.IsType<PyObject>(Run("(K\u0001imymod\nFoo\n.", Permissive));
        Assert.Equal("mymod.Foo", o.ClassName);
        Assert.Equal(new object?[] { 1L }, o.Args);
    }

    [Fact]
    public void Inst_UnknownClass_IsUnsafeInWeightsOnlyMode() =>
        Assert.Equal("mymod.Foo", Fail("(K\u0001imymod\nFoo\n.", TorchLoadErrorReason.UnsafeGlobal).GlobalName);

    [Fact]
    public void Build_OrderedDictGetsAttributes()
    {
        var d = Dict(Run("ccollections\nOrderedDict\n)R}\u008c\u0009_metadata}\u008c\u0001vK\u0001ssb."));
        Assert.Equal("collections.OrderedDict", d.PythonType);
        Assert.Empty(d);
        var meta = Assert.IsType<PyDict>(d.Attributes!["_metadata"]);
        Assert.Equal(1L, meta["v"]);
    }

    [Fact]
    public void Build_PermissiveObjectGetsState()
    {
        var o = Assert.IsType<PyObject>(Run("cmymod\nFoo\n)\u0081}\u008c\u0001xK\u0001sb.", Permissive));
        Assert.Equal(1L, Assert.IsType<PyDict>(o.State)["x"]);
    }

    [Fact]
    public void Build_Underflow_IsMalformed() => Fail("}b.", TorchLoadErrorReason.MalformedPickle);

    // ------------------------------------------------------------------ persistent ids

    [Fact]
    public void BinPersId_LoadsAStorage()
    {
        var pickle = new PickleBuilder().Proto().Value(Storage("FloatStorage", "0", 2)).Stop().ToArray();
        var data = CheckpointBuilder.Floats(1.5f, -2f);
        var storage = Assert.IsType<TorchStorage>(CheckpointBuilder.Load(CheckpointBuilder.ZipOf(pickle, ("0", data))).Root);
        Assert.Equal("0", storage.Key);
        Assert.Equal("float32", storage.DType.Name);
        Assert.Equal(2, storage.ElementCount);
        Assert.Equal(8, storage.ByteLength);
        Assert.Equal("cpu", storage.Location);
        Assert.Equal(data, storage.ToByteArray());
    }

    [Fact]
    public void BinPersId_Underflow_IsMalformed() => Fail("Q.", TorchLoadErrorReason.MalformedPickle);

    [Fact]
    public void PersId_PassesTheLineAsAString()
    {
        // the zip loader only accepts storage tuples: the text id reaches it as the string '0'
        var e = Fail("P0\n.", TorchLoadErrorReason.InvalidPersistentId);
        Assert.Contains("str '0'", e.Message);
    }

    // ------------------------------------------------------------------ FRAME and refused opcodes

    [Fact]
    public void Frame_IsTransparent() => Assert.Equal(5L, Run("\u0080\u0004\u0095" + U64(3) + "K\u0005."));

    [Fact]
    public void Frame_PastTheEnd_IsTruncated() => Fail("\u0080\u0004\u0095" + U64(100) + "K\u0005.", TorchLoadErrorReason.TruncatedCheckpoint);

    [Theory]
    [InlineData("\u0082\u0001.")]                          // EXT1
    [InlineData("\u0083\u0001\u0000.")]                    // EXT2
    [InlineData("\u0084\u0001\u0000\u0000\u0000.")]        // EXT4
    [InlineData("\u0097.")]                                // NEXT_BUFFER
    [InlineData("C\u0001a\u0098.")]                        // READONLY_BUFFER
    [InlineData("\u00ff.")]                                // not an opcode
    [InlineData("v.")]                                     // not an opcode ('v', as in an LFS pointer)
    [InlineData("\u0099.")]                                // past the protocol 5 table
    public void RefusedOpcodes_AreUnsupportedOpcode(string pickle) => Fail(pickle, TorchLoadErrorReason.UnsupportedOpcode);

    // ------------------------------------------------------------------ limits

    [Fact]
    public void Limit_MaxNestingDepth()
    {
        var o = new TorchLoadOptions { Limits = LoadLimits.Default with { MaxNestingDepth = 3 } };
        Assert.Equal(new object?[] { new object?[] { Array.Empty<object?>() } }, Tuple(Run("(((ttt.", o)));
        var e = Fail("((((tttt.", TorchLoadErrorReason.LimitExceeded, o);
        Assert.Equal(nameof(LoadLimits.MaxNestingDepth), e.LimitName);
    }

    [Fact]
    public void Limit_MaxMemoEntries()
    {
        var o = new TorchLoadOptions { Limits = LoadLimits.Default with { MaxMemoEntries = 2 } };
        Assert.Equal(1L, Run("K\u0001q\u0000q\u0000q\u0001.", o)); // rewriting an entry does not count twice
        var e = Fail("K\u0001q\u0000q\u0001q\u0002.", TorchLoadErrorReason.LimitExceeded, o);
        Assert.Equal(nameof(LoadLimits.MaxMemoEntries), e.LimitName);
        Assert.Equal(nameof(LoadLimits.MaxMemoEntries), Fail("K\u0001\u0094\u0094\u0094.", TorchLoadErrorReason.LimitExceeded, o).LimitName);
    }

    // ---- memo entries that are never read back are counted, not kept; the tuples REDUCE and BINPERSID consume are not made

    [Fact]
    public void ACallOnAStackTuple_KeepsACopyOfItsArguments()
    {
        // MARK 1 2 TUPLE BINPUT 0 (never read) REDUCE: the arguments lie on the stack; the inert object keeps its own copy
        var o = Assert.IsType<PyObject>(Run("\u0080\u0002cfoo\nBar\n(K\u0001K\u0002tq\u0000R.", Permissive));
        Assert.Equal("foo.Bar", o.ClassName);
        Assert.Equal(new object?[] { 1L, 2L }, o.Args);
        var two = List(Run("]q\u0001(cfoo\nBar\n(K\u0001K\u0002tq\u0000Rcfoo\nBar\n(K\u0003tq\u0002Re.", Permissive));
        Assert.Equal(new object?[] { 1L, 2L }, Assert.IsType<PyObject>(two[0]).Args); // the stack slots were reused by the second call
        Assert.Equal(new object?[] { 3L }, Assert.IsType<PyObject>(two[1]).Args);
    }

    [Fact]
    public void ATupleThatIsReadBack_IsMadeAndUsedTwice()
    {
        // the args tuple is memoized and read again (BINGET 0): it must exist as a tuple
        var list = List(Run("]q\u0001(cfoo\nBar\n(K\u0001tq\u0000Rcfoo\nBar\nh\u0000Rh\u0000e.", Permissive));
        Assert.Equal(3, list.Count);
        Assert.Equal(new object?[] { 1L }, Assert.IsType<PyObject>(list[0]).Args);
        Assert.Equal(new object?[] { 1L }, Assert.IsType<PyObject>(list[1]).Args);
        Assert.Equal(new object?[] { 1L }, Tuple(list[2]));
    }

    [Fact]
    public void ACallableBelowAnotherMark_IsStillAStackUnderflow()
    {
        var e = Fail("cfoo\nBar\n((tq\u0000R.", TorchLoadErrorReason.MalformedPickle, Permissive);
        Assert.Contains("underflow", e.Message);
        Assert.Equal(14, e.ByteOffset); // REDUCE, as when the tuple is made
    }

    [Fact]
    public void Limit_MaxMemoEntries_AnEntryNeverReadIsCountedOnce()
    {
        // LONG_BINPUT 10000 while the memo is empty (far past the others), 3000 MEMOIZEs, then LONG_BINPUT 10000 again
        // (near them now): one entry, as for entries that are read
        var pickle = "K\u0001r" + LE32(10000) + new string('\u0094', 3000) + "r" + LE32(10000) + ".";
        Assert.Equal(1L, Run(pickle, new TorchLoadOptions { Limits = LoadLimits.Default with { MaxMemoEntries = 3001 } }));
        Assert.Equal(nameof(LoadLimits.MaxMemoEntries),
            Fail(pickle, TorchLoadErrorReason.LimitExceeded, new TorchLoadOptions { Limits = LoadLimits.Default with { MaxMemoEntries = 3000 } }).LimitName);
    }

    [Theory]
    [InlineData("X\u0005\u0000\u0000\u0000hello.")]                  // BINUNICODE
    [InlineData("B\u0005\u0000\u0000\u0000hello.")]                  // BINBYTES
    [InlineData("T\u0005\u0000\u0000\u0000hello.")]                  // BINSTRING
    [InlineData("\u008b\u0005\u0000\u0000\u0000\u0001\u0002\u0003\u0004\u0005.")] // LONG4
    [InlineData("Vhello\n.")]                                         // UNICODE
    [InlineData("I123456\n.")]                                        // INT digits
    public void Limit_MaxStringBytes(string pickle)
    {
        var o = new TorchLoadOptions { Limits = LoadLimits.Default with { MaxStringBytes = 4 } };
        var e = Fail(pickle, TorchLoadErrorReason.LimitExceeded, o);
        Assert.Equal(nameof(LoadLimits.MaxStringBytes), e.LimitName);
    }

    [Theory]
    [InlineData("\u008c\u0005hello.")]   // SHORT_BINUNICODE
    [InlineData("C\u0005hello.")]        // SHORT_BINBYTES
    [InlineData("U\u0005hello.")]        // SHORT_BINSTRING
    public void Limit_MaxStringBytes_AlsoCoversShortForms(string pickle)
    {
        var o = new TorchLoadOptions { Limits = LoadLimits.Default with { MaxStringBytes = 4 } };
        var e = Fail(pickle, TorchLoadErrorReason.LimitExceeded, o);
        Assert.Equal(nameof(LoadLimits.MaxStringBytes), e.LimitName);
    }

    [Fact]
    public void Limit_MaxStringBytes_AtTheLimitLoads()
    {
        var o = new TorchLoadOptions { Limits = LoadLimits.Default with { MaxStringBytes = 4 } };
        Assert.Equal("hell", Run("X\u0004\u0000\u0000\u0000hell.", o));
    }

    [Theory]
    [InlineData("(K\u0001K\u0002K\u0003l.")]           // LIST
    [InlineData("(K\u0001K\u0002K\u0003t.")]           // TUPLE
    [InlineData("](K\u0001K\u0002eK\u0003a.")]         // APPENDS then APPEND
    [InlineData("}(K\u0001K\u0001K\u0002K\u0002uK\u0003K\u0003s.")] // SETITEMS then SETITEM
    [InlineData("(K\u0001K\u0001K\u0002K\u0002K\u0003K\u0003d.")] // DICT
    [InlineData("\u008f(K\u0001K\u0002K\u0003\u0090.")] // ADDITEMS
    public void Limit_MaxContainerItems(string pickle)
    {
        var o = new TorchLoadOptions { Limits = LoadLimits.Default with { MaxContainerItems = 2 } };
        var e = Fail(pickle, TorchLoadErrorReason.LimitExceeded, o);
        Assert.Equal(nameof(LoadLimits.MaxContainerItems), e.LimitName);
    }

    // ------------------------------------------------------------------ both containers run the same machine

    [Fact]
    public void LegacyPath_RunsTheSameOpcodes()
    {
        var t = Tuple(RunLegacy("\u0080\u0002(\u008a\u0009\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0001G\u003f\u00f8\u0000\u0000\u0000\u0000\u0000\u0000X\u0002\u0000\u0000\u0000hi]q\u0000h\u0000t."));
        Assert.Equal(BigInteger.One << 64, t[0]);
        Assert.Equal(1.5, t[1]);
        Assert.Equal("hi", t[2]);
        Assert.Same(t[3], t[4]);
    }

    [Fact]
    public void LegacyPath_UnsupportedOpcodeInTheObjectPickle() =>
        Assert.Equal(TorchLoadErrorReason.UnsupportedOpcode,
            Assert.Throws<TorchLoadException>(() => RunLegacy("\u0082\u0001.")).Reason);
}

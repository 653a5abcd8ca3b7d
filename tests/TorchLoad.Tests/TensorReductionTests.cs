using System.Runtime.InteropServices;
using TorchLoad.Core.Audit;
using TorchLoad.Core.Tensors;

namespace TorchLoad.Tests;

/// <summary>
/// The reduction paths torch's fixtures do not reach: many chunks and blocks (parallel merge), NaN/Inf
/// scattered through vector blocks, a large mean with a tiny spread (stability), every element mode, and the
/// dtypes torch 2.6 cannot compute on (float4_e2m1fn_x2, float8_e8m0fnu). The reference is a plain two-pass
/// loop in double over the same numbers.
/// </summary>
public sealed class TensorReductionTests
{
    private static unsafe TorchTensor Tensor<T>(TorchDType dtype, T[] values, long[]? shape = null, long[]? stride = null) where T : unmanaged
    {
        var bytes = MemoryMarshal.AsBytes(values.AsSpan());
        var buffer = new HostBuffer(bytes.Length);
        bytes.CopyTo(new Span<byte>(buffer.Pointer, bytes.Length));
        var count = bytes.Length / dtype.ElementSize;
        var storage = new TorchStorage("0", dtype, count, "cpu") { Buffer = buffer };
        return new TorchTensor(dtype, shape ?? [count], stride ?? [1], 0, storage);
    }

    private static void Matches(IEnumerable<double> numbers, TorchTensor t, double rel = 1e-12)
    {
        var all = numbers.ToArray();
        var finite = all.Where(double.IsFinite).ToArray();
        var mean = finite.Length > 0 ? finite.Average() : double.NaN;
        var m2 = finite.Sum(x => (x - mean) * (x - mean));
        foreach (var device in new[] { "cpu", "ilgpu-cpu" })
        {
            var s = TensorStatistics.Measure("t", t, device);
            Assert.Equal(all.LongLength, s.ElementCount);
            Assert.Equal(all.LongCount(double.IsNaN), s.NaNCount);
            Assert.Equal(all.LongCount(double.IsInfinity), s.InfCount);
            Assert.Equal(all.LongCount(x => x == 0), s.ZeroCount);
            Assert.Equal(finite.LongLength, s.FiniteCount);
            if (finite.Length == 0) { Assert.Null(s.Mean); Assert.Null(s.Min); continue; }
            Assert.Equal(finite.Min(), s.Min);
            Assert.Equal(finite.Max(), s.Max);
            var spread = Math.Sqrt(m2 / Math.Max(finite.Length, 1));
            Assert.True(Math.Abs(s.Mean!.Value - mean) <= rel * Math.Max(Math.Abs(mean), spread), $"{device}: mean {s.Mean:R} vs {mean:R}");
            if (finite.Length > 1)
            {
                var std = Math.Sqrt(m2 / (finite.Length - 1));
                Assert.True(Math.Abs(s.Std!.Value - std) <= rel * std + 1e-300, $"{device}: std {s.Std:R} vs {std:R}");
            }
            else Assert.Null(s.Std);
            var l2 = Math.Sqrt(finite.Sum(x => x * x));
            Assert.True(Math.Abs(s.L2Norm - l2) <= rel * l2 + 1e-300, $"{device}: l2 {s.L2Norm:R} vs {l2:R}");
        }
    }

    [Fact]
    public void Float32_many_chunks_with_nonfinite_values_and_a_large_mean()
    {
        var rng = new Random(14);
        var values = new float[3_000_005];
        for (var i = 0; i < values.Length; i++) values[i] = 1000f + (float)(rng.NextDouble() - 0.5) * 0.01f;
        values[5] = float.NaN; values[4097] = float.PositiveInfinity; values[2_000_000] = float.NegativeInfinity;
        values[values.Length - 1] = float.NaN; values[77] = 0; values[1_234_567] = -0f;
        Matches(values.Select(v => (double)v), Tensor(TorchDType.Float32, values), rel: 1e-9);
    }

    [Fact]
    public void Float64_int64_uint64_and_int32_read_in_place()
    {
        var rng = new Random(1);
        var d = Enumerable.Range(0, 100_003).Select(_ => rng.NextDouble() * 1e6 - 5e5).ToArray();
        d[10] = double.NaN;
        Matches(d, Tensor(TorchDType.Float64, d));
        var l = Enumerable.Range(0, 50_001).Select(i => (long)i * 7919 - 1_000_000).ToArray();
        Matches(l.Select(x => (double)x), Tensor(TorchDType.Int64, l));
        ulong[] u = [0, 1, ulong.MaxValue, 1UL << 63, 12345];
        Matches(u.Select(x => (double)x), Tensor(TorchDType.UInt64, u));
        var n = Enumerable.Range(-3000, 7000).ToArray();
        Matches(n.Select(x => (double)x), Tensor(TorchDType.Int32, n));
    }

    [Fact]
    public void Half_and_byte_dtypes_read_through_code_tables()
    {
        var h = Enumerable.Range(0, 70_000).Select(i => (Half)((i % 2000) * 0.5f - 300)).ToArray();
        h[3] = Half.NaN; h[9] = Half.PositiveInfinity;
        Matches(h.Select(x => (double)x), Tensor(TorchDType.Float16, h));
        var b = Enumerable.Range(0, 1000).Select(i => (sbyte)(i % 256 - 128)).ToArray();
        Matches(b.Select(x => (double)x), Tensor(TorchDType.Int8, b));
    }

    [Fact]
    public void A_transposed_view_is_gathered_in_order()
    {
        var v = Enumerable.Range(0, 12).Select(i => (float)(i * i) - 20).ToArray();
        var t = Tensor(TorchDType.Float32, v, shape: [4, 3], stride: [1, 4]);
        Matches(v.Select(x => (double)x), t);
    }

    [Fact]
    public void Float4_pairs_and_float8_e8m0_decode_as_their_formats()
    {
        // float4_e2m1fn: low nibble first; codes 0..7 = 0, 0.5, 1, 1.5, 2, 3, 4, 6; bit 3 the sign
        byte[] f4 = [0x21, 0xF7, 0x80];
        Matches([0.5, 1, 6, -6, 0, -0.0], Tensor(TorchDType.Float4E2M1FNx2, f4));
        // float8_e8m0fnu: 2^(e-127), 0xFF NaN
        byte[] e8 = [127, 128, 0, 0xFF, 130];
        Matches([1, 2, Math.Pow(2, -127), double.NaN, 8], Tensor(TorchDType.Float8E8M0FNU, e8));
    }

    [Fact]
    public void Nothing_finite_gives_no_min_mean_or_std()
    {
        float[] v = [float.NaN, float.PositiveInfinity];
        Matches(v.Select(x => (double)x), Tensor(TorchDType.Float32, v));
        var one = TensorStatistics.Measure("t", Tensor(TorchDType.Float32, new[] { 2f }));
        Assert.Null(one.Std);
        Assert.Equal(2, one.Mean);
    }

    [Fact]
    public void A_meta_tensor_has_no_values()
    {
        var meta = new TorchTensor(TorchDType.Float32, [3], [1], 0, null);
        Assert.Throws<InvalidOperationException>(() => TensorStatistics.Measure("m", meta));
    }
}

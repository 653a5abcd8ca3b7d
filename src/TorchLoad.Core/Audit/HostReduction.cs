using System.Numerics;
using TorchLoad.Core.Tensors;

namespace TorchLoad.Core.Audit;

/// <summary>
/// The statistics reduction on the host: the values are split into chunks reduced in parallel, each
/// chunk into blocks small enough to stay in L1 that are read twice (sums, min, max and counts with
/// System.Numerics vectors, then squared deviations from the block's mean), and the partials merge in
/// chunk order, so the result does not depend on scheduling. Accumulation is in double throughout.
/// A block holding NaN or Inf is redone one value at a time (the vector pass assumes finite values).
/// </summary>
internal static class HostReduction
{
    private const int Block = 4096;
    private const long ChunkElements = 1 << 18;

    public static unsafe ValueMoments Reduce(TensorValues values, CancellationToken cancel)
    {
        if (values.Count == 0) return ValueMoments.Empty;
        if (values.Gathered is { } gathered)
        {
            fixed (double* p = gathered) return Reduce((byte*)p, values, cancel);
        }
        var buffer = values.Buffer!;
        if (buffer.IsHostAccessible) return Reduce(buffer.Pointer + values.ByteOffset, values, cancel);
        return ReduceCopied(buffer, values, cancel);
    }

    /// <summary>
    /// Bytes in a file (-Mmap: read through the handle, checked against a rewrite) or on a device: each chunk is
    /// copied into a small buffer of its worker and reduced there, so nothing the size of the tensor is allocated
    /// and the copy stays in cache for the reduction.
    /// </summary>
    private static unsafe ValueMoments ReduceCopied(StorageBuffer buffer, TensorValues values, CancellationToken cancel)
    {
        var count = values.Count;
        var size = values.ElementSize;
        var chunks = (count + ChunkElements - 1) / ChunkElements;
        var partials = new ValueMoments[chunks];
        try
        {
            CopyAndReduce();
        }
        catch (AggregateException e)
        {
            Archive.ParallelReads.RethrowFirst(e); // a file that changed (CheckpointChanged) or a device error, as itself
        }
        var total = ValueMoments.Empty;
        foreach (ref readonly var p in partials.AsSpan()) total.Merge(p);
        return total;

        void CopyAndReduce() => Parallel.For(0, chunks, new ParallelOptions { CancellationToken = cancel },
            () => new HostBuffer(ChunkElements * size),
            (c, _, local) =>
            {
                var start = c * ChunkElements;
                var n = Math.Min(ChunkElements, count - start);
                buffer.CopyTo(values.ByteOffset + start * size, new Span<byte>(local.Pointer, checked((int)(n * size))));
                partials[c] = ReduceChunk(local.Pointer, 0, n, values.Mode, values.Table);
                return local;
            },
            local => local.Dispose());
    }

    private static unsafe ValueMoments Reduce(byte* data, TensorValues values, CancellationToken cancel)
    {
        var count = values.Count;
        var chunks = (count + ChunkElements - 1) / ChunkElements;
        var mode = values.Mode;
        var table = values.Table;
        var size = values.ElementSize;
        if (chunks == 1) return ReduceChunk(data, 0, count, mode, table);
        var partials = new ValueMoments[chunks];
        var address = (nint)data;
        Parallel.For(0, chunks, new ParallelOptions { CancellationToken = cancel }, c =>
        {
            var start = c * ChunkElements;
            partials[c] = ReduceChunk((byte*)address, start, Math.Min(ChunkElements, count - start), mode, table);
        });
        var total = ValueMoments.Empty;
        foreach (ref readonly var p in partials.AsSpan()) total.Merge(p);
        return total;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe ValueMoments ReduceChunk(byte* data, long start, long count, ValueMode mode, double[]? table)
    {
        var total = ValueMoments.Empty;
        double* scratch = stackalloc double[Block];
        for (long done = 0; done < count; done += Block)
        {
            var n = (int)Math.Min(Block, count - done);
            var i = start + done;
            ValueMoments block;
            switch (mode)
            {
                case ValueMode.Float32: block = BlockOfFloats((float*)data + i, n, scratch); break;
                case ValueMode.Float64: block = BlockOfDoubles((double*)data + i, n); break;
                default:
                    Decode(data, i, n, mode, table, scratch);
                    block = BlockOfDoubles(scratch, n);
                    break;
            }
            total.Merge(block);
        }
        return total;
    }

    private static unsafe void Decode(byte* data, long start, int n, ValueMode mode, double[]? table, double* to)
    {
        switch (mode)
        {
            case ValueMode.Int32: { var p = (int*)data + start; for (var k = 0; k < n; k++) to[k] = p[k]; break; }
            case ValueMode.UInt32: { var p = (uint*)data + start; for (var k = 0; k < n; k++) to[k] = p[k]; break; }
            case ValueMode.Int64: { var p = (long*)data + start; for (var k = 0; k < n; k++) to[k] = p[k]; break; }
            case ValueMode.UInt64: { var p = (ulong*)data + start; for (var k = 0; k < n; k++) to[k] = p[k]; break; }
            case ValueMode.Table8: { var p = data + start; for (var k = 0; k < n; k++) to[k] = table![p[k]]; break; }
            case ValueMode.Table16: { var p = (ushort*)data + start; for (var k = 0; k < n; k++) to[k] = table![p[k]]; break; }
            default: throw new InvalidOperationException($"No decoder for {mode}.");
        }
    }

    /// <summary>One block of float32: vector pass over the whole vectors, the rest (and any block with NaN/Inf) value by value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe ValueMoments BlockOfFloats(float* p, int n, double* scratch)
    {
        var w = Vector<float>.Count;
        var whole = Vector.IsHardwareAccelerated ? n - n % w : 0;
        var result = ValueMoments.Empty;
        if (whole > 0)
        {
            var inf = new Vector<float>(float.PositiveInfinity);
            var min = new Vector<float>(float.PositiveInfinity);
            var max = new Vector<float>(float.NegativeInfinity);
            var finite = Vector<int>.AllBitsSet;
            var zeros = Vector<int>.Zero;
            Vector<double> s0 = Vector<double>.Zero, s1 = Vector<double>.Zero;
            for (var i = 0; i < whole; i += w)
            {
                var v = Unsafe.ReadUnaligned<Vector<float>>(p + i);
                finite &= Vector.LessThan(Vector.Abs(v), inf);
                min = Vector.Min(min, v);
                max = Vector.Max(max, v);
                zeros -= Vector.Equals(v, Vector<float>.Zero);
                Vector.Widen(v, out var lo, out var hi);
                s0 += lo;
                s1 += hi;
            }
            if (finite == Vector<int>.AllBitsSet)
            {
                var mean = Vector.Sum(s0 + s1) / whole;
                var m = new Vector<double>(mean);
                Vector<double> d = Vector<double>.Zero, dd = Vector<double>.Zero;
                for (var i = 0; i < whole; i += w)
                {
                    Vector.Widen(Unsafe.ReadUnaligned<Vector<float>>(p + i), out var lo, out var hi);
                    lo -= m;
                    hi -= m;
                    d += lo + hi;
                    dd += lo * lo + hi * hi;
                }
                var sd = Vector.Sum(d);
                result = new ValueMoments
                {
                    Count = whole, Mean = mean + sd / whole, M2 = Vector.Sum(dd) - sd * sd / whole,
                    Min = Reduce(min, Math.Min), Max = Reduce(max, Math.Max), Zero = Vector.Sum(zeros),
                };
            }
            else
            {
                for (var i = 0; i < whole; i++) scratch[i] = p[i];
                result = Scalar(scratch, whole);
            }
        }
        for (var i = whole; i < n; i++) result.Add(p[i]);
        return result;
    }

    /// <summary>One block of doubles, as <see cref="BlockOfFloats"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe ValueMoments BlockOfDoubles(double* p, int n)
    {
        var w = Vector<double>.Count;
        var whole = Vector.IsHardwareAccelerated ? n - n % w : 0;
        var result = ValueMoments.Empty;
        if (whole > 0)
        {
            var inf = new Vector<double>(double.PositiveInfinity);
            var min = new Vector<double>(double.PositiveInfinity);
            var max = new Vector<double>(double.NegativeInfinity);
            var finite = Vector<long>.AllBitsSet;
            var zeros = Vector<long>.Zero;
            var s = Vector<double>.Zero;
            for (var i = 0; i < whole; i += w)
            {
                var v = Unsafe.ReadUnaligned<Vector<double>>(p + i);
                finite &= Vector.LessThan(Vector.Abs(v), inf);
                min = Vector.Min(min, v);
                max = Vector.Max(max, v);
                zeros -= Vector.Equals(v, Vector<double>.Zero);
                s += v;
            }
            if (finite == Vector<long>.AllBitsSet)
            {
                var mean = Vector.Sum(s) / whole;
                var m = new Vector<double>(mean);
                Vector<double> d = Vector<double>.Zero, dd = Vector<double>.Zero;
                for (var i = 0; i < whole; i += w)
                {
                    var x = Unsafe.ReadUnaligned<Vector<double>>(p + i) - m;
                    d += x;
                    dd += x * x;
                }
                var sd = Vector.Sum(d);
                result = new ValueMoments
                {
                    Count = whole, Mean = mean + sd / whole, M2 = Vector.Sum(dd) - sd * sd / whole,
                    Min = Reduce(min, Math.Min), Max = Reduce(max, Math.Max), Zero = Vector.Sum(zeros),
                };
            }
            else result = Scalar(p, whole);
        }
        for (var i = whole; i < n; i++) result.Add(p[i]);
        return result;
    }

    /// <summary>A block with NaN or Inf: counts those, then two passes over the finite values.</summary>
    private static unsafe ValueMoments Scalar(double* p, int n)
    {
        var r = ValueMoments.Empty;
        double sum = 0;
        for (var i = 0; i < n; i++)
        {
            var v = p[i];
            if (double.IsNaN(v)) r.NaN++;
            else if (double.IsInfinity(v)) r.Inf++;
            else
            {
                r.Count++;
                sum += v;
                if (v == 0) r.Zero++;
                if (v < r.Min) r.Min = v;
                if (v > r.Max) r.Max = v;
            }
        }
        if (r.Count == 0) return r;
        var mean = sum / r.Count;
        double d = 0, dd = 0;
        for (var i = 0; i < n; i++)
        {
            var v = p[i];
            if (!double.IsFinite(v)) continue;
            var x = v - mean;
            d += x;
            dd += x * x;
        }
        r.Mean = mean + d / r.Count;
        r.M2 = dd - d * d / r.Count;
        return r;
    }

    private static double Reduce(Vector<float> v, Func<float, float, float> f)
    {
        var r = v[0];
        for (var i = 1; i < Vector<float>.Count; i++) r = f(r, v[i]);
        return r;
    }

    private static double Reduce(Vector<double> v, Func<double, double, double> f)
    {
        var r = v[0];
        for (var i = 1; i < Vector<double>.Count; i++) r = f(r, v[i]);
        return r;
    }
}

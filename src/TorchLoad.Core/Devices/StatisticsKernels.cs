using ILGPU;
using ILGPU.Runtime;
using TorchLoad.Core.Audit;
using TorchLoad.Core.Tensors;

namespace TorchLoad.Core.Devices;

/// <summary>
/// The statistics reduction as ILGPU kernels (<c>cuda:N</c>, and <c>ilgpu-cpu</c> where there is no GPU).
/// Thread i folds elements i, i+T, i+2T, … (coalesced reads on a GPU) into a Welford partial in
/// double; the host merges the T partials in thread order with the same merge as the host reduction.
/// Values already on the device are read in place; host values are uploaded once.
/// </summary>
internal static class StatisticsKernels
{
    private const int Fields = 8;

    public static unsafe ValueMoments Reduce(TensorValues values, AcceleratorDevice device, CancellationToken cancel)
    {
        if (values.Count == 0) return ValueMoments.Empty;
        var acc = device.Accelerator;
        var bytes = checked(values.Count * values.ElementSize);
        var threads = (int)Math.Clamp((values.Count + 1023) / 1024, 1, acc.AcceleratorType == AcceleratorType.CPU ? 64 : 1 << 16);
        lock (device.TransferGate)
        {
            cancel.ThrowIfCancellationRequested();
            MemoryBuffer1D<byte, Stride1D.Dense>? uploaded = null;
            try
            {
                ArrayView<byte> data;
                if (values.Buffer is DeviceBuffer onDevice && onDevice.Device == device.Name)
                    data = onDevice.Memory.View.AsContiguous().SubView(values.ByteOffset, bytes);
                else
                {
                    uploaded = acc.Allocate1D<byte>(bytes);
                    Upload(values, uploaded, bytes);
                    data = uploaded.View;
                }
                using var partials = acc.Allocate1D<double>((long)threads * Fields);
                using var table = acc.Allocate1D<double>(Math.Max(values.Table?.Length ?? 1, 1));
                if (values.Table is { } t) table.View.CopyFromCPU(t);
                var n = values.Count;
                var kernels = Kernels.For(acc);
                switch (values.Mode)
                {
                    case ValueMode.Float32: kernels.Float32(threads, data.Cast<float>(), partials.View, n, threads); break;
                    case ValueMode.Float64: kernels.Float64(threads, data.Cast<double>(), partials.View, n, threads); break;
                    case ValueMode.Int32: kernels.Int32(threads, data.Cast<int>(), partials.View, n, threads); break;
                    case ValueMode.UInt32: kernels.UInt32(threads, data.Cast<uint>(), partials.View, n, threads); break;
                    case ValueMode.Int64: kernels.Int64(threads, data.Cast<long>(), partials.View, n, threads); break;
                    case ValueMode.UInt64: kernels.UInt64(threads, data.Cast<ulong>(), partials.View, n, threads); break;
                    case ValueMode.Table8: kernels.Table8(threads, data, table.View, partials.View, n, threads); break;
                    case ValueMode.Table16: kernels.Table16(threads, data.Cast<ushort>(), table.View, partials.View, n, threads); break;
                }
                acc.Synchronize();
                var host = partials.GetAsArray1D();
                var total = ValueMoments.Empty;
                for (var i = 0; i < threads; i++)
                {
                    var o = i * Fields;
                    total.Merge(new ValueMoments
                    {
                        Count = (long)host[o], Mean = host[o + 1], M2 = host[o + 2], Min = host[o + 3], Max = host[o + 4],
                        NaN = (long)host[o + 5], Inf = (long)host[o + 6], Zero = (long)host[o + 7],
                    });
                }
                return total;
            }
            finally
            {
                uploaded?.Dispose();
            }
        }
    }

    private static unsafe void Upload(TensorValues values, MemoryBuffer1D<byte, Stride1D.Dense> target, long bytes)
    {
        if (values.Gathered is { } gathered)
        {
            fixed (double* p = gathered) target.View.CopyFromCPU(ref *(byte*)p, bytes);
            return;
        }
        var buffer = values.Buffer!;
        if (buffer.IsHostAccessible)
        {
            target.View.CopyFromCPU(ref *(buffer.Pointer + values.ByteOffset), bytes);
            return;
        }
        using var host = new HostBuffer(bytes); // on another device: through host memory
        for (long done = 0; done < bytes;)
        {
            var n = (int)Math.Min(1 << 28, bytes - done);
            buffer.CopyTo(values.ByteOffset + done, new Span<byte>(host.Pointer + done, n));
            done += n;
        }
        target.View.CopyFromCPU(ref *host.Pointer, bytes);
    }

    /// <summary>The compiled kernels of one accelerator, made on first use.</summary>
    private sealed class Kernels
    {
        private static readonly ConditionalWeakTable<Accelerator, Kernels> Cache = new();

        public static Kernels For(Accelerator acc) => Cache.GetValue(acc, a => new Kernels(a));

        private Kernels(Accelerator a)
        {
            Float32 = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<double>, long, int>(Float32Kernel);
            Float64 = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<double>, ArrayView<double>, long, int>(Float64Kernel);
            Int32 = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<int>, ArrayView<double>, long, int>(Int32Kernel);
            UInt32 = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<uint>, ArrayView<double>, long, int>(UInt32Kernel);
            Int64 = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<long>, ArrayView<double>, long, int>(Int64Kernel);
            UInt64 = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<ulong>, ArrayView<double>, long, int>(UInt64Kernel);
            Table8 = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<byte>, ArrayView<double>, ArrayView<double>, long, int>(Table8Kernel);
            Table16 = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<ushort>, ArrayView<double>, ArrayView<double>, long, int>(Table16Kernel);
        }

        public Action<Index1D, ArrayView<float>, ArrayView<double>, long, int> Float32 { get; }
        public Action<Index1D, ArrayView<double>, ArrayView<double>, long, int> Float64 { get; }
        public Action<Index1D, ArrayView<int>, ArrayView<double>, long, int> Int32 { get; }
        public Action<Index1D, ArrayView<uint>, ArrayView<double>, long, int> UInt32 { get; }
        public Action<Index1D, ArrayView<long>, ArrayView<double>, long, int> Int64 { get; }
        public Action<Index1D, ArrayView<ulong>, ArrayView<double>, long, int> UInt64 { get; }
        public Action<Index1D, ArrayView<byte>, ArrayView<double>, ArrayView<double>, long, int> Table8 { get; }
        public Action<Index1D, ArrayView<ushort>, ArrayView<double>, ArrayView<double>, long, int> Table16 { get; }
    }

    private static void Float32Kernel(Index1D i, ArrayView<float> x, ArrayView<double> o, long n, int threads)
    {
        var w = Welford.Start();
        for (long k = i; k < n; k += threads) w.Add(x[k]);
        w.Store(o, i);
    }

    private static void Float64Kernel(Index1D i, ArrayView<double> x, ArrayView<double> o, long n, int threads)
    {
        var w = Welford.Start();
        for (long k = i; k < n; k += threads) w.Add(x[k]);
        w.Store(o, i);
    }

    private static void Int32Kernel(Index1D i, ArrayView<int> x, ArrayView<double> o, long n, int threads)
    {
        var w = Welford.Start();
        for (long k = i; k < n; k += threads) w.Add(x[k]);
        w.Store(o, i);
    }

    private static void UInt32Kernel(Index1D i, ArrayView<uint> x, ArrayView<double> o, long n, int threads)
    {
        var w = Welford.Start();
        for (long k = i; k < n; k += threads) w.Add(x[k]);
        w.Store(o, i);
    }

    private static void Int64Kernel(Index1D i, ArrayView<long> x, ArrayView<double> o, long n, int threads)
    {
        var w = Welford.Start();
        for (long k = i; k < n; k += threads) w.Add(x[k]);
        w.Store(o, i);
    }

    private static void UInt64Kernel(Index1D i, ArrayView<ulong> x, ArrayView<double> o, long n, int threads)
    {
        var w = Welford.Start();
        for (long k = i; k < n; k += threads) w.Add(x[k]);
        w.Store(o, i);
    }

    private static void Table8Kernel(Index1D i, ArrayView<byte> x, ArrayView<double> table, ArrayView<double> o, long n, int threads)
    {
        var w = Welford.Start();
        for (long k = i; k < n; k += threads) w.Add(table[(int)x[k]]);
        w.Store(o, i);
    }

    private static void Table16Kernel(Index1D i, ArrayView<ushort> x, ArrayView<double> table, ArrayView<double> o, long n, int threads)
    {
        var w = Welford.Start();
        for (long k = i; k < n; k += threads) w.Add(table[(int)x[k]]);
        w.Store(o, i);
    }

    /// <summary>One thread's partial (a value type the kernels can use); NaN and Inf tested by comparison, which every backend has.</summary>
    private struct Welford
    {
        private double _count, _mean, _m2, _min, _max, _nan, _inf, _zero;

        public static Welford Start() => new() { _min = double.PositiveInfinity, _max = double.NegativeInfinity };

        public void Add(double v)
        {
#pragma warning disable CS1718 // v != v is the NaN test that needs no intrinsic
            if (v != v) { _nan += 1; return; }
#pragma warning restore CS1718
            if (v == double.PositiveInfinity || v == double.NegativeInfinity) { _inf += 1; return; }
            if (v == 0) _zero += 1;
            _count += 1;
            var delta = v - _mean;
            _mean += delta / _count;
            _m2 += delta * (v - _mean);
            if (v < _min) _min = v;
            if (v > _max) _max = v;
        }

        public readonly void Store(ArrayView<double> o, int i)
        {
            var b = i * Fields;
            o[b] = _count; o[b + 1] = _mean; o[b + 2] = _m2; o[b + 3] = _min;
            o[b + 4] = _max; o[b + 5] = _nan; o[b + 6] = _inf; o[b + 7] = _zero;
        }
    }
}

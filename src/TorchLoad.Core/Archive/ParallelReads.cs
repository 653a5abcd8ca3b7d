using TorchLoad.Core.Errors;

namespace TorchLoad.Core.Archive;

/// <summary>
/// The worker pool behind large reads (a load's large storages, a DCP load's raw chunks): up to four workers
/// take the next item in order; the first failure stops the others, and surfaces as the exception it was.
/// </summary>
internal static class ParallelReads
{
    public static int Workers(int items) => Math.Min(items, Math.Clamp(Environment.ProcessorCount, 1, 4));

    /// <summary>
    /// Runs <paramref name="read"/> for items 0..count-1 on <paramref name="workers"/> workers, calling
    /// <paramref name="tick"/> every 100 ms on this thread (progress). Workers stop between items when
    /// <paramref name="cancel"/> is set, without throwing: the caller checks it afterwards.
    /// </summary>
    public static void Run(int count, int workers, Action<int, CancellationToken> read, CancellationToken cancel, Action? tick)
    {
        var next = -1;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        var all = Task.WhenAll(Enumerable.Range(0, workers).Select(_ => Task.Run(() =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < count && !stop.IsCancellationRequested)
            {
                try { read(i, stop.Token); }
                catch { stop.Cancel(); throw; }
            }
        })));
        try
        {
            while (!all.Wait(100)) tick?.Invoke();
        }
        catch (AggregateException e)
        {
            RethrowFirst(e);
        }
        catch
        {
            // the tick threw (PowerShell's WriteProgress after Ctrl+C): stop the workers and wait for them,
            // or the caller would free buffers they are still reading into
            stop.Cancel();
            try { all.Wait(); } catch (AggregateException) { }
            throw;
        }
    }

    /// <summary>The first real failure of parallel work, as the exception it was (TorchLoadException first, then anything but cancellation).</summary>
    public static void RethrowFirst(AggregateException e)
    {
        var inner = e.Flatten().InnerExceptions;
        if (inner.Count == 0) throw e;
        System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(
            inner.FirstOrDefault(x => x is TorchLoadException) ?? inner.FirstOrDefault(x => x is not OperationCanceledException) ?? inner[0]);
    }
}

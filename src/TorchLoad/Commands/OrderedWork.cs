namespace TorchLoad.Commands;

/// <summary>
/// Per-file work that runs on thread-pool workers while the pipeline thread writes each result in the order the
/// files came. An audit of a thousand 5 KB checkpoints is a fixed cost per file (open, directory, pickle): with
/// workers both cores do it, and PowerShell's binding of the next piped file overlaps the work. Results, failures
/// included, reach their writer on the pipeline thread only (WriteObject, WriteError and scriptblocks must run
/// there), oldest first; at most <see cref="Window"/> files are in flight, so memory stays bounded.
/// </summary>
internal sealed class OrderedWork
{
    private readonly Queue<(Task Work, Action Write)> _inFlight = new();

    /// <summary>Files in flight at once: two per core (one core: none, the work runs inline).</summary>
    public static int Window { get; } = Environment.ProcessorCount > 1 ? Math.Min(Environment.ProcessorCount, 8) * 2 : 0;

    /// <summary>
    /// Starts <paramref name="work"/> on a worker; <paramref name="write"/> later gets a function that returns its
    /// result or throws what it threw. Before returning, writes every result that is ready in order, and waits for
    /// the oldest while the window is full.
    /// </summary>
    public void Add<T>(Func<T> work, Action<Func<T>> write)
    {
        if (Window == 0)
        {
            write(work);
            return;
        }
        var task = Task.Run(work);
        _inFlight.Enqueue((task, () => write(() => task.GetAwaiter().GetResult())));
        WriteReady(Window);
    }

    /// <summary>Writes results in order while the oldest is finished, or while more than <paramref name="keep"/> are in flight (0: all of them).</summary>
    public void WriteReady(int keep = 0)
    {
        while (_inFlight.Count > 0 && (_inFlight.Count > keep || _inFlight.Peek().Work.IsCompleted))
        {
            var (_, write) = _inFlight.Dequeue();
            write();
        }
    }

    /// <summary>The pipeline stopped (Ctrl+C, Select-Object -First): waits for the work already started, whose results go unwritten.</summary>
    public void Abandon()
    {
        while (_inFlight.TryDequeue(out var item))
        {
            try { item.Work.Wait(); }
            catch (AggregateException) { } // cancelled or failed: nobody reads it now
        }
    }
}

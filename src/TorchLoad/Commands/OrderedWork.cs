namespace TorchLoad.Commands;

/// <summary>
/// Per-file work that runs on thread-pool workers while the pipeline thread writes each result in the order the
/// files came. An audit of a thousand 5 KB checkpoints is a fixed cost per file (open, directory, pickle): with
/// workers both cores do it, and PowerShell's binding of the next piped file overlaps the work. Results, failures
/// included, reach their writer on the pipeline thread only (WriteObject, WriteError and scriptblocks must run
/// there), oldest first; at most <see cref="Window"/> files are in flight, so memory stays bounded. Files go to the
/// workers in batches of <see cref="Batch"/>: one hand-off per file (a wake-up, a wait) cost as much as auditing
/// a small file.
/// </summary>
internal sealed class OrderedWork
{
    private readonly Queue<Item> _inFlight = new();
    private List<Item>? _unstarted;

    /// <summary>Files in flight at once: eight per core (one core: none, the work runs inline).</summary>
    public static int Window { get; } = Environment.ProcessorCount > 1 ? Math.Min(Environment.ProcessorCount, 8) * 8 : 0;

    /// <summary>Files one worker takes at a time.</summary>
    public const int Batch = 4;

    /// <summary>
    /// Queues <paramref name="work"/> for a worker; <paramref name="write"/> later gets a function that returns its
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
        var item = new Item<T>(work, write);
        _inFlight.Enqueue(item);
        (_unstarted ??= []).Add(item);
        // a batch goes when it is full, or at once while a core has nothing to do (a slow pipeline is not held back)
        if (_unstarted.Count >= Batch || Volatile.Read(ref _running) == 0) StartUnstarted();
        WriteReady(Window);
    }

    /// <summary>Writes results in order while the oldest is finished, or while more than <paramref name="keep"/> are in flight (0: all of them).</summary>
    public void WriteReady(int keep = 0)
    {
        while (_inFlight.Count > 0 && (_inFlight.Count > keep || _inFlight.Peek().IsCompleted))
        {
            var item = _inFlight.Peek();
            if (!item.IsCompleted && _unstarted is { Count: > 0 }) StartUnstarted(); // the oldest may not have gone yet
            item.Wait();
            _inFlight.Dequeue();
            item.Write();
        }
    }

    /// <summary>The pipeline stopped (Ctrl+C, Select-Object -First): waits for the work already started, whose results go unwritten.</summary>
    public void Abandon()
    {
        _unstarted = null; // never started: nothing to wait for
        while (_inFlight.TryDequeue(out var item))
            if (item.Started) item.Wait();
    }

    private int _running; // batches started and not finished

    private void StartUnstarted()
    {
        var batch = _unstarted!;
        _unstarted = null;
        foreach (var item in batch) item.Started = true;
        Interlocked.Increment(ref _running);
        var task = Task.Run(() =>
        {
            try { foreach (var item in batch) item.Run(); }
            finally { Interlocked.Decrement(ref _running); }
        });
        foreach (var item in batch) item.Task = task;
    }

    /// <summary>One file's work and its outcome (a result or the exception it threw).</summary>
    private abstract class Item
    {
        private bool _done;

        public Task? Task { get; set; }
        public bool Started { get; set; }
        public bool IsCompleted => Volatile.Read(ref _done);

        /// <summary>Runs the work, keeping what it returned or threw (never throws).</summary>
        public abstract void Run();

        /// <summary>Hands the outcome to its writer.</summary>
        public abstract void Write();

        protected void MarkDone() => Volatile.Write(ref _done, true);

        // the item's own batch: Run never throws (its failure is kept for Write), so neither does this
        public void Wait()
        {
            if (!IsCompleted) Task!.Wait();
        }
    }

    /// <summary>An item typed by its result: no wrapping delegates per file (a thousand small audits allocate little).</summary>
    private sealed class Item<T>(Func<T> work, Action<Func<T>> write) : Item
    {
        private T? _result;
        private Exception? _failure;

        public override void Run()
        {
            try { _result = work(); }
            catch (Exception e) { _failure = e; }
            MarkDone();
        }

        public override void Write() => write(Result);

        private T Result() => _failure is null ? _result! : throw Rethrow(_failure);

        private static Exception Rethrow(Exception e)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e).Throw();
            return e; // not reached
        }
    }
}

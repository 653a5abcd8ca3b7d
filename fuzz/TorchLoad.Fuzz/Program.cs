// TorchLoad.Fuzz: the fuzz harness of issue 6.
//
//   TorchLoad.Fuzz afl                                   run under afl-fuzz (SharpFuzz out-of-process loop);
//                                                        TorchLoad.Core.dll must have been instrumented by `sharpfuzz`.
//   TorchLoad.Fuzz smoke --seconds N --seeds DIR [--seed S] [--out DIR] [--timeout-ms T] [--work FILE] [--strict]
//                                                        in-process, deterministic mutation loop (no afl); CI's bounded smoke.
//   TorchLoad.Fuzz run FILE...                           load each file once the way the harness does and print the outcome
//                                                        (used to triage and to minimise findings).
//   TorchLoad.Fuzz dump FILE...                          load each file (weights_only false) and list its tensors' geometry.
//
// The contract under test: TorchLoader.Load only ever throws TorchLoadException for bad input, never hangs and never
// allocates without bound. Anything else is a finding:
//   * any exception that is not a TorchLoadException (from Load, from walking the result or from ToByteArray);
//   * a TorchLoadException caused by OutOfMemoryException (runtimeconfig caps the GC heap at 3 GiB, so a small input
//     that reaches it is an unbounded allocation, which Load would otherwise report as LimitExceeded 'memory');
//   * a strided tensor whose view reaches outside its storage (TensorBytes.Gather would read out of bounds through
//     an unmanaged pointer; checked before ToByteArray so it reports instead of corrupting memory);
//   * (smoke) an input that runs past the per-input timeout: a hang.
// "Masked" bugs, TorchLoadExceptions that Load made out of a raw NullReferenceException, IndexOutOfRangeException,
// ... (its last-resort wrapper for reader bugs), are counted and sampled; --strict (or TORCHLOAD_FUZZ_STRICT=1)
// makes them findings too.
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using TorchLoad.Core;
using TorchLoad.Core.Errors;
using TorchLoad.Core.Tensors;

namespace TorchLoad.Fuzz;

public static class Program
{
    public static int Main(string[] args)
    {
        if (args.Length == 0) return Usage();
        try
        {
            return args[0] switch
            {
                "afl" => RunAfl(),
                "smoke" => Smoke.Run(args[1..]),
                "run" => RunFiles(args[1..]),
                "dump" => Dump(args[1..]),
                _ => Usage(),
            };
        }
        catch (UsageException e)
        {
            Console.Error.WriteLine(e.Message);
            return Usage();
        }
    }

    private static int Usage()
    {
        Console.Error.WriteLine("usage: TorchLoad.Fuzz afl | smoke --seconds N --seeds DIR [--seed S] [--out DIR] [--timeout-ms T] [--work FILE] [--strict] | run FILE...");
        return 2;
    }

    private static int RunAfl()
    {
        var strict = Environment.GetEnvironmentVariable("TORCHLOAD_FUZZ_STRICT") == "1";
        var work = Path.Combine(Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath(), $"torchload-fuzz-{Environment.ProcessId}.bin");
        SharpFuzz.Fuzzer.OutOfProcess.Run(stream =>
        {
            using (var file = new FileStream(work, FileMode.Create, FileAccess.Write, FileShare.ReadWrite))
                stream.CopyTo(file);
            // Throws FuzzFinding (or lets a raw exception through) for anything afl should record as a crash.
            Harness.Exercise(work, strict);
        });
        return 0;
    }

    private static int Dump(string[] files)
    {
        foreach (var f in files)
        {
            try
            {
                var c = TorchLoader.Load(f, new TorchLoadOptions { WeightsOnly = false, MetadataOnly = true });
                Console.WriteLine($"{f}: {c.Format}, {c.Storages.Count} storages");
                foreach (var s in c.Storages) Console.WriteLine($"  storage {s.Key}: {s.DType} x {s.ElementCount} = {s.ByteLength} bytes, record {s.RecordName}, file offset {s.FileOffset}");
                foreach (var found in TensorWalker.Walk(c.Root))
                    if (found.Tensor is { } t)
                        Console.WriteLine($"  tensor '{found.Path}': {t.DType} {t.Layout} shape [{string.Join(", ", t.Shape)}] stride [{string.Join(", ", t.Stride)}] offset {t.StorageOffset} storage {t.Storage?.Key}");
            }
            catch (Exception e)
            {
                Console.WriteLine($"{f}: {e.GetType().Name}: {e.Message}");
            }
        }
        return 0;
    }

    private static int RunFiles(string[] files)
    {
        var strict = Environment.GetEnvironmentVariable("TORCHLOAD_FUZZ_STRICT") == "1";
        var bad = 0;
        foreach (var f in files)
        {
            var sw = Stopwatch.StartNew();
            try
            {
                var outcome = Harness.Exercise(f, strict);
                Console.WriteLine($"{f}: ok ({outcome}) in {sw.ElapsedMilliseconds} ms");
            }
            catch (Exception e)
            {
                bad++;
                Console.WriteLine($"{f}: FINDING after {sw.ElapsedMilliseconds} ms\n{e}");
            }
        }
        return bad == 0 ? 0 : 1;
    }
}

internal sealed class UsageException(string message) : Exception(message);

/// <summary>An input broke the contract in a way that is not itself an exception (or is a masked one).</summary>
public sealed class FuzzFinding(string message, Exception? inner = null) : Exception(message, inner);

public static class Harness
{
    private static readonly TorchLoadOptions WeightsOnly = new() { WeightsOnly = true };
    private static readonly TorchLoadOptions FullUnpickler = new() { WeightsOnly = false };

    /// <summary>
    /// What Load's last-resort catch made of a raw exception (MalformedPickle over one of these types): a reader bug,
    /// masked. A reader that catches a library's exception on purpose names its own reason (InvalidArchive for
    /// SharpZipLib's IndexOutOfRangeException on a corrupt Huffman table), which is not masking.
    /// </summary>
    public static bool IsMasked(TorchLoadException e) =>
        e.Reason == TorchLoadErrorReason.MalformedPickle && e.InnerException is ArgumentException or InvalidOperationException or InvalidCastException or IndexOutOfRangeException
            or NullReferenceException or OverflowException or FormatException or NotSupportedException or KeyNotFoundException;

    /// <summary>
    /// Loads <paramref name="path"/> with weights_only true, then false, and gathers every tensor's bytes.
    /// Returns a short outcome ("ok/ok", "MalformedPickle/ok", ...); throws for a finding.
    /// </summary>
    public static string Exercise(string path, bool strict, Action<TorchLoadException>? onMasked = null)
    {
        path = DcpSeed.Unpack(path);
        var a = LoadOnce(path, WeightsOnly, strict, onMasked);
        var b = LoadOnce(path, FullUnpickler, strict, onMasked);
        return a + "/" + b;
    }

    private static string LoadOnce(string path, TorchLoadOptions options, bool strict, Action<TorchLoadException>? onMasked)
    {
        TorchCheckpoint? checkpoint = null;
        try
        {
            checkpoint = TorchLoader.Load(path, options);
            var tensors = 0;
            foreach (var found in TensorWalker.Walk(checkpoint.Root))
            {
                if (found.Tensor is { } t) { Gather(t, found.Path); tensors++; }
                else if (found.Storage is { Buffer: not null } s) _ = s.ToByteArray();
            }
            return "ok:" + tensors;
        }
        catch (TorchLoadException e)
        {
            if (e.InnerException is OutOfMemoryException || e.LimitName == "memory")
                throw new FuzzFinding($"Unbounded allocation (weights_only={options.WeightsOnly}): {e.Message}", e);
            if (IsMasked(e))
            {
                if (strict) throw new FuzzFinding($"Masked reader bug (weights_only={options.WeightsOnly}): {e.InnerException!.GetType().Name}", e);
                onMasked?.Invoke(e);
            }
            return e.Reason.ToString();
        }
        finally
        {
            if (checkpoint is not null)
                foreach (var s in checkpoint.Storages) s.Buffer?.Dispose();
        }
    }

    private static void Gather(TorchTensor t, string path)
    {
        // Sparse, nested and quantized-per-channel parts are tensors of their own and are walked separately.
        if (t.Layout != TorchLayout.Strided || t.IsNested || t.Storage is not { Buffer: not null } storage) return;
        CheckView(t, storage, path);
        _ = t.ToByteArray();
    }

    /// <summary>A tensor the loader accepted must view only bytes of its storage (Gather trusts this and uses a raw pointer).</summary>
    private static void CheckView(TorchTensor t, TorchStorage storage, string path)
    {
        if (t.Shape.Length != t.Stride.Length)
            throw new FuzzFinding($"Tensor '{path}' has {t.Shape.Length} sizes but {t.Stride.Length} strides.");
        long count = 1;
        foreach (var d in t.Shape)
        {
            if (d < 0) throw new FuzzFinding($"Tensor '{path}' has a negative size {d}.");
            count = d == 0 || count == 0 ? 0 : checked(count * d);
        }
        if (count == 0) return;
        var perByte = t.DType.ValuesPerByte;
        var es = t.DType.ElementSize;
        long lo = t.StorageOffset, hi = t.StorageOffset;
        for (var i = 0; i < t.Shape.Length; i++)
        {
            var span = checked((t.Shape[i] - 1) * t.Stride[i]);
            if (span < 0) lo = checked(lo + span); else hi = checked(hi + span);
        }
        // Element index -> byte: packed dtypes hold perByte values per byte.
        var bufferBytes = storage.Buffer!.Length;
        var lastByte = perByte > 1 ? hi / perByte : checked((hi + 1) * es) - 1;
        if (lo < 0 || lastByte >= bufferBytes)
            throw new FuzzFinding($"Tensor '{path}' ({t}) views elements {lo}..{hi} of a storage buffer of {bufferBytes} bytes: ToByteArray would read out of bounds.");
    }
}

/// <summary>CI's bounded fuzz smoke: deterministic mutations of the seed files, in process, with a hang watchdog.</summary>
public static class Smoke
{
    private const int MaxInput = 1 << 20;
    private const int MaxMaskedSamples = 40;

    public static int Run(string[] args)
    {
        var seconds = 60; string? seedsDir = null; var seed = 1; var outDir = "fuzz-out/smoke"; var timeoutMs = 5000;
        string? work = null; var strict = Environment.GetEnvironmentVariable("TORCHLOAD_FUZZ_STRICT") == "1"; var maxSeedBytes = 64 * 1024;
        for (var i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new UsageException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--seconds": seconds = int.Parse(Next()); break;
                case "--seeds": seedsDir = Next(); break;
                case "--seed": seed = int.Parse(Next()); break;
                case "--out": outDir = Next(); break;
                case "--timeout-ms": timeoutMs = int.Parse(Next()); break;
                case "--work": work = Next(); break;
                case "--max-seed-bytes": maxSeedBytes = int.Parse(Next()); break;
                case "--strict": strict = true; break;
                default: throw new UsageException($"unknown option {args[i]}");
            }
        }
        if (seedsDir is null) throw new UsageException("--seeds DIR is required");
        var seeds = Directory.EnumerateFiles(seedsDir, "*", SearchOption.AllDirectories)
            .Where(f => new FileInfo(f).Length is > 0 and var n && n <= maxSeedBytes)
            .OrderBy(f => f, StringComparer.Ordinal)
            .Select(File.ReadAllBytes)
            .DistinctBy(Convert.ToHexString)
            .ToArray();
        if (seeds.Length == 0) { Console.Error.WriteLine($"fuzz smoke: no seed files under {seedsDir}"); return 2; }
        Directory.CreateDirectory(outDir);
        work ??= Path.Combine(Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath(), $"torchload-fuzz-smoke-{Environment.ProcessId}.bin");
        Console.WriteLine($"fuzz smoke: {seeds.Length} seeds from {seedsDir}, seed {seed}, {seconds} s, timeout {timeoutMs} ms{(strict ? ", strict" : "")}, work file {work}");

        var rng = new Random(seed);
        var mutator = new Mutator(rng, seeds);
        var worker = new Worker(work, strict);
        var signatures = new Dictionary<string, string>();   // finding signature -> saved file
        var masked = new Dictionary<string, int>();           // masked signature -> count
        var outcomes = new Dictionary<string, int>();
        long executions = 0;
        var findings = 0;
        var sw = Stopwatch.StartNew();
        var deadline = TimeSpan.FromSeconds(seconds);
        // First every seed as is, then mutants until the time is up.
        var index = 0;
        while (sw.Elapsed < deadline)
        {
            var input = index < seeds.Length ? seeds[index] : mutator.Next();
            var name = index < seeds.Length ? $"seed{index}" : $"mutant{index}";
            index++;
            File.WriteAllBytes(work, input);
            var result = worker.Execute(timeoutMs);
            executions++;
            if (result.Hang)
            {
                findings++;
                var file = Save(outDir, "hang", input);
                Console.WriteLine($"fuzz smoke: HANG (> {timeoutMs} ms) on {name}, saved {file}");
                Summary(executions, findings, sw, outcomes, masked);
                Console.Out.Flush();
                Environment.Exit(1);   // the stuck worker thread cannot be stopped; end the process
            }
            if (result.Finding is { } ex)
            {
                var sig = Signature(ex);
                if (!signatures.ContainsKey(sig))
                {
                    findings++;
                    var file = Save(outDir, "crash", input);
                    signatures[sig] = file;
                    Console.WriteLine($"fuzz smoke: FINDING on {name}, saved {file}\n{ex}\n");
                }
                continue;
            }
            outcomes[result.Outcome!] = outcomes.GetValueOrDefault(result.Outcome!) + 1;
            foreach (var m in result.Masked)
            {
                var sig = Signature(m.InnerException!);
                var n = masked[sig] = masked.GetValueOrDefault(sig) + 1;
                if (n == 1 && masked.Count <= MaxMaskedSamples)
                {
                    var file = Save(Path.Combine(outDir, "masked"), "masked", input);
                    Console.WriteLine($"fuzz smoke: masked reader bug on {name} ({sig}), saved {file}");
                }
            }
        }
        Summary(executions, findings, sw, outcomes, masked);
        return findings == 0 ? 0 : 1;
    }

    private static void Summary(long executions, int findings, Stopwatch sw, Dictionary<string, int> outcomes, Dictionary<string, int> masked)
    {
        foreach (var (k, v) in outcomes.OrderByDescending(p => p.Value).Take(15)) Console.WriteLine($"  outcome {k}: {v}");
        foreach (var (k, v) in masked.OrderByDescending(p => p.Value)) Console.WriteLine($"  masked {k}: {v}");
        Console.WriteLine($"fuzz smoke: {executions} executions in {sw.Elapsed.TotalSeconds:F0} s ({executions / Math.Max(1, sw.Elapsed.TotalSeconds):F0}/s), {masked.Values.Sum()} masked reader bugs in {masked.Count} kinds");
        Console.WriteLine($"fuzz smoke: {executions} executions, {findings} findings");
    }

    private static string Save(string dir, string kind, byte[] input)
    {
        Directory.CreateDirectory(dir);
        var hash = Convert.ToHexString(SHA256.HashData(input))[..16].ToLowerInvariant();
        var file = Path.Combine(dir, $"{kind}-{hash}.bin");
        File.WriteAllBytes(file, input);
        return file;
    }

    /// <summary>Exception type plus the first frame in TorchLoad code: one finding per distinct bug.</summary>
    public static string Signature(Exception e)
    {
        var root = e is FuzzFinding { InnerException: TorchLoadException { InnerException: { } i } } ? i : e;
        var frame = root.StackTrace?.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.Contains("TorchLoad.Core", StringComparison.Ordinal)) ?? "";
        var at = frame.IndexOf(" in ", StringComparison.Ordinal);
        if (at > 0) frame = frame[..at];
        return $"{root.GetType().Name} {(e is FuzzFinding f && root == e ? f.Message.Split(':')[0] : "")}{frame}".Trim();
    }

    private sealed record Result(bool Hang, Exception? Finding, string? Outcome, List<TorchLoadException> Masked);

    /// <summary>One long-lived worker thread (1 MiB stack, Windows' default) that loads the work file on request.</summary>
    private sealed class Worker
    {
        private readonly string _work;
        private readonly bool _strict;
        private readonly SemaphoreSlim _go = new(0);
        private readonly SemaphoreSlim _done = new(0);
        private Result? _result;

        public Worker(string work, bool strict)
        {
            _work = work;
            _strict = strict;
            new Thread(Loop, 1024 * 1024) { IsBackground = true, Name = "fuzz-worker" }.Start();
        }

        public Result Execute(int timeoutMs)
        {
            _go.Release();
            return _done.Wait(timeoutMs) ? _result! : new Result(true, null, null, []);
        }

        private void Loop()
        {
            while (true)
            {
                _go.Wait();
                var masked = new List<TorchLoadException>();
                try
                {
                    var outcome = Harness.Exercise(_work, _strict, masked.Add);
                    _result = new Result(false, null, outcome, masked);
                }
                catch (Exception e)
                {
                    _result = new Result(false, e, null, masked);
                }
                _done.Release();
            }
        }
    }
}

/// <summary>Deterministic (seeded) byte-level mutations, afl-havoc style, stacked 1..8 deep.</summary>
public sealed class Mutator(Random rng, byte[][] seeds)
{
    private static readonly long[] Interesting =
    [
        0, -1, 1, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff,
        1L << 32, long.MaxValue, long.MinValue, -2, 64, 1000, 1001,
    ];

    private static readonly byte[][] Tokens =
    [
        "PK\x03\x04"u8.ToArray(), "PK\x01\x02"u8.ToArray(), "PK\x05\x06"u8.ToArray(), "PK\x06\x06"u8.ToArray(), "PK\x06\x07"u8.ToArray(),
        "data.pkl"u8.ToArray(), "data/0"u8.ToArray(), "version"u8.ToArray(), "byteorder"u8.ToArray(), "ustar"u8.ToArray(),
        "storages"u8.ToArray(), "tensors"u8.ToArray(), "pickle"u8.ToArray(),
        "torch._utils\n_rebuild_tensor_v2\n"u8.ToArray(), "torch\nFloatStorage\n"u8.ToArray(), "collections\nOrderedDict\n"u8.ToArray(),
        "torch._utils\n_rebuild_parameter\n"u8.ToArray(), "builtins\neval\n"u8.ToArray(), "storage"u8.ToArray(), "cpu"u8.ToArray(), "cuda:0"u8.ToArray(),
        [0x80, 0x02], [0x80, 0x05], [0x8a, 0x0a], [0x95], [0x2e], [0x28], [0x29], [0x5d], [0x7d], [0x71], [0x68], [0x72], [0x6a],
        [0x51], [0x52], [0x62], [0x81], [0x92], [0x93], [0x94], [0x85], [0x86], [0x87], [0x4a], [0x4b], [0x4d], [0x8a], [0x8b],
        [0x58], [0x8c], [0x8d], [0x42], [0x43], [0x8e], [0x73], [0x75], [0x65], [0x61], [0x30], [0x32], [0x31], [0x63], [0x69],
    ];

    public byte[] Next()
    {
        var data = new List<byte>(seeds[rng.Next(seeds.Length)]);
        var n = 1 << rng.Next(4);   // 1, 2, 4 or 8 stacked mutations
        for (var i = 0; i < n; i++) Mutate(data);
        if (data.Count > MaxInput) data.RemoveRange(MaxInput, data.Count - MaxInput);
        return data.ToArray();
    }

    private const int MaxInput = 1 << 20;

    private int Pos(List<byte> d) => d.Count == 0 ? 0 : rng.Next(d.Count);

    private void Mutate(List<byte> d)
    {
        switch (rng.Next(11))
        {
            case 0 when d.Count > 0: // bit flip
                { var p = Pos(d); d[p] ^= (byte)(1 << rng.Next(8)); break; }
            case 1 when d.Count > 0: // byte set
                { d[Pos(d)] = (byte)rng.Next(256); break; }
            case 2 when d.Count > 0: // small add/sub
                { var p = Pos(d); d[p] = (byte)(d[p] + rng.Next(-35, 36)); break; }
            case 3 when d.Count > 1: // truncation: keep a prefix
                { var keep = rng.Next(d.Count); d.RemoveRange(keep, d.Count - keep); break; }
            case 4 when d.Count > 1: // chunk duplication
                {
                    var start = Pos(d); var len = Math.Min(d.Count - start, 1 + rng.Next(Math.Min(256, d.Count)));
                    var chunk = d.GetRange(start, len); d.InsertRange(Pos(d), chunk); break;
                }
            case 5: // random chunk insertion
                {
                    var len = 1 + rng.Next(32); var chunk = new byte[len]; rng.NextBytes(chunk);
                    d.InsertRange(Pos(d), chunk); break;
                }
            case 6 when d.Count > 1: // chunk deletion
                { var start = Pos(d); d.RemoveRange(start, Math.Min(d.Count - start, 1 + rng.Next(64))); break; }
            case 7: // splice with another seed
                {
                    var other = seeds[rng.Next(seeds.Length)];
                    if (other.Length == 0) break;
                    var cut = Pos(d); var from = rng.Next(other.Length);
                    if (cut < d.Count) d.RemoveRange(cut, d.Count - cut);
                    d.AddRange(other.AsSpan(from).ToArray()); break;
                }
            case 8 when d.Count > 0: // interesting integer at a random offset, 1/2/4/8 bytes, either endianness
                {
                    var v = Interesting[rng.Next(Interesting.Length)];
                    var width = 1 << rng.Next(4); var big = rng.Next(4) == 0; var p = Pos(d);
                    for (var b = 0; b < width && p + b < d.Count; b++)
                    {
                        var shift = 8 * (big ? width - 1 - b : b);
                        d[p + b] = (byte)(v >> shift);
                    }
                    break;
                }
            case 9: // dictionary token overwrite or insert
                {
                    var t = Tokens[rng.Next(Tokens.Length)]; var p = Pos(d);
                    if (rng.Next(2) == 0) d.InsertRange(p, t);
                    else for (var b = 0; b < t.Length && p + b < d.Count; b++) d[p + b] = t[b];
                    break;
                }
            case 10 when d.Count > 0: // ASCII decimal number (protocol-0 pickles: I, L, F, G opcodes, lengths)
                {
                    var v = Interesting[rng.Next(Interesting.Length)];
                    var text = Encoding.ASCII.GetBytes(v.ToString(System.Globalization.CultureInfo.InvariantCulture));
                    d.InsertRange(Pos(d), text); break;
                }
            default:
                if (d.Count > 0) d[Pos(d)] ^= 0xff;
                break;
        }
    }

}

/// <summary>
/// DCP folders as fuzz inputs: a file starting <c>TLDCP1\n</c>, then a little-endian u32 length and that many bytes
/// of <c>.metadata</c>, then the bytes of <c>__0_0.distcp</c> (seeds/dcp_model_plain.tldcp holds the shared
/// model_plain folder). The mutated halves are written into a folder beside the input, which is what is loaded.
/// </summary>
public static class DcpSeed
{
    private static readonly byte[] Magic = "TLDCP1\n"u8.ToArray();

    public static string Unpack(string path)
    {
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < Magic.Length + 4 || !bytes.AsSpan().StartsWith(Magic)) return path;
        var length = (int)Math.Min(BitConverter.ToUInt32(bytes, Magic.Length), (uint)(bytes.Length - Magic.Length - 4));
        var folder = path + ".dcp";
        Directory.CreateDirectory(folder);
        File.WriteAllBytes(Path.Combine(folder, ".metadata"), bytes.AsSpan(Magic.Length + 4, length).ToArray());
        File.WriteAllBytes(Path.Combine(folder, "__0_0.distcp"), bytes.AsSpan(Magic.Length + 4 + length).ToArray());
        return folder;
    }
}

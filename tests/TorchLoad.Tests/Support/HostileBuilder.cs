using System.Buffers.Binary;
using System.Diagnostics;
using System.IO.Compression;
using System.Numerics;
using System.Text;
using TorchLoad.Core;
using TorchLoad.Core.Errors;
using TorchLoad.Core.Pickle;

namespace TorchLoad.Tests.Hostile;

/// <summary>
/// A byte-level pickle assembler for hostile inputs: every opcode is written exactly as asked, with
/// no validation, so tests can produce malformed, lying and malicious streams.
/// </summary>
internal sealed class HostilePickle
{
    private readonly List<byte> _b = [];

    public int Length => _b.Count;
    public byte[] ToArray() => _b.ToArray();

    public HostilePickle Op(byte op) { _b.Add(op); return this; }
    public HostilePickle Raw(ReadOnlySpan<byte> bytes) { foreach (var x in bytes) _b.Add(x); return this; }
    public HostilePickle Raw(string latin1) => Raw(Encoding.Latin1.GetBytes(latin1));
    public HostilePickle Append(HostilePickle other) => Raw(other.ToArray());

    private HostilePickle U16(int v) { Span<byte> s = stackalloc byte[2]; BinaryPrimitives.WriteUInt16LittleEndian(s, (ushort)v); return Raw(s); }
    private HostilePickle U32(uint v) { Span<byte> s = stackalloc byte[4]; BinaryPrimitives.WriteUInt32LittleEndian(s, v); return Raw(s); }
    private HostilePickle I32(int v) { Span<byte> s = stackalloc byte[4]; BinaryPrimitives.WriteInt32LittleEndian(s, v); return Raw(s); }
    private HostilePickle U64(ulong v) { Span<byte> s = stackalloc byte[8]; BinaryPrimitives.WriteUInt64LittleEndian(s, v); return Raw(s); }
    private HostilePickle Line(string text) => Raw(Encoding.UTF8.GetBytes(text + "\n"));

    // ---- framing
    public HostilePickle Proto(int v) => Op(0x80).Op((byte)v);
    public HostilePickle Frame(ulong length) => Op(0x95).U64(length);
    public HostilePickle Stop() => Op((byte)'.');

    // ---- constants
    public HostilePickle None() => Op((byte)'N');
    public HostilePickle True() => Op(0x88);
    public HostilePickle False() => Op(0x89);

    public HostilePickle Int(long v)
    {
        if (v is >= 0 and <= 0xFF) return Op((byte)'K').Op((byte)v);
        if (v is >= 0 and <= 0xFFFF) return Op((byte)'M').U16((int)v);
        if (v is >= int.MinValue and <= int.MaxValue) return Op((byte)'J').I32((int)v);
        return Long1(v);
    }

    public HostilePickle Long1(BigInteger v)
    {
        var bytes = v.ToByteArray(isUnsigned: false, isBigEndian: false);
        return Op(0x8A).Op((byte)bytes.Length).Raw(bytes);
    }

    public HostilePickle Long4Header(int declaredLength) => Op(0x8B).I32(declaredLength);
    public HostilePickle IntText(string digits) => Op((byte)'I').Line(digits);
    public HostilePickle LongText(string digits) => Op((byte)'L').Line(digits + "L");

    // ---- strings
    public HostilePickle Str(string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        return bytes.Length < 256 ? Op(0x8C).Op((byte)bytes.Length).Raw(bytes) : Op((byte)'X').U32((uint)bytes.Length).Raw(bytes);
    }

    public HostilePickle BinUnicode(string s) { var b = Encoding.UTF8.GetBytes(s); return Op((byte)'X').U32((uint)b.Length).Raw(b); }
    public HostilePickle BinUnicodeHeader(uint declared) => Op((byte)'X').U32(declared);
    public HostilePickle BinUnicode8Header(ulong declared) => Op(0x8D).U64(declared);
    public HostilePickle BinBytes8Header(ulong declared) => Op(0x8E).U64(declared);
    public HostilePickle ByteArray8Header(ulong declared) => Op(0x96).U64(declared);
    public HostilePickle BinBytesHeader(uint declared) => Op((byte)'B').U32(declared);
    public HostilePickle BinStringHeader(int declared) => Op((byte)'T').I32(declared);
    public HostilePickle Bytes(byte[] b) => b.Length < 256 ? Op((byte)'C').Op((byte)b.Length).Raw(b) : Op((byte)'B').U32((uint)b.Length).Raw(b);
    /// <summary>Protocol 0 <c>STRING</c>: a quoted Python 2 str literal.</summary>
    public HostilePickle String0(string s) => Op((byte)'S').Line("'" + s.Replace("\\", "\\\\").Replace("'", "\\'").Replace("\n", "\\n") + "'");
    /// <summary>Protocol 0 <c>UNICODE</c> (raw-unicode-escape; the tests only use ASCII).</summary>
    public HostilePickle Unicode0(string s) => Op((byte)'V').Line(s);
    public HostilePickle ShortBinString(string s) { var b = Encoding.Latin1.GetBytes(s); return Op((byte)'U').Op((byte)b.Length).Raw(b); }

    // ---- containers
    public HostilePickle Mark() => Op((byte)'(');
    public HostilePickle Tuple() => Op((byte)'t');
    public HostilePickle EmptyTuple() => Op((byte)')');
    public HostilePickle Tuple1() => Op(0x85);
    public HostilePickle Tuple2() => Op(0x86);
    public HostilePickle Tuple3() => Op(0x87);
    public HostilePickle EmptyList() => Op((byte)']');
    public HostilePickle List() => Op((byte)'l');
    public HostilePickle EmptyDict() => Op((byte)'}');
    public HostilePickle Dict() => Op((byte)'d');
    public HostilePickle EmptySet() => Op(0x8F);
    public HostilePickle AppendOp() => Op((byte)'a');
    public HostilePickle Appends() => Op((byte)'e');
    public HostilePickle SetItem() => Op((byte)'s');
    public HostilePickle SetItems() => Op((byte)'u');
    public HostilePickle AddItems() => Op(0x90);
    public HostilePickle FrozenSet() => Op(0x91);

    // ---- stack and memo
    public HostilePickle Pop() => Op((byte)'0');
    public HostilePickle PopMark() => Op((byte)'1');
    public HostilePickle Dup() => Op((byte)'2');
    public HostilePickle Memoize() => Op(0x94);
    public HostilePickle BinPut(byte i) => Op((byte)'q').Op(i);
    public HostilePickle LongBinPut(uint i) => Op((byte)'r').U32(i);
    public HostilePickle Put(uint i) => Op((byte)'p').Line(i.ToString(System.Globalization.CultureInfo.InvariantCulture));
    public HostilePickle BinGet(byte i) => Op((byte)'h').Op(i);
    public HostilePickle LongBinGet(uint i) => Op((byte)'j').U32(i);
    public HostilePickle Get(uint i) => Op((byte)'g').Line(i.ToString(System.Globalization.CultureInfo.InvariantCulture));

    // ---- globals and calls
    public HostilePickle Global(string module, string name) => Op((byte)'c').Line(module).Line(name);
    public HostilePickle GlobalRaw(byte[] module, byte[] name) => Op((byte)'c').Raw(module).Op((byte)'\n').Raw(name).Op((byte)'\n');
    public HostilePickle StackGlobal() => Op(0x93);
    public HostilePickle Reduce() => Op((byte)'R');
    public HostilePickle Build() => Op((byte)'b');
    public HostilePickle NewObj() => Op(0x81);
    public HostilePickle NewObjEx() => Op(0x92);
    public HostilePickle Obj() => Op((byte)'o');
    public HostilePickle Inst(string module, string name) => Op((byte)'i').Line(module).Line(name);
    public HostilePickle BinPersId() => Op((byte)'Q');
    public HostilePickle PersId(string id) => Op((byte)'P').Line(id);

    // ---- composites

    /// <summary>A protocol 2 pickle of <c>module.name(*args)</c> where every arg is a string.</summary>
    public static byte[] Call(string module, string name, params string[] args) =>
        new HostilePickle().Proto(2).CallBody(CallStyle.Global, module, name, args).Stop().ToArray();

    /// <summary>Writes <c>module.name(*args)</c> (string args) with the chosen opcode family, leaving the result on the stack.</summary>
    public HostilePickle CallBody(CallStyle style, string module, string name, params string[] args)
    {
        switch (style)
        {
            case CallStyle.Global:
                Global(module, name).Mark();
                foreach (var a in args) Str(a);
                return Tuple().Reduce();
            case CallStyle.StackGlobal:
                Str(module).Memoize().Str(name).Memoize().StackGlobal().Memoize().Mark();
                foreach (var a in args) Str(a).Memoize();
                return Tuple().Memoize().Reduce().Memoize();
            case CallStyle.Protocol0:
                Global(module, name).Put(0).Mark();
                foreach (var a in args) String0(a);
                return Tuple().Reduce();
            case CallStyle.Inst:
                Mark();
                foreach (var a in args) String0(a);
                return Inst(module, name);
            case CallStyle.Obj:
                Mark().Global(module, name);
                foreach (var a in args) Str(a);
                return Obj();
            case CallStyle.NewObj:
                Global(module, name).Mark();
                foreach (var a in args) Str(a);
                return Tuple().NewObj();
            case CallStyle.NewObjEx:
                Global(module, name).Mark();
                foreach (var a in args) Str(a);
                return Tuple().EmptyDict().Str("shell").True().SetItem().NewObjEx();
            default:
                throw new ArgumentOutOfRangeException(nameof(style));
        }
    }

    /// <summary>A complete pickle of one call in the given style with the protocol that style belongs to.</summary>
    public static byte[] CallPickle(CallStyle style, string module, string name, params string[] args)
    {
        var p = new HostilePickle();
        switch (style)
        {
            case CallStyle.Protocol0:
            case CallStyle.Inst:
                break;
            case CallStyle.StackGlobal:
            case CallStyle.NewObjEx:
                {
                    var body = new HostilePickle().CallBody(style, module, name, args).Stop();
                    return p.Proto(4).Frame((ulong)body.Length).Append(body).ToArray();
                }
            default:
                p.Proto(2);
                break;
        }
        return p.CallBody(style, module, name, args).Stop().ToArray();
    }

    /// <summary>The persistent id of a zip storage: <c>('storage', torch.&lt;cls&gt;, key, 'cpu', numel)</c> followed by BINPERSID.</summary>
    public HostilePickle ZipStoragePid(string key, long numel, string storageClass = "FloatStorage")
    {
        Mark().Str("storage").Global("torch", storageClass).Str(key).Str("cpu");
        if (numel > int.MaxValue) Long1(numel); else Int(numel);
        return Tuple().BinPersId();
    }

    /// <summary>The persistent id of a legacy storage: <c>('storage', torch.&lt;cls&gt;, key, 'cpu', numel, None)</c>.</summary>
    public HostilePickle LegacyStoragePid(string key, long numel, string storageClass = "FloatStorage")
    {
        Mark().Str("storage").Global("torch", storageClass).Str(key).Str("cpu");
        if (numel > int.MaxValue) Long1(numel); else Int(numel);
        return None().Tuple().BinPersId();
    }

    /// <summary><c>_rebuild_tensor_v2(&lt;storage pid already written by <paramref name="pid"/>&gt;, offset, size, stride, False, OrderedDict())</c>.</summary>
    public HostilePickle Tensor(Action<HostilePickle> pid, long offset, long[] size, long[] stride)
    {
        Global("torch._utils", "_rebuild_tensor_v2").Mark();
        pid(this);
        Int(offset);
        IntTuple(size);
        IntTuple(stride);
        False();
        Global("collections", "OrderedDict").EmptyTuple().Reduce();
        return Tuple().Reduce();
    }

    public HostilePickle IntTuple(long[] values)
    {
        Mark();
        foreach (var v in values) Int(v);
        return Tuple();
    }

    /// <summary><c>{'weight': tensor}</c> over storage '0' of <paramref name="numel"/> float32 elements (zip persistent id).</summary>
    public static HostilePickle ZipStateDict(long numel, long[]? size = null) =>
        new HostilePickle().Proto(2).EmptyDict().Str("weight")
            .Tensor(p => p.ZipStoragePid("0", numel), 0, size ?? [numel], [1]).SetItem();

    /// <summary>A benign protocol 2 pickle: <c>{'ok': 1}</c>.</summary>
    public static byte[] Benign() => new HostilePickle().Proto(2).EmptyDict().Str("ok").Int(1).SetItem().Stop().ToArray();
}

/// <summary>Which opcodes a hostile call uses to reach its global.</summary>
public enum CallStyle
{
    /// <summary>Protocol 2: GLOBAL, MARK ... TUPLE, REDUCE.</summary>
    Global,
    /// <summary>Protocol 4: FRAME, SHORT_BINUNICODE operands, STACK_GLOBAL, MEMOIZE, REDUCE.</summary>
    StackGlobal,
    /// <summary>Protocol 0 text: GLOBAL, PUT, STRING args, TUPLE, REDUCE.</summary>
    Protocol0,
    /// <summary>Protocol 0 INST (the class named inline; no REDUCE).</summary>
    Inst,
    /// <summary>Protocol 1 OBJ (MARK cls args OBJ).</summary>
    Obj,
    /// <summary>Protocol 2 NEWOBJ (cls.__new__(cls, *args)).</summary>
    NewObj,
    /// <summary>Protocol 4 NEWOBJ_EX with keyword arguments.</summary>
    NewObjEx,
}

/// <summary>A zip writer that can lie: names, sizes, CRCs, flags and methods are whatever the test says.</summary>
internal sealed class HostileZip
{
    private readonly List<Entry> _entries = [];

    internal sealed class Entry
    {
        public required string Name { get; init; }
        public required byte[] Content { get; init; }
        /// <summary>Name written in the local header (defaults to <see cref="Name"/>).</summary>
        public string? LocalName { get; set; }
        public ushort Method { get; set; }
        public ushort Flags { get; set; }
        public ushort? LocalMethod { get; set; }
        public uint? Crc { get; set; }
        /// <summary>Uncompressed size to declare (central directory), instead of the real one.</summary>
        public long? DeclaredSize { get; set; }
        /// <summary>Compressed bytes to store instead of deflating <see cref="Content"/>.</summary>
        public byte[]? RawData { get; set; }
        /// <summary>Writes zero CRC/sizes in the local header and a data descriptor after the data (flag bit 3).</summary>
        public bool DataDescriptor { get; set; }
        /// <summary>Replaces the local header signature (a corrupted member).</summary>
        public uint? LocalSignature { get; set; }
    }

    public Entry Add(string name, byte[] content, ushort method = 0)
    {
        var e = new Entry { Name = name, Content = content, Method = method };
        _entries.Add(e);
        return e;
    }

    public Entry Add(string name, string content) => Add(name, Encoding.UTF8.GetBytes(content));

    /// <summary>A well-formed torch.save layout: data.pkl, data/&lt;key&gt;..., version, byteorder.</summary>
    public static HostileZip Checkpoint(byte[] dataPkl, string prefix = "archive", params (string Key, byte[] Bytes)[] storages)
    {
        var z = new HostileZip();
        z.Add($"{prefix}/data.pkl", dataPkl);
        z.Add($"{prefix}/byteorder", "little");
        foreach (var (key, bytes) in storages) z.Add($"{prefix}/data/{key}", bytes);
        z.Add($"{prefix}/version", "3\n");
        return z;
    }

    public byte[] ToArray()
    {
        using var ms = new MemoryStream();
        var central = new MemoryStream();
        foreach (var e in _entries)
        {
            var data = e.RawData ?? (e.Method == 8 ? Deflate(e.Content) : e.Content);
            var crc = e.Crc ?? HostileCrc32.Compute(e.Content);
            var usize = e.DeclaredSize ?? e.Content.Length;
            long csize = data.Length;
            var offset = ms.Position;
            var localName = Encoding.UTF8.GetBytes(e.LocalName ?? e.Name);
            var flags = (ushort)(e.Flags | (e.DataDescriptor ? 0x8 : 0));

            var w = new BinaryWriter(ms);
            w.Write(e.LocalSignature ?? 0x04034B50u);
            w.Write((ushort)20);
            w.Write(flags);
            w.Write(e.LocalMethod ?? e.Method);
            w.Write((ushort)0); w.Write((ushort)0x21); // time, date
            if (e.DataDescriptor) { w.Write(0u); w.Write(0u); w.Write(0u); }
            else { w.Write(crc); w.Write((uint)Math.Min(csize, 0xFFFFFFFF)); w.Write((uint)Math.Min(usize, 0xFFFFFFFF)); }
            w.Write((ushort)localName.Length);
            w.Write((ushort)0);
            w.Write(localName);
            w.Write(data);
            if (e.DataDescriptor)
            {
                w.Write(0x08074B50u); w.Write(crc); w.Write((uint)csize); w.Write((uint)Math.Min(usize, 0xFFFFFFFF));
            }
            w.Flush();

            var name = Encoding.UTF8.GetBytes(e.Name);
            var needZip64 = usize >= 0xFFFFFFFF || csize >= 0xFFFFFFFF;
            var extra = new MemoryStream();
            if (needZip64)
            {
                var xw = new BinaryWriter(extra);
                xw.Write((ushort)1);
                xw.Write((ushort)(usize >= 0xFFFFFFFF && csize >= 0xFFFFFFFF ? 16 : 8));
                if (usize >= 0xFFFFFFFF) xw.Write(usize);
                if (csize >= 0xFFFFFFFF) xw.Write(csize);
                xw.Flush();
            }
            var c = new BinaryWriter(central);
            c.Write(0x02014B50u);
            c.Write((ushort)45); c.Write((ushort)20);
            c.Write(flags);
            c.Write(e.Method);
            c.Write((ushort)0); c.Write((ushort)0x21);
            c.Write(crc);
            c.Write((uint)(csize >= 0xFFFFFFFF ? 0xFFFFFFFF : csize));
            c.Write((uint)(usize >= 0xFFFFFFFF ? 0xFFFFFFFF : usize));
            c.Write((ushort)name.Length);
            c.Write((ushort)extra.Length);
            c.Write((ushort)0); // comment
            c.Write((ushort)0); // disk
            c.Write((ushort)0); // internal attrs
            c.Write(0u); // external attrs
            c.Write((uint)offset);
            c.Write(name);
            c.Write(extra.ToArray());
            c.Flush();
        }
        var cdOffset = ms.Position;
        var cd = central.ToArray();
        ms.Write(cd);
        var t = new BinaryWriter(ms);
        t.Write(0x06054B50u);
        t.Write((ushort)0); t.Write((ushort)0);
        t.Write((ushort)_entries.Count); t.Write((ushort)_entries.Count);
        t.Write((uint)cd.Length);
        t.Write((uint)cdOffset);
        t.Write((ushort)0);
        t.Flush();
        return ms.ToArray();
    }

    public static byte[] Deflate(byte[] content)
    {
        using var ms = new MemoryStream();
        using (var d = new DeflateStream(ms, CompressionLevel.SmallestSize, leaveOpen: true)) d.Write(content);
        return ms.ToArray();
    }
}

/// <summary>The legacy (torch 0.1.10-1.5) stream: magic, protocol version, sys_info, object, key list, storages.</summary>
internal static class HostileLegacy
{
    /// <summary>Protocol 2 pickle of the magic number, exactly as torch writes it.</summary>
    public static byte[] Magic() => [0x80, 0x02, 0x8A, 0x0A, 0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19, 0x2E];

    public static byte[] ProtocolVersion() => [0x80, 0x02, 0x4D, 0xE9, 0x03, 0x2E];

    public static byte[] SysInfo() => new HostilePickle().Proto(2).EmptyDict().Mark()
        .Str("protocol_version").Int(1001)
        .Str("little_endian").True()
        .Str("type_sizes").EmptyDict().Mark().Str("short").Int(2).Str("int").Int(4).Str("long").Int(4).SetItems()
        .SetItems().Stop().ToArray();

    public static byte[] Keys(params string[] keys)
    {
        var p = new HostilePickle().Proto(2).EmptyList();
        if (keys.Length > 0)
        {
            p.Mark();
            foreach (var k in keys) p.Str(k);
            p.Appends();
        }
        return p.Stop().ToArray();
    }

    public static byte[] StorageBlob(long count, byte[] bytes)
    {
        var b = new byte[8 + bytes.Length];
        BinaryPrimitives.WriteInt64LittleEndian(b, count);
        bytes.CopyTo(b, 8);
        return b;
    }

    /// <summary>A whole legacy file from its parts (each part is written as given).</summary>
    public static byte[] Stream(params byte[][] parts) => parts.SelectMany(p => p).ToArray();

    /// <summary>A valid legacy file whose object pickle is <paramref name="objectPickle"/> and which has no storages.</summary>
    public static byte[] WithObject(byte[] objectPickle) => Stream(Magic(), ProtocolVersion(), SysInfo(), objectPickle, Keys());
}

/// <summary>CRC-32 (IEEE), for archives that tell the truth.</summary>
internal static class HostileCrc32
{
    private static readonly uint[] Table = Enumerable.Range(0, 256).Select(i =>
    {
        var c = (uint)i;
        for (var k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        return c;
    }).ToArray();

    public static uint Compute(ReadOnlySpan<byte> data)
    {
        var c = 0xFFFFFFFFu;
        foreach (var b in data) c = Table[(c ^ b) & 0xFF] ^ (c >> 8);
        return c ^ 0xFFFFFFFFu;
    }
}

/// <summary>What one load did: the checkpoint, or the typed error; never a raw .NET exception.</summary>
internal sealed record LoadOutcome(TorchCheckpoint? Checkpoint, TorchLoadException? Error, TimeSpan Elapsed)
{
    /// <summary>Managed bytes the loading thread allocated.</summary>
    public long ManagedBytes { get; init; }

    public object? Root => Checkpoint is null ? throw new Xunit.Sdk.XunitException($"expected a successful load, got {Error!.Reason}: {Error.Message}") : Checkpoint.Root;
}

/// <summary>
/// A private temp folder per test with a marker path the payloads aim at; loads run with a watchdog
/// (10 s) and every exception other than <see cref="TorchLoadException"/> fails the test.
/// </summary>
internal sealed class HostileSandbox : IDisposable
{
    public static readonly TimeSpan MaxLoadTime = TimeSpan.FromSeconds(10);

    public HostileSandbox()
    {
        Dir = Path.Combine(Path.GetTempPath(), "torchload-hostile-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Dir);
        Marker = Path.Combine(Dir, "pwned");
    }

    public string Dir { get; }

    /// <summary>The file every payload tries to create.</summary>
    public string Marker { get; }

    /// <summary>A shell command that creates the marker.</summary>
    public string Touch => $"touch {Marker}";

    /// <summary>Python source that creates the marker.</summary>
    public string PyOpen => $"open('{Marker}','w').write('pwned')";

    public string Write(string name, byte[] bytes)
    {
        var path = Path.Combine(Dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    /// <summary>Managed bytes one hostile load may allocate (the bad-input manifest's max_alloc_bytes).</summary>
    public const long DefaultMaxManagedBytes = 64L << 20;

    public LoadOutcome Load(string path, bool weightsOnly, Func<TorchLoadOptions, TorchLoadOptions>? tweak = null, long maxManagedBytes = DefaultMaxManagedBytes)
    {
        var options = new TorchLoadOptions { WeightsOnly = weightsOnly };
        if (tweak is not null) options = tweak(options);
        var sw = Stopwatch.StartNew();
        var task = Task.Run(() =>
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            try { return new LoadOutcome(TorchLoader.Load(path, options), null, TimeSpan.Zero) { ManagedBytes = GC.GetAllocatedBytesForCurrentThread() - before }; }
            catch (TorchLoadException e) { return new LoadOutcome(null, e, TimeSpan.Zero) { ManagedBytes = GC.GetAllocatedBytesForCurrentThread() - before }; }
        });
        bool finished;
        try { finished = task.Wait(MaxLoadTime); }
        catch (AggregateException ae)
        {
            var inner = ae.InnerException!;
            throw new Xunit.Sdk.XunitException($"TorchLoader.Load threw a raw {inner.GetType().FullName} instead of a TorchLoadException: {inner.Message}\n{inner.StackTrace}");
        }
        sw.Stop();
        if (!finished) throw new Xunit.Sdk.XunitException($"TorchLoader.Load did not finish within {MaxLoadTime.TotalSeconds} s (hang or DoS) on {Path.GetFileName(path)}");
        Assert.True(sw.Elapsed < MaxLoadTime, $"the load took {sw.Elapsed}");
        AssertNoMarker();
        var outcome = task.Result with { Elapsed = sw.Elapsed };
        Assert.True(outcome.ManagedBytes <= maxManagedBytes,
            $"the load allocated {outcome.ManagedBytes:N0} managed bytes (limit {maxManagedBytes:N0}) for a {InputBytes(path):N0}-byte input; outcome: {outcome.Error?.Reason.ToString() ?? "loaded"}");
        return outcome;
    }

    /// <summary>The size of a file, or of every file in a folder (a DCP checkpoint).</summary>
    private static long InputBytes(string path) =>
        Directory.Exists(path) ? new DirectoryInfo(path).EnumerateFiles("*", SearchOption.AllDirectories).Sum(f => f.Length) : new FileInfo(path).Length;

    public LoadOutcome Load(byte[] file, bool weightsOnly, string name = "model.pt", Func<TorchLoadOptions, TorchLoadOptions>? tweak = null, long maxManagedBytes = DefaultMaxManagedBytes) =>
        Load(Write(name, file), weightsOnly, tweak, maxManagedBytes);

    /// <summary>Replaces {touch}, {py} and {marker} in a payload template.</summary>
    public string Expand(string template) => template.Replace("{touch}", Touch).Replace("{py}", PyOpen).Replace("{marker}", Marker);

    public void AssertNoMarker() => Assert.False(File.Exists(Marker), $"the payload ran: {Marker} exists");

    public void Dispose()
    {
        AssertNoMarker();
        try { Directory.Delete(Dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

internal static class HostileAssert
{
    /// <summary>The load failed with <paramref name="reason"/> (and, for UnsafeGlobal, naming <paramref name="global"/>).</summary>
    public static TorchLoadException Refused(LoadOutcome o, TorchLoadErrorReason reason, string? global = null)
    {
        if (o.Error is null) throw new Xunit.Sdk.XunitException($"expected {reason}, but the load succeeded with root {Describe(o.Checkpoint!.Root)}");
        Assert.True(o.Error.Reason == reason, $"expected {reason}, got {o.Error.Reason}: {o.Error.Message}");
        if (global is not null) Assert.Equal(global, o.Error.GlobalName);
        Assert.False(string.IsNullOrWhiteSpace(o.Error.Message));
        return o.Error;
    }

    /// <summary>The load failed with one of <paramref name="reasons"/>.</summary>
    public static TorchLoadException RefusedAny(LoadOutcome o, params TorchLoadErrorReason[] reasons)
    {
        if (o.Error is null) throw new Xunit.Sdk.XunitException($"expected one of {string.Join(", ", reasons)}, but the load succeeded with root {Describe(o.Checkpoint!.Root)}");
        Assert.True(reasons.Contains(o.Error.Reason), $"expected one of {string.Join(", ", reasons)}, got {o.Error.Reason}: {o.Error.Message}");
        return o.Error;
    }

    /// <summary>Permissive mode: the root is an inert <see cref="PyObject"/> of <paramref name="className"/>.</summary>
    public static PyObject InertRoot(LoadOutcome o, string className)
    {
        if (o.Error is not null) throw new Xunit.Sdk.XunitException($"expected an inert {className}, got {o.Error.Reason}: {o.Error.Message}");
        var obj = Assert.IsType<PyObject>(o.Checkpoint!.Root);
        Assert.Equal(className, obj.ClassName);
        return obj;
    }

    /// <summary>Every PyObject/PyGlobal class name reachable from the root (bounded walk).</summary>
    public static HashSet<string> ClassNames(object? root, int maxNodes = 100_000)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        var seen = new HashSet<object>(ReferenceEqualityComparer.Instance);
        var todo = new Stack<object?>();
        todo.Push(root);
        while (todo.Count > 0 && seen.Count < maxNodes)
        {
            var v = todo.Pop();
            if (v is null or string or byte[] || v.GetType().IsPrimitive || !seen.Add(v)) continue;
            switch (v)
            {
                case PyObject o:
                    names.Add(o.ClassName);
                    foreach (var a in o.Args) todo.Push(a);
                    todo.Push(o.State);
                    if (o.KwArgs is not null) todo.Push(o.KwArgs);
                    if (o.ListItems is not null) foreach (var a in o.ListItems) todo.Push(a);
                    if (o.DictItems is not null) todo.Push(o.DictItems);
                    break;
                case PyGlobal g: names.Add(g.ClassName); break;
                case PyDict d:
                    foreach (var kv in (IEnumerable<KeyValuePair<object?, object?>>)d) { todo.Push(kv.Key); todo.Push(kv.Value); }
                    break;
                case object?[] t: foreach (var a in t) todo.Push(a); break;
                case List<object?> l: foreach (var a in l) todo.Push(a); break;
                case PySet s: foreach (var a in s) todo.Push(a); break;
            }
        }
        return names;
    }

    public static string Describe(object? v) => v switch
    {
        null => "None",
        PyObject o => $"<{o.ClassName} object>",
        PyGlobal g => $"<{g.ClassName}>",
        _ => v.GetType().Name,
    };
}

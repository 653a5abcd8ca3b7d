using System.Buffers.Binary;
using System.Globalization;
using System.Numerics;
using System.Text;
using TorchLoad.Core.Errors;
using static TorchLoad.Core.Pickle.Opcodes;

namespace TorchLoad.Core.Pickle;

/// <summary>
/// An iterative pickle interpreter for protocols 0-5. It reads a span once, front to back, checks
/// every declared length against what is left before allocating, and keeps stack, marks and memo
/// within <see cref="LoadLimits"/>. Plain data (numbers, strings, tuples, lists, dicts, sets) is
/// built here; everything else goes through the <see cref="IPickleHost"/>.
/// </summary>
internal sealed class PickleMachine
{
    private static readonly object True = true, False = false;
    private static readonly object[] SmallInts = Enumerable.Range(-1, 258).Select(i => (object)(long)i).ToArray();
    private static readonly UTF8Encoding StrictUtf8 = new(false, true);

    private readonly IPickleHost _host;
    private readonly LoadLimits _limits;
    private readonly PickleStringEncoding _encoding;
    private readonly string _recordName;
    private readonly CancellationToken _cancel;

    // The stack, the marks and the memo's chunk table and first chunk are rented for a run and
    // given back when it ends: for a 5 KB checkpoint they were a fifth of what a load allocated (a thousand audits
    // in a fresh pwsh then crossed the first gen0 budget, a 14 ms collection of everything pwsh made at startup).
    private object?[] _stack = [];
    private int _sp, _stackRoom; // room: the stack's length within MaxStackItems (a pooled array may be longer than asked)
    private int[] _marks = [];
    private int _markCount;
    // The memo: the indices picklers write (0, 1, 2, ...) live in chunks of 4,096 slots, 32 KiB each, so
    // a 20,000-tensor state dict's 160,000 entries never touch the large-object heap (whose budget
    // triggers full collections). A chunk is only made for an index below twice the entries stored
    // plus one chunk, so the memo's size follows its entry count; an index far past that (a hostile
    // LONG_BINPUT 4000000000, or indices that double) goes to a dictionary instead. The first chunk starts at
    // 64 slots and doubles as indices reach it: a small checkpoint's pickle has a few dozen entries, and 32 KiB
    // per load was most of what auditing a 5 KB file allocated.
    private const int FirstMemoChunk = 64;
    private const int MemoChunkBits = 12, MemoChunkSize = 1 << MemoChunkBits, MemoChunkMask = MemoChunkSize - 1;
    private static readonly object MemoNone = new(); // a memoized None; an empty slot is null
    private object?[]?[] _memoChunks = [];
    private string?[] _strings = []; // this thread's RecentStrings table, for the run
    private int _stringMisses; // in a row: a pickle of new strings stops asking the table
    private const int StringMissesBeforeGivingUp = 64;
    private Dictionary<uint, object?>? _memoSparse; // made on the first index far past the others (hostile pickles)
    private int _memoCount;
    // Entries the pickle never reads back (MemoReads) are counted, not kept: one bit each, in a set when far past the others.
    private MemoReads _reads = null!; // found at the start of each Run
    private ulong[]? _unreadBits;
    private MemoIndexSet? _unreadFar;

    public PickleMachine(IPickleHost host, LoadLimits limits, PickleStringEncoding encoding, string recordName, CancellationToken cancel = default)
    {
        _host = host;
        _limits = limits;
        _encoding = encoding;
        _recordName = recordName;
        _cancel = cancel;
    }

    /// <summary>The protocol the PROTO opcode declared (0 when absent).</summary>
    public int Protocol { get; private set; }

    /// <summary>Runs one pickle from the start of <paramref name="data"/> to its STOP.</summary>
    /// <param name="consumed">bytes read, STOP included (the next pickle of a legacy stream starts there).</param>
    public object? Run(ReadOnlySpan<byte> data, out int consumed)
    {
        _sp = 0;
        _markCount = 0;
        _memoSparse?.Clear();
        _memoCount = 0;
        _reads = MemoReads.Find(data);
        _unreadFar = null;
        Protocol = 0;
        _strings = RecentStrings.ForThisThread();
        _stringMisses = 0;
        _stack = PooledArrays.Rent<object?>(32); // a state dict's SETITEMS holds a few dozen values
        _stackRoom = (int)Math.Min(_stack.Length, _limits.MaxStackItems);
        _marks = PooledArrays.Rent<int>(16);
        _memoChunks = PooledArrays.Rent<object?[]?>(8);
        Array.Clear(_memoChunks); // what others gave back need not be cleared
        try
        {
            return Interpret(data, out consumed);
        }
        finally
        {
            GiveBack();
        }
    }

    /// <summary>The rented arrays back to the pool, holding nothing of this pickle (empty ones in their place: a run is over).</summary>
    private void GiveBack()
    {
        _stack.AsSpan(0, Math.Min(_sp, _stack.Length)).Clear(); // above _sp the stack is cleared as it is popped
        PooledArrays.Return(_stack, clear: false);
        PooledArrays.Return(_marks, clear: false);
        foreach (var chunk in _memoChunks)
            if (chunk is not null) PooledArrays.Return(chunk, clear: true);
        PooledArrays.Return(_memoChunks, clear: true);
        (_stack, _marks, _memoChunks, _unreadBits, _strings, _sp, _stackRoom, _markCount) = ([], [], [], null, [], 0, 0, 0);
    }

    // Hot loop: JIT-compiled fully optimized on first use rather than run from the precompiled image (measured:
    // ~3 ms faster on a 20,000-tensor load, for ~20 ms of JIT once per process; audits load many files).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private object? Interpret(ReadOnlySpan<byte> data, out int consumed)
    {
        var pos = 0;
        var opStart = 0;
        try
        {
            while (true)
            {
                if (pos >= data.Length) throw Truncated(pos, "the pickle ends before its STOP opcode");
                opStart = pos;
                var op = data[pos++];
                switch (op)
                {
                    case PROTO:
                        {
                            var v = ReadByte(data, ref pos);
                            if (v > HighestProtocol) throw Malformed(opStart, $"unsupported pickle protocol {v}");
                            Protocol = v;
                            break;
                        }
                    case FRAME:
                        {
                            var len = ReadU64(data, ref pos);
                            if (len > (ulong)(data.Length - pos)) throw Truncated(opStart, $"FRAME declares {len} bytes but {data.Length - pos} are left");
                            break;
                        }
                    case STOP:
                        {
                            // Python (and torch's weights-only unpickler) returns the top of the stack and ignores the
                            // rest, open MARKs included; only an empty frame above the last MARK is an error.
                            if (_sp == 0) throw Malformed(opStart, "STOP with an empty stack");
                            if (_markCount != 0 && _marks[_markCount - 1] == _sp) throw Malformed(opStart, "STOP right after a MARK (nothing to return)");
                            consumed = pos;
                            var result = _stack[_sp - 1];
                            Array.Clear(_stack, 0, _sp);
                            _sp = 0;
                            _markCount = 0;
                            return result;
                        }

                    // ---- constants
                    case NONE: Push(null, opStart); break;
                    case NEWTRUE: Push(True, opStart); break;
                    case NEWFALSE: Push(False, opStart); break;
                    case BININT1: Push(Box(ReadByte(data, ref pos)), opStart); break;
                    case BININT2: Push(Box(BinaryPrimitives.ReadUInt16LittleEndian(Take(data, ref pos, 2))), opStart); break;
                    case BININT: Push(Box(BinaryPrimitives.ReadInt32LittleEndian(Take(data, ref pos, 4))), opStart); break;
                    case LONG1: Push(ReadLong(Take(data, ref pos, ReadByte(data, ref pos))), opStart); break;
                    case LONG4:
                        {
                            var n = BinaryPrimitives.ReadInt32LittleEndian(Take(data, ref pos, 4));
                            if (n < 0) throw Malformed(opStart, "LONG4 with a negative byte count");
                            CheckStringLimit(n, opStart);
                            Push(ReadLong(Take(data, ref pos, n)), opStart);
                            break;
                        }
                    case BINFLOAT: Push(BinaryPrimitives.ReadDoubleBigEndian(Take(data, ref pos, 8)), opStart); break;
                    case INT:
                        {
                            var line = ReadLine(data, ref pos, opStart);
                            if (line.SequenceEqual("00"u8)) Push(False, opStart);
                            else if (line.SequenceEqual("01"u8)) Push(True, opStart);
                            else Push(ParseDecimal(line, opStart), opStart);
                            break;
                        }
                    case LONG:
                        {
                            var line = ReadLine(data, ref pos, opStart);
                            if (line.Length > 0 && line[^1] == (byte)'L') line = line[..^1];
                            Push(ParseDecimal(line, opStart), opStart);
                            break;
                        }
                    case FLOAT:
                        {
                            var line = Encoding.ASCII.GetString(ReadLine(data, ref pos, opStart));
                            Push(ParseFloat(line, opStart), opStart);
                            break;
                        }

                    // ---- strings and bytes
                    case BINUNICODE: Push(Utf8(Take(data, ref pos, Length32(data, ref pos, opStart)), opStart), opStart); break;
                    case SHORT_BINUNICODE: Push(Utf8(TakeString(data, ref pos, ReadByte(data, ref pos), opStart), opStart), opStart); break;
                    case BINUNICODE8: Push(Utf8(Take(data, ref pos, Length64(data, ref pos, opStart)), opStart), opStart); break;
                    case UNICODE: Push(RawUnicodeEscape(ReadLine(data, ref pos, opStart), opStart), opStart); break;
                    case BINBYTES: Push(Take(data, ref pos, Length32(data, ref pos, opStart)).ToArray(), opStart); break;
                    case SHORT_BINBYTES: Push(TakeString(data, ref pos, ReadByte(data, ref pos), opStart).ToArray(), opStart); break;
                    case BINBYTES8:
                    case BYTEARRAY8: Push(Take(data, ref pos, Length64(data, ref pos, opStart)).ToArray(), opStart); break;
                    case BINSTRING:
                        {
                            var n = BinaryPrimitives.ReadInt32LittleEndian(Take(data, ref pos, 4));
                            if (n < 0) throw Malformed(opStart, "BINSTRING with a negative length");
                            CheckStringLimit(n, opStart);
                            Push(Python2Str(Take(data, ref pos, n), opStart), opStart);
                            break;
                        }
                    case SHORT_BINSTRING: Push(Python2Str(TakeString(data, ref pos, ReadByte(data, ref pos), opStart), opStart), opStart); break;
                    case STRING: Push(Python2Str(UnquoteStringLiteral(ReadLine(data, ref pos, opStart), opStart), opStart), opStart); break;

                    // ---- containers
                    case EMPTY_TUPLE: Push(Array.Empty<object?>(), opStart); break;
                    case TUPLE1: { var a = Pop(opStart); Push(new[] { a }, opStart); break; }
                    case TUPLE2: { var b = Pop(opStart); var a = Pop(opStart); Push(new[] { a, b }, opStart); break; }
                    case TUPLE3: { var c = Pop(opStart); var b = Pop(opStart); var a = Pop(opStart); Push(new[] { a, b, c }, opStart); break; }
                    case TUPLE:
                        if (!ConsumeMarkedTuple(data, ref pos, ref opStart)) Push(PopMarkToArray(opStart), opStart);
                        break;
                    case EMPTY_LIST: Push(new List<object?>(), opStart); break;
                    case LIST:
                        {
                            var items = Marked(opStart, out var start);
                            var list = new List<object?>(items.Length);
                            list.AddRange(items);
                            DropMarked(start);
                            Push(list, opStart);
                            break;
                        }
                    case EMPTY_DICT: Push(new PyDict(), opStart); break;
                    case DICT:
                        {
                            var items = Marked(opStart, out var start);
                            if (items.Length % 2 != 0) throw Malformed(opStart, "DICT with an odd number of items");
                            var d = new PyDict();
                            d.EnsureCapacity(items.Length / 2);
                            for (var i = 0; i < items.Length; i += 2) d.Set(items[i], items[i + 1]);
                            DropMarked(start);
                            Push(d, opStart);
                            break;
                        }
                    case EMPTY_SET: Push(new PySet(), opStart); break;
                    case FROZENSET:
                        {
                            var s = new PySet(frozen: true);
                            foreach (var item in PopMarkToArray(opStart)) s.Add(item);
                            Push(s, opStart);
                            break;
                        }
                    case ADDITEMS:
                        {
                            var items = PopMarkToArray(opStart);
                            if (Peek(opStart) is not PySet { IsFrozen: false } set) throw Malformed(opStart, $"ADDITEMS on {TypeName(Peek(opStart))}, not a set");
                            CheckContainerSize(set.Count + (long)items.Length, opStart);
                            foreach (var item in items) set.Add(item);
                            break;
                        }
                    case APPEND:
                        {
                            var item = Pop(opStart);
                            AppendTo(Peek(opStart), [item], opStart);
                            break;
                        }
                    case APPENDS:
                        {
                            var items = Marked(opStart, out var start);
                            AppendTo(BelowMarked(start, opStart), items, opStart);
                            DropMarked(start);
                            break;
                        }
                    case SETITEM:
                        {
                            var value = Pop(opStart);
                            var key = Pop(opStart);
                            SetItemsOn(Peek(opStart), [key, value], opStart);
                            break;
                        }
                    case SETITEMS:
                        {
                            var items = Marked(opStart, out var start);
                            if (items.Length % 2 != 0) throw Malformed(opStart, "SETITEMS with an odd number of items");
                            SetItemsOn(BelowMarked(start, opStart), items, opStart);
                            DropMarked(start);
                            break;
                        }

                    // ---- stack and memo
                    case MARK:
                        if (_markCount >= _limits.MaxNestingDepth)
                            throw Limit(opStart, $"the pickle nests deeper than {_limits.MaxNestingDepth} levels", nameof(LoadLimits.MaxNestingDepth));
                        if (_markCount == _marks.Length) _marks = PooledArrays.Regrow(_marks, _marks.Length * 2);
                        _marks[_markCount++] = _sp;
                        break;
                    case POP:
                        if (_sp > 0 && (_markCount == 0 || _marks[_markCount - 1] < _sp)) _sp--;
                        else if (_markCount > 0 && _marks[_markCount - 1] == _sp) _markCount--; // Python: POP of an empty frame pops the mark
                        else throw Malformed(opStart, "POP with an empty stack");
                        break;
                    case POP_MARK: Marked(opStart, out var popped); DropMarked(popped); break;
                    case DUP: Push(Peek(opStart), opStart); break;
                    case PUT: MemoPut(ParseMemoIndex(ReadLine(data, ref pos, opStart), opStart), opStart); break;
                    case BINPUT: MemoPut(ReadByte(data, ref pos), opStart); break;
                    case LONG_BINPUT: MemoPut(BinaryPrimitives.ReadUInt32LittleEndian(Take(data, ref pos, 4)), opStart); break;
                    case MEMOIZE: MemoPut((uint)_memoCount, opStart); break;
                    case GET: Push(MemoGet(ParseMemoIndex(ReadLine(data, ref pos, opStart), opStart), opStart), opStart); break;
                    case BINGET: Push(MemoGet(ReadByte(data, ref pos), opStart), opStart); break;
                    case LONG_BINGET: Push(MemoGet(BinaryPrimitives.ReadUInt32LittleEndian(Take(data, ref pos, 4)), opStart), opStart); break;

                    // ---- globals, objects, persistent ids: decided by the host
                    case GLOBAL:
                        {
                            var module = Utf8(ReadLine(data, ref pos, opStart), opStart);
                            var name = Utf8(ReadLine(data, ref pos, opStart), opStart);
                            Push(_host.ResolveGlobal(module, name), opStart);
                            break;
                        }
                    case STACK_GLOBAL:
                        {
                            var name = Pop(opStart);
                            var module = Pop(opStart);
                            if (module is not string m || name is not string n)
                                throw Malformed(opStart, $"STACK_GLOBAL needs two strings, got {TypeName(module)} and {TypeName(name)}");
                            Push(_host.ResolveGlobal(m, n), opStart);
                            break;
                        }
                    case REDUCE:
                        {
                            var args = Pop(opStart);
                            var callable = Pop(opStart);
                            if (args is not object?[] tuple) throw Malformed(opStart, $"REDUCE arguments must be a tuple, got {TypeName(args)}");
                            Push(_host.Reduce(callable, tuple), opStart);
                            break;
                        }
                    case NEWOBJ:
                        {
                            var args = Pop(opStart);
                            var cls = Pop(opStart);
                            if (args is not object?[] tuple) throw Malformed(opStart, $"NEWOBJ arguments must be a tuple, got {TypeName(args)}");
                            Push(_host.NewObject(cls, tuple, null, "NEWOBJ"), opStart);
                            break;
                        }
                    case NEWOBJ_EX:
                        {
                            var kwargs = Pop(opStart);
                            var args = Pop(opStart);
                            var cls = Pop(opStart);
                            if (args is not object?[] tuple || kwargs is not PyDict kw)
                                throw Malformed(opStart, $"NEWOBJ_EX needs a tuple and a dict, got {TypeName(args)} and {TypeName(kwargs)}");
                            Push(_host.NewObject(cls, tuple, kw, "NEWOBJ_EX"), opStart);
                            break;
                        }
                    case OBJ:
                        {
                            var items = PopMarkToArray(opStart);
                            if (items.Length == 0) throw Malformed(opStart, "OBJ without a class");
                            Push(_host.NewObject(items[0], items[1..], null, "OBJ"), opStart);
                            break;
                        }
                    case INST:
                        {
                            var module = Utf8(ReadLine(data, ref pos, opStart), opStart);
                            var name = Utf8(ReadLine(data, ref pos, opStart), opStart);
                            var args = PopMarkToArray(opStart);
                            var cls = _host.ResolveGlobal(module, name);
                            Push(_host.NewObject(cls, args, null, "INST"), opStart);
                            break;
                        }
                    case BUILD:
                        {
                            var state = Pop(opStart);
                            var target = Pop(opStart);
                            Push(_host.Build(target, state), opStart);
                            break;
                        }
                    case BINPERSID: Push(_host.PersistentLoad(Pop(opStart)), opStart); break;
                    case PERSID: Push(_host.PersistentLoad(Encoding.ASCII.GetString(ReadLine(data, ref pos, opStart))), opStart); break;

                    case EXT1:
                    case EXT2:
                    case EXT4:
                        throw new TorchLoadException(TorchLoadErrorReason.UnsupportedOpcode,
                            $"{Describe(op)} uses Python's extension registry (copyreg), which no checkpoint needs and TorchLoad never consults", _recordName, opStart);
                    case NEXT_BUFFER:
                    case READONLY_BUFFER:
                        throw new TorchLoadException(TorchLoadErrorReason.UnsupportedOpcode,
                            $"{Describe(op)} refers to an out-of-band buffer; torch.save never writes them", _recordName, opStart);
                    default:
                        throw new TorchLoadException(TorchLoadErrorReason.UnsupportedOpcode,
                            $"{Describe(op)} is not a pickle opcode; this is not a pickle or it is corrupt", _recordName, opStart);
                }
                if ((opStart & 0xFFFF) == 0) _cancel.ThrowIfCancellationRequested();
            }
        }
        catch (TorchLoadException e)
        {
            throw e.WithPlace(_recordName, opStart);
        }
        catch (OperationCanceledException)
        {
            throw;
        }
        catch (Exception e) when (e is InvalidCastException or ArgumentException or FormatException or OverflowException or IndexOutOfRangeException or InvalidOperationException)
        {
            throw new TorchLoadException(TorchLoadErrorReason.MalformedPickle, $"malformed pickle: {e.Message}", _recordName, opStart, e);
        }
    }

    // ------------------------------------------------------------------ stack

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Push(object? value, int at)
    {
        if (_sp == _stackRoom) Grow(at);
        _stack[_sp++] = value;
    }

    private void Grow(int at)
    {
        if (_stackRoom >= _limits.MaxStackItems)
            throw Limit(at, $"the pickle stack holds more than {_limits.MaxStackItems} values", nameof(LoadLimits.MaxStackItems));
        _stack = PooledArrays.Regrow(_stack, (int)Math.Min((long)_stackRoom * 2, _limits.MaxStackItems));
        _stackRoom = (int)Math.Min(_stack.Length, _limits.MaxStackItems);
    }


    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private object? Pop(int at)
    {
        if (_sp == 0 || (_markCount > 0 && _marks[_markCount - 1] >= _sp)) throw Malformed(at, "stack underflow");
        var v = _stack[--_sp];
        _stack[_sp] = null;
        return v;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private object? Peek(int at)
    {
        if (_sp == 0 || (_markCount > 0 && _marks[_markCount - 1] >= _sp)) throw Malformed(at, "stack underflow");
        return _stack[_sp - 1];
    }

    /// <summary>
    /// The items above the top MARK, where they lie on the stack (APPENDS, SETITEMS, DICT, LIST copy them
    /// into their container: no array per batch). The mark is popped; <see cref="DropMarked"/> pops the items.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private ReadOnlySpan<object?> Marked(int at, out int start)
    {
        if (_markCount == 0) throw Malformed(at, "no MARK to pop to");
        start = _marks[--_markCount];
        CheckContainerSize(_sp - start, at);
        return _stack.AsSpan(start, _sp - start);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void DropMarked(int start)
    {
        _stack.AsSpan(start, _sp - start).Clear();
        _sp = start;
    }

    /// <summary>The value under the marked items (what Peek would give once they are popped).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private object? BelowMarked(int start, int at)
    {
        if (start == 0 || (_markCount > 0 && _marks[_markCount - 1] >= start)) throw Malformed(at, "stack underflow");
        return _stack[start - 1];
    }

    /// <summary>
    /// MARK ... TUPLE, then a memo put that is never read back (or none), then REDUCE or BINPERSID: the call gets the
    /// marked items where they lie on the stack, and the tuple (for every tensor of a state dict, a storage's
    /// persistent id and the rebuild's arguments) is never made. Nothing else could see it: the memo does not keep it
    /// and the call consumes it. False (nothing done) for anything else, which then runs opcode by opcode.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private bool ConsumeMarkedTuple(ReadOnlySpan<byte> data, ref int pos, ref int opStart)
    {
        if (_markCount == 0) return false;
        var next = pos;
        uint? put = null;
        if (next < data.Length)
        {
            switch (data[next])
            {
                case BINPUT when next + 1 < data.Length: put = data[next + 1]; next += 2; break;
                case LONG_BINPUT when next + 4 < data.Length: put = BinaryPrimitives.ReadUInt32LittleEndian(data.Slice(next + 1, 4)); next += 5; break;
                case MEMOIZE: put = (uint)_memoCount; next += 1; break;
            }
        }
        if (next >= data.Length || put is { } p && _reads.Contains(p)) return false;
        var call = data[next];
        var start = _marks[_markCount - 1];
        if (call == REDUCE ? start == 0 || (_markCount > 1 && _marks[_markCount - 2] >= start) : call != BINPERSID) return false; // REDUCE: a callable under the mark
        var items = Marked(opStart, out start); // pops the mark and checks the count, as TUPLE does
        if (put is { } index)
        {
            opStart = pos; // errors name the opcode that raised them, as one by one
            CountUnread(index, pos);
        }
        opStart = next;
        var result = call == REDUCE ? _host.Reduce(_stack[start - 1], items) : _host.PersistentLoadTuple(items);
        DropMarked(start);
        if (call == REDUCE) _stack[--_sp] = null; // the callable
        Push(result, next);
        pos = next + 1;
        return true;
    }

    /// <summary>The items above the top MARK as a new array (tuples, and what the host keeps), popped with the mark.</summary>
    private object?[] PopMarkToArray(int at)
    {
        var marked = Marked(at, out var start);
        var items = marked.IsEmpty ? [] : marked.ToArray();
        DropMarked(start);
        return items;
    }

    private void AppendTo(object? target, ReadOnlySpan<object?> items, int at)
    {
        if (target is List<object?> list)
        {
            CheckContainerSize(list.Count + (long)items.Length, at);
            list.AddRange(items);
        }
        else _host.Append(target, items);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void SetItemsOn(object? target, ReadOnlySpan<object?> keysAndValues, int at)
    {
        if (target is PyDict dict)
        {
            CheckContainerSize(dict.Count + (long)keysAndValues.Length / 2, at);
            dict.EnsureCapacity(dict.Count + keysAndValues.Length / 2);
            for (var i = 0; i < keysAndValues.Length; i += 2) dict.Set(keysAndValues[i], keysAndValues[i + 1]);
        }
        else _host.SetItems(target, keysAndValues);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void MemoPut(uint index, int at)
    {
        var value = Peek(at);
        if (!_reads.Contains(index))
        {
            CountUnread(index, at);
            return;
        }
        var c = (int)(index >> MemoChunkBits);
        var chunk = c < _memoChunks.Length ? _memoChunks[c] : null;
        if (chunk is null && index < 2L * _memoCount + MemoChunkSize) chunk = NewMemoChunk(c, index);
        else if (chunk is not null && (index & MemoChunkMask) >= chunk.Length) chunk = GrowFirstMemoChunk(index);
        if (chunk is not null)
        {
            ref var slot = ref chunk[index & MemoChunkMask];
            if (slot is null && !(_memoSparse is { Count: > 0 } moved && moved.Remove(index))) CountMemoEntry(at);
            slot = value ?? MemoNone;
            return;
        }
        var sparse = _memoSparse ??= [];
        if (!sparse.ContainsKey(index)) CountMemoEntry(at);
        sparse[index] = value;
    }

    /// <summary>An entry that is never read back: counted once per index (MaxMemoEntries), as a kept one is.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void CountUnread(uint index, int at)
    {
        if (index < 2L * _memoCount + MemoChunkSize) // as for chunks: the bits follow the entry count, not the index
        {
            var word = (int)(index >> 6);
            if (_unreadBits is null || word >= _unreadBits.Length)
            {
                // not pooled nor Array.Resize<ulong>: neither is precompiled, and a one-shot command's first load compiled them
                var grown = new ulong[Math.Max(word + 1, 2 * (_unreadBits?.Length ?? 2))];
                _unreadBits?.CopyTo(grown, 0);
                _unreadBits = grown;
            }
            ref var bits = ref _unreadBits[word];
            var bit = 1UL << (int)(index & 63);
            if ((bits & bit) != 0) return;
            if (_unreadFar?.Contains(index) != true) CountMemoEntry(at); // put while it was far, then again: the same entry
            bits |= bit;
            return;
        }
        if ((_unreadFar ??= new()).Add(index)) CountMemoEntry(at);
    }

    private object?[] NewMemoChunk(int c, uint index)
    {
        if (c >= _memoChunks.Length)
        {
            var had = _memoChunks.Length;
            _memoChunks = PooledArrays.Regrow(_memoChunks, Math.Max(c + 1, had * 2));
            Array.Clear(_memoChunks, had, _memoChunks.Length - had);
        }
        return _memoChunks[c] = RentChunk(c == 0 ? FirstChunkLength(FirstMemoChunk, index) : MemoChunkSize);
    }

    /// <summary>An empty chunk of at least <paramref name="length"/> slots (pooled arrays have power-of-two lengths, so chunk 0 stays within MemoChunkSize).</summary>
    private static object?[] RentChunk(int length)
    {
        var chunk = PooledArrays.Rent<object?>(length);
        Array.Clear(chunk); // what others gave back need not be cleared
        return chunk;
    }

    // only chunk 0 is ever shorter than MemoChunkSize (an index below 4,096 passes the "twice the entries" test anyway)
    private object?[] GrowFirstMemoChunk(uint index)
    {
        var old = _memoChunks[0]!;
        var grown = RentChunk(FirstChunkLength(old.Length * 2, index));
        old.CopyTo(grown, 0);
        PooledArrays.Return(old, clear: true);
        return _memoChunks[0] = grown;
    }

    private static int FirstChunkLength(int atLeast, uint index) =>
        (int)Math.Min(MemoChunkSize, Math.Max((uint)atLeast, System.Numerics.BitOperations.RoundUpToPowerOf2(index + 1)));

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void CountMemoEntry(int at)
    {
        if (_memoCount >= _limits.MaxMemoEntries)
            throw Limit(at, $"the pickle memo holds more than {_limits.MaxMemoEntries} entries", nameof(LoadLimits.MaxMemoEntries));
        _memoCount++;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private object? MemoGet(uint index, int at)
    {
        var c = index >> MemoChunkBits;
        if (c < (uint)_memoChunks.Length && _memoChunks[c] is { } chunk && (index & MemoChunkMask) < (uint)chunk.Length
            && chunk[index & MemoChunkMask] is { } v) return v == MemoNone ? null : v;
        if (_memoSparse is { } sparse && sparse.TryGetValue(index, out var s)) return s;
        if (!_reads.Contains(index)) // cannot happen: the walk and the run read the same opcodes
            throw Malformed(at, $"memo entry {index} is read, but the walk before the run found no read of it");
        throw Malformed(at, $"memo entry {index} is read before it is written");
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void CheckContainerSize(long n, int at)
    {
        if (n > _limits.MaxContainerItems)
            throw Limit(at, $"a container holds more than {_limits.MaxContainerItems} items", nameof(LoadLimits.MaxContainerItems));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void CheckStringLimit(long n, int at)
    {
        if (n > _limits.MaxStringBytes)
            throw Limit(at, $"a string, bytes or integer value of {n} bytes is over the limit of {_limits.MaxStringBytes}", nameof(LoadLimits.MaxStringBytes));
    }

    // ------------------------------------------------------------------ reading

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static object Box(int v) => v is >= -1 and <= 256 ? SmallInts[v + 1] : (long)v;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private byte ReadByte(ReadOnlySpan<byte> data, ref int pos)
    {
        if (pos >= data.Length) throw Truncated(pos - 1, "the pickle ends inside an opcode argument");
        return data[pos++];
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private ReadOnlySpan<byte> Take(ReadOnlySpan<byte> data, ref int pos, long n)
    {
        if (n > data.Length - pos) throw Truncated(pos - 1, $"an opcode argument declares {n} bytes but only {data.Length - pos} are left");
        var s = data.Slice(pos, (int)n);
        pos += (int)n;
        return s;
    }

    /// <summary>A string/bytes payload: the length limit applies to the short forms too.</summary>
    private ReadOnlySpan<byte> TakeString(ReadOnlySpan<byte> data, ref int pos, long n, int at)
    {
        CheckStringLimit(n, at);
        return Take(data, ref pos, n);
    }

    private ulong ReadU64(ReadOnlySpan<byte> data, ref int pos) => BinaryPrimitives.ReadUInt64LittleEndian(Take(data, ref pos, 8));

    private long Length32(ReadOnlySpan<byte> data, ref int pos, int at)
    {
        long n = BinaryPrimitives.ReadUInt32LittleEndian(Take(data, ref pos, 4));
        CheckStringLimit(n, at);
        return n;
    }

    private long Length64(ReadOnlySpan<byte> data, ref int pos, int at)
    {
        var n = ReadU64(data, ref pos);
        if (n > (ulong)(data.Length - pos)) throw Truncated(at, $"a value declares {n} bytes but only {data.Length - pos} are left");
        CheckStringLimit((long)n, at);
        return (long)n;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private ReadOnlySpan<byte> ReadLine(ReadOnlySpan<byte> data, ref int pos, int at)
    {
        var rest = data[pos..];
        var nl = rest.IndexOf((byte)'\n');
        if (nl < 0) throw Truncated(at, "a text argument has no end of line");
        CheckStringLimit(nl, at);
        pos += nl + 1;
        return rest[..nl];
    }

    private object ReadLong(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length == 0) return SmallInts[1];
        if (bytes.Length <= 8)
        {
            // sign-extend the little-endian two's-complement value
            long v = (sbyte)bytes[^1];
            for (var i = bytes.Length - 2; i >= 0; i--) v = (v << 8) | bytes[i];
            return v is >= -1 and <= 256 ? SmallInts[v + 1] : v;
        }
        var big = new BigInteger(bytes, isUnsigned: false, isBigEndian: false);
        return big >= long.MinValue && big <= long.MaxValue ? (object)(long)big : big;
    }

    private object ParseDecimal(ReadOnlySpan<byte> line, int at)
    {
        // BigInteger parsing is quadratic: bound the digits first, as Python does (int max str digits)
        if (line.Length > _limits.MaxIntegerDigits + 2)
            throw Limit(at, $"an integer has {line.Length} digits, more than {_limits.MaxIntegerDigits}", nameof(LoadLimits.MaxIntegerDigits));
        var text = Encoding.ASCII.GetString(line).Trim();
        if (long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l)) return l is >= -1 and <= 256 ? SmallInts[l + 1] : l;
        if (BigInteger.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var b)) return b;
        throw Malformed(at, $"'{Shorten(text)}' is not an integer");
    }

    private double ParseFloat(string text, int at)
    {
        var t = text.Trim();
        switch (t.ToLowerInvariant())
        {
            case "nan": case "-nan": return double.NaN;
            case "inf": case "infinity": return double.PositiveInfinity;
            case "-inf": case "-infinity": return double.NegativeInfinity;
        }
        return double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? d : throw Malformed(at, $"'{Shorten(t)}' is not a float");
    }

    private uint ParseMemoIndex(ReadOnlySpan<byte> line, int at) =>
        uint.TryParse(line, NumberStyles.None, CultureInfo.InvariantCulture, out var i) ? i : throw Malformed(at, "a memo index is not a number");

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private string Utf8(ReadOnlySpan<byte> bytes, int at)
    {
        if (_stringMisses < StringMissesBeforeGivingUp && System.Text.Ascii.IsValid(bytes)) // ASCII reads the same in UTF-8
        {
            var s = RecentStrings.Get(_strings, bytes, out var found);
            _stringMisses = found ? 0 : _stringMisses + 1;
            return s;
        }
        try { return StrictUtf8.GetString(bytes); }
        catch (DecoderFallbackException) { return Wtf8.Decode(bytes) ?? throw Malformed(at, "a string is not valid UTF-8"); }
    }

    /// <summary>Python 2 <c>str</c>: decoded as torch.load's <c>encoding</c> says.</summary>
    private object Python2Str(ReadOnlySpan<byte> bytes, int at) => _encoding switch
    {
        PickleStringEncoding.Bytes => bytes.ToArray(),
        PickleStringEncoding.Latin1 => Encoding.Latin1.GetString(bytes),
        PickleStringEncoding.Ascii => bytes.IndexOfAnyExceptInRange((byte)0, (byte)0x7F) < 0
            ? Encoding.ASCII.GetString(bytes)
            : throw Malformed(at, "a Python 2 string is not ASCII; load with -Encoding latin1 or bytes"),
        _ => Utf8(bytes, at),
    };

    /// <summary>Protocol 0 STRING argument: a Python string literal in quotes, with backslash escapes.</summary>
    private byte[] UnquoteStringLiteral(ReadOnlySpan<byte> line, int at)
    {
        if (line.Length < 2 || line[0] != line[^1] || (line[0] != '\'' && line[0] != '"'))
            throw Malformed(at, "the STRING opcode argument is not quoted");
        var body = line[1..^1];
        var output = new List<byte>(body.Length);
        for (var i = 0; i < body.Length; i++)
        {
            var c = body[i];
            if (c != '\\' || i + 1 >= body.Length) { output.Add(c); continue; }
            var e = body[++i];
            switch (e)
            {
                case (byte)'n': output.Add((byte)'\n'); break;
                case (byte)'r': output.Add((byte)'\r'); break;
                case (byte)'t': output.Add((byte)'\t'); break;
                case (byte)'a': output.Add(7); break;
                case (byte)'b': output.Add(8); break;
                case (byte)'f': output.Add(12); break;
                case (byte)'v': output.Add(11); break;
                case (byte)'\\': output.Add((byte)'\\'); break;
                case (byte)'\'': output.Add((byte)'\''); break;
                case (byte)'"': output.Add((byte)'"'); break;
                case (byte)'\n': break;
                case (byte)'x' when i + 2 < body.Length && byte.TryParse(body.Slice(i + 1, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var hx):
                    output.Add(hx); i += 2; break;
                case >= (byte)'0' and <= (byte)'7':
                    {
                        var v = e - '0';
                        for (var k = 0; k < 2 && i + 1 < body.Length && body[i + 1] is >= (byte)'0' and <= (byte)'7'; k++) v = v * 8 + (body[++i] - '0');
                        output.Add((byte)v);
                        break;
                    }
                default: output.Add((byte)'\\'); output.Add(e); break;
            }
        }
        return output.ToArray();
    }

    /// <summary>Protocol 0 UNICODE argument: raw-unicode-escape (Latin-1 bytes plus \uXXXX and \UXXXXXXXX).</summary>
    private string RawUnicodeEscape(ReadOnlySpan<byte> line, int at)
    {
        var sb = new StringBuilder(line.Length);
        for (var i = 0; i < line.Length; i++)
        {
            var c = line[i];
            if (c == '\\' && i + 1 < line.Length && (line[i + 1] == 'u' || line[i + 1] == 'U'))
            {
                var digits = line[i + 1] == 'u' ? 4 : 8;
                if (i + 2 + digits > line.Length || !uint.TryParse(line.Slice(i + 2, digits), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var cp) || cp > 0x10FFFF)
                    throw Malformed(at, "a bad \\u escape in a UNICODE argument");
                sb.Append(cp is >= 0xD800 and <= 0xDFFF ? ((char)cp).ToString() : char.ConvertFromUtf32((int)cp));
                i += 1 + digits;
            }
            else sb.Append((char)c);
        }
        return sb.ToString();
    }

    // ------------------------------------------------------------------ errors

    private static string TypeName(object? v) => v switch
    {
        null => "None",
        string => "str",
        long or BigInteger => "int",
        bool => "bool",
        double => "float",
        object?[] => "tuple",
        List<object?> => "list",
        PyDict d => d.PythonType,
        PyObject o => o.ClassName,
        PyGlobal g => g.ClassName,
        _ => v.GetType().Name,
    };

    private static string Shorten(string s) => s.Length <= 40 ? s : s[..40] + "...";

    private TorchLoadException Malformed(int at, string message) =>
        new(TorchLoadErrorReason.MalformedPickle, $"Malformed pickle: {message}", _recordName, at);

    private TorchLoadException Truncated(int at, string message) =>
        new(TorchLoadErrorReason.TruncatedCheckpoint, $"The pickle is truncated: {message}", _recordName, at);

    private TorchLoadException Limit(int at, string message, string limit) =>
        new(TorchLoadErrorReason.LimitExceeded, $"{message}. This protects against hostile files; if you trust this file, raise the limit with -{limit} (LoadLimits.{limit})", _recordName, at)
        { LimitName = limit };
}

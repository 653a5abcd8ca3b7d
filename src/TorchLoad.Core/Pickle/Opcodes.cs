namespace TorchLoad.Core.Pickle;

/// <summary>
/// The one opcode table (Python's pickletools names and bytes). Nothing else in TorchLoad defines
/// opcode bytes; <see cref="PickleMachine"/> switches on these, <see cref="Describe"/> names them, and
/// <see cref="ArgumentTable"/> says what follows each (for walks that skip opcodes without running them).
/// </summary>
internal static class Opcodes
{
    // protocol 0 and 1 (text and early binary)
    public const byte MARK = (byte)'(', STOP = (byte)'.', POP = (byte)'0', POP_MARK = (byte)'1', DUP = (byte)'2';
    public const byte FLOAT = (byte)'F', INT = (byte)'I', BININT = (byte)'J', BININT1 = (byte)'K', LONG = (byte)'L';
    public const byte BININT2 = (byte)'M', NONE = (byte)'N', PERSID = (byte)'P', BINPERSID = (byte)'Q', REDUCE = (byte)'R';
    public const byte STRING = (byte)'S', BINSTRING = (byte)'T', SHORT_BINSTRING = (byte)'U', UNICODE = (byte)'V';
    public const byte BINUNICODE = (byte)'X', APPEND = (byte)'a', BUILD = (byte)'b', GLOBAL = (byte)'c', DICT = (byte)'d';
    public const byte EMPTY_DICT = (byte)'}', APPENDS = (byte)'e', GET = (byte)'g', BINGET = (byte)'h', INST = (byte)'i';
    public const byte LONG_BINGET = (byte)'j', LIST = (byte)'l', EMPTY_LIST = (byte)']', OBJ = (byte)'o', PUT = (byte)'p';
    public const byte BINPUT = (byte)'q', LONG_BINPUT = (byte)'r', SETITEM = (byte)'s', TUPLE = (byte)'t';
    public const byte EMPTY_TUPLE = (byte)')', SETITEMS = (byte)'u', BINFLOAT = (byte)'G';
    // protocol 2
    public const byte PROTO = 0x80, NEWOBJ = 0x81, EXT1 = 0x82, EXT2 = 0x83, EXT4 = 0x84, TUPLE1 = 0x85, TUPLE2 = 0x86;
    public const byte TUPLE3 = 0x87, NEWTRUE = 0x88, NEWFALSE = 0x89, LONG1 = 0x8A, LONG4 = 0x8B;
    // protocol 3
    public const byte BINBYTES = (byte)'B', SHORT_BINBYTES = (byte)'C';
    // protocol 4
    public const byte SHORT_BINUNICODE = 0x8C, BINUNICODE8 = 0x8D, BINBYTES8 = 0x8E, EMPTY_SET = 0x8F, ADDITEMS = 0x90;
    public const byte FROZENSET = 0x91, NEWOBJ_EX = 0x92, STACK_GLOBAL = 0x93, MEMOIZE = 0x94, FRAME = 0x95;
    // protocol 5
    public const byte BYTEARRAY8 = 0x96, NEXT_BUFFER = 0x97, READONLY_BUFFER = 0x98;

    public const int HighestProtocol = 5;

    /// <summary>What follows an opcode byte in the stream.</summary>
    public enum Argument : byte
    {
        /// <summary>Not an opcode.</summary>
        Unknown,
        None,
        Fixed1, Fixed2, Fixed4, Fixed8,
        /// <summary>A byte count, then that many bytes (1: an unsigned byte; 4S: a signed int32; 4: an unsigned uint32; 8: a uint64).</summary>
        Counted1, Counted4S, Counted4, Counted8,
        /// <summary>Text to the end of the line (two lines: GLOBAL and INST).</summary>
        Line, TwoLines,
    }

    private static readonly Argument[] Arguments = BuildArguments();

    private static Argument[] BuildArguments()
    {
        var a = new Argument[256];
        foreach (var f in typeof(Opcodes).GetFields())
            if (f.IsLiteral && f.FieldType == typeof(byte)) a[(byte)f.GetRawConstantValue()!] = Argument.None;
        foreach (var op in new[] { PROTO, BININT1, BINGET, BINPUT, EXT1 }) a[op] = Argument.Fixed1;
        foreach (var op in new[] { BININT2, EXT2 }) a[op] = Argument.Fixed2;
        foreach (var op in new[] { BININT, LONG_BINGET, LONG_BINPUT, EXT4 }) a[op] = Argument.Fixed4;
        foreach (var op in new[] { BINFLOAT, FRAME }) a[op] = Argument.Fixed8; // a FRAME's length; the frame's opcodes follow
        foreach (var op in new[] { LONG1, SHORT_BINUNICODE, SHORT_BINBYTES, SHORT_BINSTRING }) a[op] = Argument.Counted1;
        foreach (var op in new[] { LONG4, BINSTRING }) a[op] = Argument.Counted4S;
        foreach (var op in new[] { BINUNICODE, BINBYTES }) a[op] = Argument.Counted4;
        foreach (var op in new[] { BINUNICODE8, BINBYTES8, BYTEARRAY8 }) a[op] = Argument.Counted8;
        foreach (var op in new[] { INT, LONG, FLOAT, STRING, UNICODE, GET, PUT, PERSID }) a[op] = Argument.Line;
        foreach (var op in new[] { GLOBAL, INST }) a[op] = Argument.TwoLines;
        return a;
    }

    /// <summary>The argument that follows each opcode, indexed by opcode byte (a loop reads it without a static lookup per opcode).</summary>
    public static ReadOnlySpan<Argument> ArgumentTable => Arguments;

    private static readonly string?[] Names = BuildNames();

    private static string?[] BuildNames()
    {
        var names = new string?[256];
        foreach (var f in typeof(Opcodes).GetFields())
            if (f.IsLiteral && f.FieldType == typeof(byte)) names[(byte)f.GetRawConstantValue()!] = f.Name;
        return names;
    }

    /// <summary>"STACK_GLOBAL (0x93)" or "byte 0x76 ('v')" for messages.</summary>
    public static string Describe(byte op) => Names[op] is { } n
        ? $"{n} (0x{op:X2})"
        : op is >= 0x20 and < 0x7F ? $"byte 0x{op:X2} ('{(char)op}')" : $"byte 0x{op:X2}";
}

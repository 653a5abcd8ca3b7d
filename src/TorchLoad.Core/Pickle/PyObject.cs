namespace TorchLoad.Core.Pickle;

/// <summary>
/// An instance of a class TorchLoad does not rebuild (permissive mode, or a user-allowed global).
/// Nothing was executed to make it: it only records what the pickle said. <see cref="ClassName"/>
/// is <c>module.qualname</c>; <see cref="Args"/> the constructor arguments; <see cref="State"/> what
/// BUILD set (usually a dictionary); list/dict subclasses keep APPENDed / SETITEMed data.
/// </summary>
public sealed class PyObject
{
    public PyObject(string className, object?[] args, string constructedBy)
    {
        ClassName = className;
        Args = args;
        ConstructedBy = constructedBy;
    }

    public string ClassName { get; }
    public object?[] Args { get; }

    /// <summary><c>new</c> (NEWOBJ/NEWOBJ_EX/OBJ/INST) or <c>call</c> (REDUCE).</summary>
    public string ConstructedBy { get; }

    /// <summary>Keyword arguments of NEWOBJ_EX, if any.</summary>
    public PyDict? KwArgs { get; internal set; }

    public object? State { get; internal set; }

    /// <summary>When the pickle called the result of another call (<c>getattr(x, 'f')(...)</c>): that earlier record.</summary>
    public PyObject? Callee { get; internal set; }
    public List<object?>? ListItems { get; internal set; }
    public PyDict? DictItems { get; internal set; }

    public override string ToString() => $"<{ClassName} object>";
}

/// <summary>A class or function referenced as a value (not called), e.g. a bare <c>GLOBAL</c>.</summary>
public sealed class PyGlobal
{
    public PyGlobal(string module, string name) : this(module, name, GlobalKind.Inert, null) { }

    internal PyGlobal(string module, string name, GlobalKind kind, object? payload)
    {
        Module = module;
        Name = name;
        Kind = kind;
        Payload = payload;
    }

    /// <summary>What TorchLoad does when the pickle calls or instantiates it.</summary>
    internal GlobalKind Kind { get; }

    /// <summary>Kind-specific data (the dtype of a storage class).</summary>
    internal object? Payload { get; }

    public string Module { get; }
    public string Name { get; }

    /// <summary><c>module.name</c>, as torch's allowlist keys it.</summary>
    public string ClassName => $"{Module}.{Name}";

    public override string ToString() => $"<class '{ClassName}'>";
}

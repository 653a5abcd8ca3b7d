namespace TorchLoad.Core.Pickle;

/// <summary>
/// What a pickle may ask for beyond plain data. The machine itself never resolves a name or calls
/// anything: globals, calls, object creation, BUILD and persistent ids all go through this host,
/// which decides what is allowed (see <see cref="TorchUnpickler"/>).
/// </summary>
internal interface IPickleHost
{
    /// <summary>GLOBAL / STACK_GLOBAL / INST / class lookups. Throws UnsafeGlobal when not allowed.</summary>
    object ResolveGlobal(string module, string name);

    /// <summary>BINPERSID / PERSID.</summary>
    object? PersistentLoad(object? pid);

    /// <summary>BINPERSID of a tuple that only this call sees (the machine never made it): valid only during the call.</summary>
    object? PersistentLoadTuple(ReadOnlySpan<object?> pid);

    /// <summary>
    /// REDUCE: <paramref name="callable"/> is something <see cref="ResolveGlobal"/> returned (or any value, which the host
    /// refuses). <paramref name="args"/> may lie on the machine's stack: valid only during the call (copy what is kept).
    /// </summary>
    object? Reduce(object? callable, ReadOnlySpan<object?> args);

    /// <summary>NEWOBJ / NEWOBJ_EX / OBJ / INST.</summary>
    object? NewObject(object? cls, object?[] args, PyDict? kwargs, string opcode);

    /// <summary>BUILD: returns the object that replaces the target on the stack (usually the target).</summary>
    object? Build(object? target, object? state);

    /// <summary>SETITEM(S) on something that is not a plain dict; throws when not allowed.</summary>
    void SetItems(object? target, ReadOnlySpan<object?> keysAndValues);

    /// <summary>APPEND(S) on something that is not a plain list; throws when not allowed.</summary>
    void Append(object? target, ReadOnlySpan<object?> items);
}

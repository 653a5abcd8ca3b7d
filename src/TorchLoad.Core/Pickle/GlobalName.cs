namespace TorchLoad.Core.Pickle;

/// <summary>
/// Python 2 to 3 renames applied to GLOBAL names before any lookup (the subset of Python's
/// <c>_compat_pickle</c> that torch's weights-only unpickler applies, spec 6.2).
/// </summary>
internal static class GlobalName
{
    private static readonly Dictionary<string, string> Modules = new(StringComparer.Ordinal)
    {
        ["__builtin__"] = "builtins", ["copy_reg"] = "copyreg", ["Queue"] = "queue", ["repr"] = "reprlib",
        ["_abcoll"] = "collections.abc", ["UserDict"] = "collections", ["UserList"] = "collections",
        ["UserString"] = "collections", ["whichdb"] = "dbm", ["StringIO"] = "io", ["cStringIO"] = "io",
    };

    // keyed "module name", values "module name": a dictionary of strings is precompiled in the framework, one over
    // value tuples was JIT-compiled on every process's first load
    private static readonly Dictionary<string, string> Names = new(StringComparer.Ordinal)
    {
        ["__builtin__ xrange"] = "builtins range",
        ["__builtin__ reduce"] = "functools reduce",
        ["__builtin__ intern"] = "sys intern",
        ["__builtin__ unichr"] = "builtins chr",
        ["__builtin__ unicode"] = "builtins str",
        ["__builtin__ basestring"] = "builtins str",
        ["__builtin__ long"] = "builtins int",
        ["itertools izip"] = "builtins zip",
        ["itertools imap"] = "builtins map",
        ["itertools ifilter"] = "builtins filter",
        ["itertools ifilterfalse"] = "itertools filterfalse",
        ["itertools izip_longest"] = "itertools zip_longest",
        ["exceptions StandardError"] = "builtins Exception",
        ["UserDict UserDict"] = "collections UserDict",
        ["UserDict IterableUserDict"] = "collections UserDict",
        ["UserList UserList"] = "collections UserList",
        ["UserString UserString"] = "collections UserString",
    };

    /// <summary>The Python 3 (module, name) a pickled (module, name) means.</summary>
    public static (string Module, string Name) Map(string module, string name)
    {
        if ((module is "__builtin__" or "itertools" or "exceptions" or "UserDict" or "UserList" or "UserString")
            && Names.TryGetValue($"{module} {name}", out var mapped))
        {
            var space = mapped.IndexOf(' ');
            return (mapped[..space], mapped[(space + 1)..]);
        }
        if (module == "exceptions") return ("builtins", name);
        return (Modules.TryGetValue(module, out var m) ? m : module, name);
    }

    /// <summary>Modules no allowlist can open (torch's blocklist): exact match, submodules are not blocked.</summary>
    public static bool IsBlockedModule(ReadOnlySpan<char> module) => module is "os" or "sys" or "posix" or "nt";
}

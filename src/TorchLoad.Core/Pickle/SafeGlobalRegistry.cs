using TorchLoad.Core.Errors;

namespace TorchLoad.Core.Pickle;

/// <summary>
/// The process-wide user allowlist (torch's add_safe_globals / get_safe_globals /
/// clear_safe_globals). Its owner is this class; every access takes the lock, and loads take a
/// snapshot when they start, so adding names while other loads run never changes those loads.
/// </summary>
public static class SafeGlobalRegistry
{
    private static readonly object Gate = new();
    private static HashSet<string> _names = new(StringComparer.Ordinal); // replaced whole under Gate, never changed: read without it

    /// <summary>Adds <c>module.Name</c> entries; refuses blocked modules (os, sys, posix, nt) and malformed names.</summary>
    public static void Add(IEnumerable<string> names)
    {
        var checkedNames = names.Select(Validate).ToList();
        lock (Gate)
        {
            var next = new HashSet<string>(_names, StringComparer.Ordinal);
            next.UnionWith(checkedNames);
            Volatile.Write(ref _names, next);
        }
    }

    public static IReadOnlyList<string> Get()
    {
        lock (Gate) return _names.OrderBy(n => n, StringComparer.Ordinal).ToList();
    }

    public static void Clear()
    {
        lock (Gate) Volatile.Write(ref _names, new HashSet<string>(StringComparer.Ordinal));
    }

    /// <summary>An immutable view for one load. Sets are replaced whole, never changed, so reading the current one needs no lock (every audit asks twice, from every worker).</summary>
    internal static IReadOnlySet<string> Snapshot() => Volatile.Read(ref _names);

    /// <summary>
    /// The registry's names plus <paramref name="extra"/> (a call's -SafeGlobal), validated: the registry's own set
    /// when there is nothing to add (it is never changed, only replaced), so a load copies nothing.
    /// </summary>
    internal static IReadOnlySet<string> SnapshotWith(IEnumerable<string>? extra)
    {
        var names = Snapshot();
        HashSet<string>? all = null;
        foreach (var name in extra ?? []) (all ??= new HashSet<string>(names, StringComparer.Ordinal)).Add(Validate(name));
        return all ?? names;
    }

    /// <summary>Checks a user-supplied <c>module.Name</c> and returns it trimmed.</summary>
    public static string Validate(string name)
    {
        var n = name?.Trim() ?? "";
        var dot = n.LastIndexOf('.');
        if (dot <= 0 || dot == n.Length - 1 || n.Any(char.IsWhiteSpace))
            throw new TorchLoadException(TorchLoadErrorReason.InvalidArgument, $"'{name}' is not a global name; use the form 'module.Name' (for example 'numpy.core.multiarray._reconstruct').");
        var module = n[..dot];
        if (GlobalName.IsBlockedModule(module))
            throw new TorchLoadException(TorchLoadErrorReason.UnsafeGlobal, $"'{n}' can never be allowed: module '{module}' is blocked (os, sys, posix and nt give code execution).") { GlobalName = n };
        return n;
    }
}

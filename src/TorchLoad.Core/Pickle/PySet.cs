using System.Collections;

namespace TorchLoad.Core.Pickle;

/// <summary>A Python set or frozenset: distinct members (Python equality) in the order first added.</summary>
public sealed class PySet : IEnumerable<object?>
{
    private readonly List<object?> _items = [];
    private readonly HashSet<object?> _seen = new(PyKeyComparer.Instance);

    public PySet(bool frozen = false) => IsFrozen = frozen;

    public bool IsFrozen { get; }
    public int Count => _items.Count;

    public void Add(object? item)
    {
        if (_seen.Add(item)) _items.Add(item);
    }

    public bool Contains(object? item) => _seen.Contains(item);
    public IEnumerator<object?> GetEnumerator() => _items.GetEnumerator();
    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
    public override string ToString() => $"{(IsFrozen ? "frozenset" : "set")} ({Count} items)";
}

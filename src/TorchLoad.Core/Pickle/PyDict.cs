using System.Collections;

namespace TorchLoad.Core.Pickle;

/// <summary>
/// A Python dict, OrderedDict or Counter: insertion order, keys of their own types (null, integers,
/// tuples as <c>object[]</c>) compared with Python's equality. <see cref="Attributes"/> holds what a
/// <c>BUILD</c> set on an OrderedDict (a state_dict's <c>_metadata</c>).
/// </summary>
public sealed class PyDict : IDictionary, IEnumerable<KeyValuePair<object?, object?>>
{
    // Created on first insert: a checkpoint has thousands of empty OrderedDicts (backward hooks).
    private List<KeyValuePair<object?, object?>>? _entriesOrNull;
    private Dictionary<KeyBox, int>? _indexOrNull;
    private List<KeyValuePair<object?, object?>> _entries => _entriesOrNull ??= [];
    private Dictionary<KeyBox, int> _index => _indexOrNull ??= new(KeyBox.Comparer);

    public PyDict(string pythonType = "dict") => PythonType = pythonType;

    /// <summary><c>dict</c>, <c>collections.OrderedDict</c> or <c>collections.Counter</c>.</summary>
    public string PythonType { get; }

    /// <summary>Instance attributes set by BUILD (OrderedDict's <c>_metadata</c>); null when none.</summary>
    public PyDict? Attributes { get; internal set; }

    public int Count => _entriesOrNull?.Count ?? 0;

    public object? this[object? key]
    {
        get => TryGetValue(key, out var v) ? v : null;
        set => Set(key, value);
    }

    public bool TryGetValue(object? key, out object? value)
    {
        if (_indexOrNull is not null && _indexOrNull.TryGetValue(new KeyBox(key), out var i)) { value = _entries[i].Value; return true; }
        value = null;
        return false;
    }

    /// <summary>Python assignment: an existing key keeps its position and first key object.</summary>
    public void Set(object? key, object? value)
    {
        var box = new KeyBox(key);
        if (_index.TryGetValue(box, out var i)) _entries[i] = new(_entries[i].Key, value);
        else { _index.Add(box, _entries.Count); _entries.Add(new(key, value)); }
    }

    public bool ContainsKey(object? key) => _indexOrNull?.ContainsKey(new KeyBox(key)) ?? false;
    public IEnumerable<object?> KeyList => _entries.Select(e => e.Key);
    public IEnumerable<object?> ValueList => _entries.Select(e => e.Value);

    IEnumerator<KeyValuePair<object?, object?>> IEnumerable<KeyValuePair<object?, object?>>.GetEnumerator() => _entries.GetEnumerator();
    public IDictionaryEnumerator GetEnumerator() => new Enumerator(_entries);
    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    // IDictionary (non-generic) so PowerShell formats it as a dictionary and `$d.key` works.
    bool IDictionary.IsFixedSize => false;
    bool IDictionary.IsReadOnly => false;
    ICollection IDictionary.Keys => _entries.Select(e => e.Key).ToList();
    ICollection IDictionary.Values => _entries.Select(e => e.Value).ToList();
    bool ICollection.IsSynchronized => false;
    object ICollection.SyncRoot => this;
    void IDictionary.Add(object key, object? value)
    {
        if (ContainsKey(key)) throw new ArgumentException("An item with the same key has already been added.");
        Set(key, value);
    }
    void IDictionary.Clear() { _entries.Clear(); _index.Clear(); }
    bool IDictionary.Contains(object key) => ContainsKey(key);
    void IDictionary.Remove(object key)
    {
        if (!_index.Remove(new KeyBox(key), out var i)) return;
        _entries.RemoveAt(i);
        for (var j = i; j < _entries.Count; j++) _index[new KeyBox(_entries[j].Key)] = j;
    }
    void ICollection.CopyTo(Array array, int index)
    {
        foreach (var e in _entries) array.SetValue(new DictionaryEntry(e.Key!, e.Value), index++);
    }

    public override string ToString() => $"{PythonType} ({Count} items)";

    // A struct key with its own comparer: null keys allowed, Python equality, and no boxing per lookup.
    private readonly struct KeyBox(object? key)
    {
        public readonly object? Key = key;
        public static readonly IEqualityComparer<KeyBox> Comparer = new BoxComparer();
        private sealed class BoxComparer : IEqualityComparer<KeyBox>
        {
            public bool Equals(KeyBox x, KeyBox y) => PyKeyComparer.Instance.Equals(x.Key, y.Key);
            public int GetHashCode(KeyBox obj) => PyKeyComparer.Instance.GetHashCode(obj.Key);
        }
    }

    private sealed class Enumerator(List<KeyValuePair<object?, object?>> entries) : IDictionaryEnumerator
    {
        private int _i = -1;
        public DictionaryEntry Entry => new(entries[_i].Key!, entries[_i].Value);
        public object Key => entries[_i].Key!;
        public object? Value => entries[_i].Value;
        public object Current => Entry;
        public bool MoveNext() => ++_i < entries.Count;
        public void Reset() => _i = -1;
    }
}

using System.Collections;

namespace TorchLoad.Core.Pickle;

/// <summary>
/// A Python dict, OrderedDict or Counter: insertion order, keys of their own types (null, integers,
/// tuples as <c>object[]</c>) compared with Python's equality. <see cref="Attributes"/> holds what a
/// <c>BUILD</c> set on an OrderedDict (a state_dict's <c>_metadata</c>).
/// </summary>
/// <remarks>
/// Its own insertion-ordered hash table (entries in order, chained through bucket heads) rather than a
/// Dictionary beside a List: one array per dict instead of three, and code that is precompiled with
/// TorchLoad (a framework Dictionary over a TorchLoad key type is not, and ran unoptimized through every
/// state dict of a one-shot load).
/// </remarks>
public sealed class PyDict : IDictionary, IEnumerable<KeyValuePair<object?, object?>>
{
    private struct Entry
    {
        public object? Key;
        public object? Value;
        public int Hash;
        public int Next; // index + 1 of the next entry in this bucket, 0 at the end
    }

    // Created on first insert: a checkpoint has thousands of empty OrderedDicts (backward hooks).
    private Entry[]? _entries;
    private int[]? _buckets; // index + 1 of the first entry of each bucket; length is a power of two
    private int _count;

    public PyDict(string pythonType = "dict") => PythonType = pythonType;

    /// <summary><c>dict</c>, <c>collections.OrderedDict</c> or <c>collections.Counter</c>.</summary>
    public string PythonType { get; }

    /// <summary>Instance attributes set by BUILD (OrderedDict's <c>_metadata</c>); null when none.</summary>
    public PyDict? Attributes { get; internal set; }

    public int Count => _count;

    public object? this[object? key]
    {
        get => TryGetValue(key, out var v) ? v : null;
        set => Set(key, value);
    }

    public bool TryGetValue(object? key, out object? value)
    {
        var i = Find(key, Hash(key));
        value = i >= 0 ? _entries![i].Value : null;
        return i >= 0;
    }

    /// <summary>Python assignment: an existing key keeps its position and first key object.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Set(object? key, object? value)
    {
        var hash = Hash(key);
        var i = Find(key, hash);
        if (i >= 0) { _entries![i].Value = value; return; }
        if (_entries is null || _count == _entries.Length) Grow();
        ref var e = ref _entries![_count];
        e.Key = key;
        e.Value = value;
        e.Hash = hash;
        ref var head = ref _buckets![hash & (_buckets.Length - 1)];
        e.Next = head;
        head = ++_count;
    }

    public bool ContainsKey(object? key) => Find(key, Hash(key)) >= 0;

    /// <summary>The key and value at a position of the insertion order (walkers read a dict without an enumerator).</summary>
    internal object? KeyAt(int index) => (uint)index < (uint)_count ? _entries![index].Key : throw new ArgumentOutOfRangeException(nameof(index));
    internal object? ValueAt(int index) => (uint)index < (uint)_count ? _entries![index].Value : throw new ArgumentOutOfRangeException(nameof(index));
    public IEnumerable<object?> KeyList => Pairs().Select(e => e.Key);
    public IEnumerable<object?> ValueList => Pairs().Select(e => e.Value);

    private static int Hash(object? key)
    {
        var h = PyKeyComparer.Instance.GetHashCode(key);
        return h ^ (h >>> 16); // bucket index takes the low bits
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private int Find(object? key, int hash)
    {
        if (_buckets is null) return -1;
        var entries = _entries!;
        for (var i = _buckets[hash & (_buckets.Length - 1)] - 1; i >= 0; i = entries[i].Next - 1)
        {
            if (entries[i].Hash == hash && PyKeyComparer.Instance.Equals(entries[i].Key, key)) return i;
        }
        return -1;
    }

    private void Grow() => Resize(_entries is null ? 4 : checked(_entries.Length * 2));

    /// <summary>Room for <paramref name="count"/> entries at once (SETITEMS knows how many it sets: no growing 4, 8, 16).</summary>
    internal void EnsureCapacity(int count)
    {
        if (count > (_entries?.Length ?? 0)) Resize((int)Math.Min(System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Math.Max(count, 4)), Array.MaxLength));
    }

    private void Resize(int size)
    {
        var entries = new Entry[size]; // not Array.Resize<Entry>: a generic over this struct is compiled at run time, in every process's first load
        if (_entries is not null) Array.Copy(_entries, entries, _count);
        _entries = entries;
        Rehash();
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Rehash()
    {
        var buckets = _buckets is { } b && b.Length == _entries!.Length ? b : new int[_entries!.Length];
        Array.Clear(buckets);
        for (var i = 0; i < _count; i++)
        {
            ref var head = ref buckets[_entries[i].Hash & (buckets.Length - 1)];
            _entries[i].Next = head;
            head = i + 1;
        }
        _buckets = buckets;
    }

    private IEnumerable<KeyValuePair<object?, object?>> Pairs()
    {
        for (var i = 0; i < _count; i++) yield return new(_entries![i].Key, _entries[i].Value);
    }

    IEnumerator<KeyValuePair<object?, object?>> IEnumerable<KeyValuePair<object?, object?>>.GetEnumerator() => Pairs().GetEnumerator();
    public IDictionaryEnumerator GetEnumerator() => new Enumerator(this);
    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    // IDictionary (non-generic) so PowerShell formats it as a dictionary and `$d.key` works.
    bool IDictionary.IsFixedSize => false;
    bool IDictionary.IsReadOnly => false;
    ICollection IDictionary.Keys => KeyList.ToList();
    ICollection IDictionary.Values => ValueList.ToList();
    bool ICollection.IsSynchronized => false;
    object ICollection.SyncRoot => this;
    void IDictionary.Add(object key, object? value)
    {
        if (ContainsKey(key)) throw new ArgumentException("An item with the same key has already been added.");
        Set(key, value);
    }
    void IDictionary.Clear()
    {
        if (_entries is not null) Array.Clear(_entries);
        if (_buckets is not null) Array.Clear(_buckets);
        _count = 0;
    }
    bool IDictionary.Contains(object key) => ContainsKey(key);
    void IDictionary.Remove(object key)
    {
        var i = Find(key, Hash(key));
        if (i < 0) return;
        Array.Copy(_entries!, i + 1, _entries!, i, _count - i - 1); // keep insertion order
        _entries![--_count] = default;
        Rehash();
    }
    void ICollection.CopyTo(Array array, int index)
    {
        for (var i = 0; i < _count; i++) array.SetValue(new DictionaryEntry(_entries![i].Key!, _entries[i].Value), index++);
    }

    public override string ToString() => $"{PythonType} ({Count} items)";

    private sealed class Enumerator(PyDict dict) : IDictionaryEnumerator
    {
        private int _i = -1;
        public DictionaryEntry Entry => new(dict._entries![_i].Key!, dict._entries[_i].Value);
        public object Key => dict._entries![_i].Key!;
        public object? Value => dict._entries![_i].Value;
        public object Current => Entry;
        public bool MoveNext() => ++_i < dict._count;
        public void Reset() => _i = -1;
    }
}

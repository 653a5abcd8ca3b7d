using System.Numerics;
using System.Text;
using System.Text.Json;
using TorchLoad.Core.Pickle;

namespace TorchLoad.Core.Dcp;

/// <summary>
/// Export-TorchSafetensors' policy for a DCP folder's non-tensor (bytes) entries: safetensors holds tensors
/// and a string-to-string <c>__metadata__</c>, so each entry JSON can hold goes there under its dotted name
/// (a str as itself, anything else as JSON text); the rest are left out and named to the caller.
/// </summary>
public static class DcpExport
{
    public static Dictionary<string, string> NonTensorMetadata(TorchCheckpoint checkpoint, out List<string> leftOut)
    {
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        leftOut = [];
        foreach (var (name, value) in checkpoint.DcpBytesValues ?? [])
        {
            if (value is string s) { metadata[name] = s; continue; }
            using var buffer = new MemoryStream();
            using (var json = new Utf8JsonWriter(buffer))
            {
                if (!TryWrite(json, value, depth: 0)) { leftOut.Add(name); continue; }
            }
            metadata[name] = Encoding.UTF8.GetString(buffer.ToArray());
        }
        return metadata;
    }

    private static bool TryWrite(Utf8JsonWriter json, object? v, int depth)
    {
        if (depth > 64) return false;
        switch (v)
        {
            case null: json.WriteNullValue(); return true;
            case bool b: json.WriteBooleanValue(b); return true;
            case long l: json.WriteNumberValue(l); return true;
            case BigInteger bi: json.WriteRawValue(bi.ToString(System.Globalization.CultureInfo.InvariantCulture)); return true;
            case double d when double.IsFinite(d): json.WriteNumberValue(d); return true;
            case string s: json.WriteStringValue(s); return true;
            case long[] longs:
                json.WriteStartArray();
                foreach (var x in longs) json.WriteNumberValue(x);
                json.WriteEndArray();
                return true;
            case object?[] or List<object?>:
                json.WriteStartArray();
                foreach (var x in v as IEnumerable<object?> ?? []) if (!TryWrite(json, x, depth + 1)) return false;
                json.WriteEndArray();
                return true;
            case PyDict d:
                json.WriteStartObject();
                foreach (var kv in (IEnumerable<KeyValuePair<object?, object?>>)d)
                {
                    if (kv.Key is not string key) return false;
                    json.WritePropertyName(key);
                    if (!TryWrite(json, kv.Value, depth + 1)) return false;
                }
                json.WriteEndObject();
                return true;
            default: return false; // bytes, dtypes, tensors, inert objects, NaN/inf: JSON has no such value
        }
    }
}

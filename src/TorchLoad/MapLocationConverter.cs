using System.Collections;
using System.Management.Automation;
using TorchLoad.Core.Devices;
using TorchLoad.Core.Tensors;

namespace TorchLoad.Commands;

/// <summary>-MapLocation's PowerShell forms to Core's: a device string or torch.device, a hashtable of tags, or a scriptblock.</summary>
internal static class MapLocationConverter
{
    public static MapLocation? Convert(object? value)
    {
        var v = value is PSObject pso ? pso.BaseObject : value;
        switch (v)
        {
            case null:
                return null;
            case string s:
                return MapLocation.ToDevice(CheckDevice(s));
            case TorchDevice d:
                return MapLocation.ToDevice(d.ToString());
            case IDictionary table:
                var tags = new Dictionary<string, string>(StringComparer.Ordinal);
                foreach (DictionaryEntry e in table)
                {
                    var from = Unwrap(e.Key)?.ToString();
                    var to = Unwrap(e.Value) switch { TorchDevice td => td.ToString(), var o => o?.ToString() };
                    if (string.IsNullOrEmpty(from) || string.IsNullOrEmpty(to))
                        throw new ArgumentException("-MapLocation hashtable entries must map a saved tag to a device, e.g. @{ 'cuda:1' = 'cuda:0' }.");
                    tags[from] = CheckDevice(to);
                }
                return MapLocation.Remap(tags);
            case ScriptBlock block:
                return MapLocation.Callback((storage, location) =>
                {
                    var result = block.Invoke(storage, location);
                    var first = result.Count == 0 ? null : Unwrap(result[result.Count - 1]);
                    return first switch
                    {
                        null => null,
                        TorchStorage ts => ts,
                        _ => throw new ArgumentException($"The -MapLocation scriptblock must return a storage or $null, not {first.GetType().Name}."),
                    };
                });
            default:
                throw new ArgumentException($"-MapLocation takes a device string ('cpu', 'cuda:1'), a hashtable of saved tags to devices, or a scriptblock {{ param($storage, $location) ... }}; not a {v.GetType().Name}.");
        }
    }

    private static object? Unwrap(object? o) => o is PSObject p ? p.BaseObject : o;

    private static string CheckDevice(string s) =>
        TorchDevice.TryParse(s.Trim(), out var d) ? d.ToString() : throw new ArgumentException($"'{s}' is not a device: use 'cpu', 'cuda', 'cuda:N' or another device type.");
}

using System.Text;

namespace TorchLoad.Core.Pickle;

/// <summary>
/// UTF-8 that also admits encoded lone surrogates (ED A0..BF xx), as Python's <c>surrogatepass</c>
/// error handler does when torch unpickles strings. Returns null for anything else that is invalid.
/// </summary>
internal static class Wtf8
{
    public static string? Decode(ReadOnlySpan<byte> bytes)
    {
        var sb = new StringBuilder(bytes.Length);
        var i = 0;
        while (i < bytes.Length)
        {
            var b = bytes[i];
            int cp, need;
            if (b < 0x80) { sb.Append((char)b); i++; continue; }
            if ((b & 0xE0) == 0xC0) { cp = b & 0x1F; need = 1; }
            else if ((b & 0xF0) == 0xE0) { cp = b & 0x0F; need = 2; }
            else if ((b & 0xF8) == 0xF0) { cp = b & 0x07; need = 3; }
            else return null;
            if (i + need >= bytes.Length) return null;
            for (var k = 1; k <= need; k++)
            {
                var c = bytes[i + k];
                if ((c & 0xC0) != 0x80) return null;
                cp = (cp << 6) | (c & 0x3F);
            }
            var min = need switch { 1 => 0x80, 2 => 0x800, _ => 0x10000 };
            if (cp < min || cp > 0x10FFFF) return null; // overlong or out of range
            if (cp >= 0x10000) sb.Append(char.ConvertFromUtf32(cp));
            else sb.Append((char)cp); // includes lone surrogates D800-DFFF
            i += need + 1;
        }
        return sb.ToString();
    }
}

using System.Collections;
using System.Management.Automation;
using System.Management.Automation.Language;
using TorchLoad.Core.Devices;
using TorchLoad.Core.Pickle;

namespace TorchLoad.Commands;

/// <summary>Tab completion of device names (-MapLocation, -Device) from the devices present.</summary>
public sealed class DeviceCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        var prefix = wordToComplete.Trim('\'', '"');
        return DeviceRegistry.List().Where(d => d.Name.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
            .Select(d => new CompletionResult($"'{d.Name}'", d.Name, CompletionResultType.ParameterValue, d.Description));
    }
}

/// <summary>Tab completion of safe-global names: the user's, then common ones people allow.</summary>
public sealed class SafeGlobalCompleter : IArgumentCompleter
{
    private static readonly string[] Common =
    [
        "numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct", "numpy.ndarray", "numpy.dtype",
        "numpy.core.multiarray.scalar", "builtins.frozenset", "builtins.slice", "builtins.range", "argparse.Namespace",
    ];

    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        var prefix = wordToComplete.Trim('\'', '"');
        return SafeGlobalRegistry.Get().Concat(Common).Distinct()
            .Where(n => n.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
            .Select(n => new CompletionResult($"'{n}'", n, CompletionResultType.ParameterValue, n));
    }
}

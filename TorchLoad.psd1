# Module manifest for TorchLoad. build.ps1 copies it next to TorchLoad.dll in ./module (the module
# base, where PowerShell looks for en-US/TorchLoad.dll-Help.xml). ModuleVersion must equal
# <ModuleVersion> in Directory.Build.props; the build checks that.
@{
    RootModule           = 'TorchLoad.dll'
    ModuleVersion        = '0.1.0'
    GUID                 = '688e78c0-247c-4148-afdb-b4c340e5f9cf'
    Author               = 'TorchLoad contributors'
    CompanyName          = 'TorchLoad contributors'
    Copyright            = '(c) TorchLoad contributors. All rights reserved.'
    Description          = 'Reads PyTorch checkpoints (zip, legacy and tar formats, every pickle protocol) in pure C#, like torch.load. Safe by default: only the weights_only allowlist of globals is honoured, and nothing in a checkpoint is ever executed. Tensors are objects with DType, Shape, Stride, Storage, ToByteArray() and ToArray(); storages can be mapped or moved to ILGPU devices.'
    PowerShellVersion    = '7.4'
    CompatiblePSEditions = @('Core')

    # build.ps1 stages src/TorchLoad/TorchLoad.format.ps1xml next to this file.
    FormatsToProcess     = @('TorchLoad.format.ps1xml')

    CmdletsToExport      = @(
        'Import-TorchCheckpoint'
        'Get-TorchStorage'
        'Move-TorchStorage'
        'Register-TorchLocationHandler'
        'Get-TorchLocationHandler'
        'Reset-TorchLocationHandler'
        'Add-TorchSafeGlobal'
        'Get-TorchSafeGlobal'
        'Clear-TorchSafeGlobal'
        'Get-TorchDevice'
        'Get-TorchTensor'
        'Test-TorchCheckpoint'
        'Measure-TorchTensor'
        'Compare-TorchCheckpoint'
        'Export-TorchSafetensors'
    )
    FunctionsToExport    = @()
    AliasesToExport      = @()
    VariablesToExport    = @()

    PrivateData          = @{
        PSData = @{
            Tags         = @('PyTorch', 'torch', 'checkpoint', 'pickle', 'tensor', 'ILGPU', 'CUDA', 'MachineLearning', 'PSEdition_Core', 'Linux', 'Windows', 'MacOS')
            ReleaseNotes = 'First release: Import-TorchCheckpoint, Get-TorchStorage, Move-TorchStorage, the safe-global cmdlets and Get-TorchDevice.'
        }
    }
}

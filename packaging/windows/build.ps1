# Build the Windows bundle and installer of Qwen3-TTS Studio (run on Windows, from any folder):
#
#   powershell -ExecutionPolicy Bypass -File packaging\windows\build.ps1 [-Torch cpu|cuda]
#
# Same recipe as packaging/build.sh on Linux: a clean venv, torch of the chosen variant (set
# $env:TORCH_REQUIREMENT to pick the wheel; the CPU variant needs PyTorch's CPU-only wheel), the
# studio, PyInstaller with packaging\qwen-tts-studio.spec, build-info.json, then Inno Setup
# (iscc.exe on PATH) with packaging\windows\qwen-tts-studio.iss. Not run by this project's CI,
# which has no Windows machine.
param([ValidateSet("cpu", "cuda")][string]$Torch = "cpu")
$ErrorActionPreference = "Stop"
$root = Resolve-Path "$PSScriptRoot\..\.."
Set-Location $root

$venv = "build\venv-$Torch"
if (Test-Path $venv) { Remove-Item -Recurse -Force $venv }
py -3.11 -m venv $venv
$py = "$venv\Scripts\python.exe"
& $py -m pip install --quiet --upgrade pip
$torchReq = if ($env:TORCH_REQUIREMENT) { $env:TORCH_REQUIREMENT } else { "torch" }
& $py -m pip install --quiet $torchReq
& $py -m pip install --quiet . -r packaging\requirements-build.txt pillow
$cuda = & $py -c "import torch; print(torch.version.cuda or '')"
if ($Torch -eq "cpu" -and $cuda) { throw "torch in $venv is a CUDA build; set TORCH_REQUIREMENT to a CPU-only wheel" }
if ($Torch -eq "cuda" -and -not $cuda) { throw "torch in $venv is CPU-only; set TORCH_REQUIREMENT to a CUDA wheel" }

$version = & $py -c "import sys; sys.path.insert(0, '.'); import studio; print(studio.__version__)"
& $py -m PyInstaller --noconfirm --log-level WARN --distpath "dist\$Torch" --workpath "build\pyinstaller-$Torch" packaging\qwen-tts-studio.spec
$bundle = "dist\$Torch\qwen-tts-studio"
$commit = (git rev-parse HEAD 2>$null)
@{ name = "qwen-tts-studio"; version = $version; variant = $Torch; git_commit = $commit;
   built_at = (Get-Date).ToUniversalTime().ToString("s") + "+00:00"; platform = "windows-x86_64" } |
    ConvertTo-Json | Set-Content -Encoding utf8 "$bundle\build-info.json"

& "$bundle\qwen-tts-studio-cli.exe" --self-test
if ($LASTEXITCODE -ne 0) { throw "the bundle's self-test failed" }

# The installer icon: Pillow turns the PNG into a multi-size .ico.
& $py -c "from PIL import Image; Image.open('resources/icons/qwen-tts-studio.png').save('packaging/windows/qwen-tts-studio.ico', sizes=[(16,16),(32,32),(48,48),(64,64),(128,128),(256,256)])"
if (Get-Command iscc.exe -ErrorAction SilentlyContinue) {
    iscc.exe /DVersion=$version /DVariant=$Torch packaging\windows\qwen-tts-studio.iss
} else {
    Write-Warning "iscc.exe (Inno Setup 6) is not on PATH: the bundle is in $bundle, no installer was made"
}

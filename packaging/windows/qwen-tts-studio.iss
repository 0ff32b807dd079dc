; Inno Setup script for the Windows build of Qwen3-TTS Studio.
;
; Built on Windows only (it cannot be built on the Linux machines the studio is developed on):
;   1. powershell -File packaging\windows\build.ps1 [-Torch cpu|cuda]
;      makes a clean venv, runs PyInstaller with packaging\qwen-tts-studio.spec and writes
;      dist\<variant>\qwen-tts-studio\ (qwen-tts-studio.exe, qwen-tts-studio-cli.exe, build-info.json)
;   2. iscc /DVersion=<version> /DVariant=<variant> packaging\windows\qwen-tts-studio.iss
;      (build.ps1 runs this for you when iscc.exe is on PATH) and writes dist\qwen-tts-studio-<version>-windows-<variant>-setup.exe
;
; Installs per user by default (no administrator rights needed); models and voices live in the
; user's data folder, so an uninstall or upgrade never removes them.

#ifndef Version
  #error Pass the version: iscc /DVersion=0.1.0 /DVariant=cpu qwen-tts-studio.iss
#endif
#ifndef Variant
  #define Variant "cpu"
#endif
#define AppName "Qwen3-TTS Studio"
#define AppExe "qwen-tts-studio.exe"
#define SourceDir "..\..\dist\" + Variant + "\qwen-tts-studio"

[Setup]
; A fixed AppId makes a newer installer upgrade the installed copy in place.
AppId={{6B0F3E7A-93C1-4C7B-9E54-2D7A1E5C8B31}
AppName={#AppName}
AppVersion={#Version}
AppPublisher=Qwen3-TTS Studio developers
DefaultDirName={autopf}\Qwen3-TTS Studio
DefaultGroupName={#AppName}
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir=..\..\dist
OutputBaseFilename=qwen-tts-studio-{#Version}-windows-{#Variant}-setup
SetupIconFile=qwen-tts-studio.ico
UninstallDisplayIcon={app}\{#AppExe}
Compression=lzma2/max
SolidCompression=yes
; torch alone is several thousand files; a disk-spanning or one-file layout would not help here.
DiskSpanning=no
WizardStyle=modern
ChangesAssociations=yes

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked
Name: "associate"; Description: "Open .qtts projects with {#AppName}"; GroupDescription: "File types:"

[Files]
Source: "{#SourceDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\{#AppName}"; Filename: "{app}\{#AppExe}"
Name: "{group}\{#AppName} self-test"; Filename: "{cmd}"; Parameters: "/k ""{app}\qwen-tts-studio-cli.exe"" --self-test"
Name: "{group}\{cm:UninstallProgram,{#AppName}}"; Filename: "{uninstallexe}"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\{#AppExe}"; Tasks: desktopicon

[Registry]
Root: HKA; Subkey: "Software\Classes\.qtts"; ValueType: string; ValueName: ""; ValueData: "QwenTTSStudio.Project"; Flags: uninsdeletevalue; Tasks: associate
Root: HKA; Subkey: "Software\Classes\QwenTTSStudio.Project"; ValueType: string; ValueName: ""; ValueData: "Qwen3-TTS Studio project"; Flags: uninsdeletekey; Tasks: associate
Root: HKA; Subkey: "Software\Classes\QwenTTSStudio.Project\DefaultIcon"; ValueType: string; ValueName: ""; ValueData: "{app}\{#AppExe},0"; Tasks: associate
Root: HKA; Subkey: "Software\Classes\QwenTTSStudio.Project\shell\open\command"; ValueType: string; ValueName: ""; ValueData: """{app}\{#AppExe}"" ""%1"""; Tasks: associate

[Run]
Filename: "{app}\{#AppExe}"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent

"""`qwen-tts-studio voices ...`: the voice library without the window (list, add, remove, export, import).

A voice names the checkpoint it renders with (--model) or leaves it automatic; a model given here is
checked now, from its config.json, so a wrong type or an unknown speaker is one line and exit 2 instead
of a failed render later.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from studio.cli.errors import EXIT_OK, CliError

_PROG = "qwen-tts-studio voices"


def add_voices_parser(commands) -> argparse.ArgumentParser:
    voices = commands.add_parser(
        "voices", prog=_PROG, help="list, add, remove, export or import voice profiles",
        description="With no ACTION, lists the voice library.",
    )
    voices.set_defaults(handler=_cmd_list, json=False)
    actions = voices.add_subparsers(dest="voices_action", metavar="ACTION")

    listing = actions.add_parser("list", prog=f"{_PROG} list", help="every profile: name, kind, model, id")
    listing.add_argument("--json", action="store_true", help="print the list as JSON")
    listing.set_defaults(handler=_cmd_list)

    add = actions.add_parser("add", prog=f"{_PROG} add", help="add a designed, cloned or preset voice")
    add.add_argument("name", metavar="NAME")
    how = add.add_mutually_exclusive_group(required=True)
    how.add_argument("--design", metavar="TEXT", help="describe the voice (renders with a VoiceDesign model)")
    how.add_argument("--clone", metavar="WAV", help="a reference clip of the voice (renders with a Base model)")
    how.add_argument("--speaker", metavar="NAME", help="a preset or fine-tuned speaker (a CustomVoice model)")
    add.add_argument("--ref-text", metavar="TEXT", help="transcript of the --clone clip")
    add.add_argument("--x-vector-only", action="store_true", help="clone from the speaker embedding alone")
    add.add_argument("--model", metavar="MODEL",
                     help="checkpoint folder or hub id it renders with (default: automatic, the best installed "
                          "model of the right type)")
    add.add_argument("--seed", type=int, help="pin a seed: this voice renders with it whatever the project seed")
    add.set_defaults(handler=_cmd_add)

    remove = actions.add_parser("remove", prog=f"{_PROG} remove", help="delete a profile from the library")
    remove.add_argument("name", metavar="NAME", help="profile name or id")
    remove.set_defaults(handler=_cmd_remove)

    export = actions.add_parser("export", prog=f"{_PROG} export", help="write a profile as one .qvoice file")
    export.add_argument("name", metavar="NAME", help="profile name or id")
    export.add_argument("file", metavar="FILE", help="the .qvoice file to write (never replaced)")
    export.set_defaults(handler=_cmd_export)

    imported = actions.add_parser("import", prog=f"{_PROG} import", help="add a profile from a .qvoice file")
    imported.add_argument("file", metavar="FILE")
    imported.set_defaults(handler=_cmd_import)
    return voices


def _library():
    from studio.core.voice_library import default_voice_library

    return default_voice_library()


def _profile(library, name: str):
    from studio.core.voice_library import VoiceLibraryError

    try:
        return library.get(name)
    except VoiceLibraryError as exc:
        raise CliError(f"{_PROG}: {exc}") from None


def _model_text(voice) -> str:
    return voice.model or "automatic"


def _cmd_list(args: argparse.Namespace) -> int:
    profiles = _library().profiles()
    if args.json:
        json.dump([{"id": p.id, "name": p.name, "kind": p.kind_label, "model": p.voice.model,
                    "describe": p.voice.describe(), "seed": p.seed} for p in profiles],
                  sys.stdout, ensure_ascii=False, indent=1)
        sys.stdout.write("\n")
        return EXIT_OK
    if not profiles:
        print("no voice profiles yet: add one with `qwen-tts-studio voices add NAME --design TEXT`")
        return EXIT_OK
    rows = [("NAME", "KIND", "MODEL", "ID")] + [(p.name, p.kind_label, _model_text(p.voice), p.id) for p in profiles]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[3])
    return EXIT_OK


def check_voice_model(voice, model: str, *, option: str = "--model") -> None:
    """A model named for a voice must be on this machine, of the voice's type, and know its speaker."""
    from studio.session.checkpoints import MODEL_TYPE_LABELS, describe_source

    checkpoint = describe_source(model)
    if checkpoint is None:
        raise CliError(f"{model}: no such model on this machine ({option}); see `qwen-tts-studio models list`")
    wanted = MODEL_TYPE_LABELS[voice.model_type]
    if checkpoint.model_type != voice.model_type:
        found = MODEL_TYPE_LABELS.get(checkpoint.model_type or "", checkpoint.model_type or "unknown")
        kind = {"design": "designed", "preset": "preset", "clone": "cloned"}[voice.kind]
        raise CliError(f"{model}: a {found} model, but a {kind} voice needs a {wanted} model ({option})")
    if voice.kind == "preset" and voice.speaker.lower() not in checkpoint.speakers:
        raise CliError(f"{model}: has no speaker {voice.speaker!r} (it has: {', '.join(checkpoint.speakers)}) "
                       f"({option})")


def _cmd_add(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from studio.core.voice import VoiceError, VoiceSpec
    from studio.core.voice_library import VoiceLibraryError

    library = _library()
    if any(p.name.lower() == args.name.strip().lower() for p in library.profiles()):
        raise CliError(f"{_PROG} add: a voice named {args.name!r} exists already; remove it first or choose "
                       "another name")
    try:
        if args.design is not None:
            voice = VoiceSpec.design(args.design)
        elif args.speaker is not None:
            voice = VoiceSpec.preset(args.speaker)
        else:
            clip = Path(args.clone)
            if not clip.is_file():
                raise CliError(f"{clip}: no such reference clip (--clone)")
            voice = VoiceSpec.clone(clip, args.ref_text, x_vector_only=args.x_vector_only)
    except VoiceError as exc:
        raise CliError(f"{_PROG} add: {exc}") from None
    if args.model:
        check_voice_model(voice, args.model)
        voice = replace(voice, model=args.model)
    if args.seed is not None and args.seed < 0:
        raise CliError(f"{_PROG} add: --seed {args.seed}: expected a number of 0 or more")
    try:
        profile = library.add(args.name, voice, seed=args.seed)
    except VoiceLibraryError as exc:
        raise CliError(f"{_PROG} add: {exc}") from None
    for warning in profile.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"added {profile.name} ({profile.kind_label}, model: {_model_text(profile.voice)}, id {profile.id})")
    return EXIT_OK


def _cmd_remove(args: argparse.Namespace) -> int:
    library = _library()
    profile = _profile(library, args.name)
    library.delete(profile.id)
    print(f"removed {profile.name} ({profile.id})")
    return EXIT_OK


def _cmd_export(args: argparse.Namespace) -> int:
    from studio.core.voice_library import VoiceLibraryError

    library = _library()
    profile = _profile(library, args.name)
    try:
        written = library.export(profile.id, Path(args.file))
    except VoiceLibraryError as exc:
        raise CliError(str(exc)) from None
    print(f"wrote {written}")
    return EXIT_OK


def _cmd_import(args: argparse.Namespace) -> int:
    from studio.core.voice_library import VoiceLibraryError

    path = Path(args.file)
    if not path.is_file():
        raise CliError(f"{path}: no such file")
    try:
        profile = _library().import_file(path)
    except VoiceLibraryError as exc:
        raise CliError(str(exc)) from None
    print(f"imported {profile.name} ({profile.kind_label}, model: {_model_text(profile.voice)}, id {profile.id})")
    return EXIT_OK

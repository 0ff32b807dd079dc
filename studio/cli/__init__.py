"""`python -m studio` / `qwen-tts-studio`: the GUI, and subcommands for scripting and checks.

One module per command group (script: parse and check; render; voices; models); `main` parses the
command line and turns every CliError into one line on stderr with exit code 2.
"""

from studio.cli.main import main

__all__ = ["main"]

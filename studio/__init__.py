"""Qwen3-TTS Studio: a desktop editor for long-form expressive speech."""

__version__ = "0.1.0"

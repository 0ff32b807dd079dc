"""The tiny checkpoints' text tokenizer: a small byte-level BPE written as the slow Qwen2 tokenizer files
the published folders hold (vocab.json, merges.txt, tokenizer_config.json), with the published special
tokens' names. Used by studio.engine.tiny.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

# Text special tokens, in the order they are appended after the byte-level BPE vocabulary. The
# names are the ones the published tokenizer uses; the ids follow from this order.
TEXT_SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<tts_pad>",
    "<tts_text_bos>",
    "<tts_text_eod>",
    "<tts_text_bos_single>",
)

# Words that become single tokens. The role words must: the package slices the prompt
# "<|im_start|>assistant\n{text}<|im_end|>\n<|im_start|>assistant\n" by token position
# ([:3] role prefix, [3:-5] text), which only works when "assistant" is one token. They come first
# so that no later merge can break their merge chains.
_ROLE_WORDS = ("assistant", "user", "system")
_COMMON_WORDS = tuple(
    " " + word
    for word in (
        "the and to of a in is it you that this for with on was be are have I he she we they not but "
        "what all can there one so my hello world speech voice text test"
    ).split()
) + ("ing", "ed", "The", "Hello")


# ---------------------------------------------------------------------------------------------
# Text tokenizer
# ---------------------------------------------------------------------------------------------

# Qwen2's pre-tokenizer split: letters, single digits, punctuation runs and newlines stay apart,
# which is what keeps "\n" a token of its own after "assistant".
_QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def _byte_alphabet() -> list[str]:
    """The 256 printable stand-ins byte-level BPE uses for raw bytes, indexed by byte value."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    keep += list(range(ord("®"), ord("ÿ") + 1))
    table: dict[int, str] = {b: chr(b) for b in keep}
    shift = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + shift)
            shift += 1
    return [table[b] for b in range(256)]


# What the published folders hold of the text tokenizer: the slow (Python) Qwen2Tokenizer's files, which
# transformers converts to a fast tokenizer on every load. No tokenizer.json, no special_tokens_map.json:
# tokenizer_config.json carries the special tokens (added_tokens_decoder) itself.
TEXT_TOKENIZER_FILES = ("vocab.json", "merges.txt", "tokenizer_config.json")


def build_text_tokenizer(folder: Path) -> dict[str, int]:
    """Write the slow Qwen2 tokenizer files into ``folder``; return the special-token and role-word ids."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from transformers import Qwen2TokenizerFast

    alphabet = _byte_alphabet()
    vocab: dict[str, int] = {ch: i for i, ch in enumerate(alphabet)}
    merges: list[tuple[str, str]] = []
    for word in _ROLE_WORDS + _COMMON_WORDS:
        symbols = [alphabet[b] for b in word.encode("utf-8")]
        left = symbols[0]
        for right in symbols[1:]:
            merged = left + right
            if merged not in vocab:
                vocab[merged] = len(vocab)
                merges.append((left, right))
            left = merged

    backend = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False, byte_fallback=False))
    backend.normalizer = normalizers.NFC()
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_QWEN2_SPLIT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
        ]
    )
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in TEXT_SPECIAL_TOKENS])

    tokenizer = Qwen2TokenizerFast(
        tokenizer_object=backend,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        errors="replace",
        add_prefix_space=False,
        clean_up_tokenization_spaces=False,
        model_max_length=32768,
    )
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in (*TEXT_SPECIAL_TOKENS, "assistant")}

    # The package slices the prompt by position ([:3] role prefix, [3:-5] text); if the role
    # words or the newline split differently it would silently feed the wrong embeddings.
    probe = tokenizer("<|im_start|>assistant\nHi.<|im_end|>\n<|im_start|>assistant\n")["input_ids"]
    role = ["<|im_start|>", "assistant", "Ċ"]
    if tokenizer.convert_ids_to_tokens(probe[:3]) != role or tokenizer.convert_ids_to_tokens(probe[-5:]) != [
        "<|im_end|>",
        "Ċ",
        *role,
    ]:
        raise RuntimeError(f"tiny text tokenizer splits the chat prompt unexpectedly: {probe}")

    with tempfile.TemporaryDirectory() as scratch:
        # legacy_format: the slow tokenizer's files, as published, instead of tokenizer.json.
        tokenizer.save_pretrained(scratch, legacy_format=True)
        for name in TEXT_TOKENIZER_FILES:
            shutil.copyfile(Path(scratch) / name, folder / name)
    # What a user's transformers makes of these files is what the package will tokenise with: the
    # converted tokenizer must split the chat prompt exactly as the one built here.
    from transformers import AutoTokenizer

    reloaded = AutoTokenizer.from_pretrained(str(folder))
    text = "<|im_start|>assistant\nHello world, the test.<|im_end|>\n"
    if reloaded(text)["input_ids"] != tokenizer(text)["input_ids"]:
        raise RuntimeError("the slow tokenizer files do not reproduce the tiny text tokenizer")
    return ids

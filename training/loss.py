"""The fine-tuning loss: one batch through the talker and its code predictor.

The loss is the published recipe's: the talker's cross-entropy on the first codebook plus 0.3 times the
code predictor's cross-entropy on codebooks 2..16, on labels that training.data has already shifted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from training.data import IGNORE_INDEX

if TYPE_CHECKING:
    import torch

SUBTALKER_WEIGHT = 0.3  # the published recipe's weight of the code-predictor loss


def talker_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of already-aligned pairs: row i of `logits` is scored against `labels[i]`, no shift."""
    import torch.nn.functional as F  # noqa: N812

    return F.cross_entropy(logits.float(), labels, ignore_index=IGNORE_INDEX)


def code_predictor_loss(logits: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """`logits` (frames, G - 1, V): column j predicts codebook j + 1 of the frame in `codes` (frames, G)."""
    import torch.nn.functional as F  # noqa: N812

    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), codes[:, 1:].reshape(-1))


def sft_forward(
    talker: Any, batch: dict[str, torch.Tensor], speaker_embedding: torch.Tensor, *, keep_logits: bool = False
) -> dict[str, torch.Tensor]:
    """Losses (and, for tests, logits) of one batch through the talker and its code predictor."""
    import torch

    dtype = talker.get_input_embeddings().weight.dtype

    def mask(name: str) -> torch.Tensor:
        return batch[name].unsqueeze(-1).to(dtype)

    codec_table = talker.get_input_embeddings()
    cp_tables = talker.code_predictor.get_input_embeddings()
    groups = batch["frame_codes"].shape[-1]
    # generate() projects text embeddings before adding them; the published script once skipped the
    # projection (harmless only where text and talker widths happen to match).
    embeds = talker.text_projection(talker.get_text_embeddings()(batch["text_ids"])) * mask("text_mask")
    embeds = embeds + codec_table(batch["codec_ids"]) * mask("codec_mask")
    embeds = embeds + speaker_embedding.to(embeds.dtype).view(1, 1, -1) * mask("speaker_mask")
    frame_mask = mask("frame_mask")
    for i in range(1, groups):
        embeds = embeds + cp_tables[i - 1](batch["frame_codes"][..., i]) * frame_mask

    size, length = batch["text_ids"].shape
    positions = torch.arange(length, device=embeds.device).view(1, 1, length).expand(3, size, length)
    hidden = talker.model(
        inputs_embeds=embeds, attention_mask=batch["attention_mask"], position_ids=positions, use_cache=False
    ).last_hidden_state

    labelled = batch["labels"] != IGNORE_INDEX
    logits = talker.codec_head(hidden[labelled])
    labels = batch["labels"][labelled]
    main_loss = talker_loss(logits, labels)

    # The code predictor sees, per frame, the talker state that predicted the frame's first codebook,
    # then codebooks 1..G-1 of that frame, and predicts codebooks 2..G: generate()'s order exactly.
    codes = batch["target_codes"][batch["cp_mask"]]
    parts = [hidden[batch["cp_mask"]].unsqueeze(1), codec_table(codes[:, :1])]
    parts += [cp_tables[i - 1](codes[:, i : i + 1]) for i in range(1, groups - 1)]
    cp_logits = talker.code_predictor.forward_finetune(inputs_embeds=torch.cat(parts, dim=1), use_cache=False).logits
    cp_loss = code_predictor_loss(cp_logits, codes)

    out = {"loss": main_loss + SUBTALKER_WEIGHT * cp_loss, "talker_loss": main_loss, "code_predictor_loss": cp_loss}
    if keep_logits:
        out.update(talker_logits=logits, talker_labels=labels, cp_logits=cp_logits, cp_codes=codes)
    return out


def sft_module(talker: Any, speaker_embedding: torch.Tensor) -> torch.nn.Module:
    """The talker plus the fixed speaker embedding as one module, so DDP wraps what forward() runs."""
    import torch

    class TalkerSFT(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.talker = talker
            # Not persistent: it lives in speaker_embedding.safetensors, computed once per run.
            self.register_buffer("speaker_embedding", speaker_embedding.detach().clone(), persistent=False)

        def forward(self, batch: dict[str, torch.Tensor], keep_logits: bool = False) -> dict[str, torch.Tensor]:
            return sft_forward(self.talker, batch, self.speaker_embedding, keep_logits=keep_logits)

    return TalkerSFT()


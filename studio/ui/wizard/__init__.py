"""The fine-tune wizard: recordings -> validation -> settings -> prepare -> train -> register the voice."""

from studio.ui.wizard.finetune import FineTuneWizard
from studio.ui.wizard.runner import training_command

__all__ = ["FineTuneWizard", "training_command"]

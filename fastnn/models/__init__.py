"""Models: ``Sequential``."""
from fastnn.models.sequential import Sequential

__all__ = ["Sequential"]
from fastnn.saving.saving_api import load_model  # noqa: E402

__all__ += ["load_model"]

"""Models: ``Sequential``, and ``load_model`` (from ``fastnn.saving``)."""
from fastnn.models.sequential import Sequential
from fastnn.saving.saving_api import load_model

__all__ = ["Sequential", "load_model"]

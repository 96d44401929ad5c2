"""The whole schema: importing each layer's models registers its tables on the shared metadata."""

from __future__ import annotations

import importlib

from sqlalchemy import MetaData

from audiences.models import Base

# Layers whose models join the shared metadata; a layer without models yet is skipped.
MODEL_MODULES = ("audiences.models", "channels.models", "channels.survey_models", "journeys.models", "journeys.broadcast_models")


def target_metadata() -> MetaData:
    for name in MODEL_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
    return Base.metadata

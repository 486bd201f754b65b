"""What the addons' Rasa graph components share, so each module keeps only its own logic.

- ``ConfigDefaults``: a component's defaults are one class-level dict, and a component built
  directly (tests, ``bench/``) gets them merged under its config the way Rasa's graph does.
- ``ConfiguredGraphComponent``: a plain ``GraphComponent`` built from that config and the
  model storage Rasa hands to ``create``.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar, Dict, Optional

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage


class ConfigDefaults:
    """Mixin: ``get_default_config`` from the class's ``DEFAULTS``."""

    DEFAULTS: ClassVar[Dict[str, Any]] = {}

    @classmethod
    def get_default_config(cls) -> Dict[str, Any]:
        """A deep copy, so a caller changing a list in it cannot change the defaults."""
        return copy.deepcopy(cls.DEFAULTS)

    @classmethod
    def with_defaults(cls, config: Dict[str, Any]) -> Dict[str, Any]:
        """``config`` over the defaults: ``load`` and direct calls pass only some keys."""
        return {**cls.get_default_config(), **config}


class ConfiguredGraphComponent(ConfigDefaults, GraphComponent):
    """A graph component made of its config and, if it saves anything, its storage."""

    def __init__(
        self,
        config: Dict[str, Any],
        model_storage: Optional[ModelStorage] = None,
        resource: Optional[Resource] = None,
    ) -> None:
        self._config = self.with_defaults(config)
        self._model_storage = model_storage
        self._resource = resource

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> ConfiguredGraphComponent:
        """A new (untrained) component; Rasa's default ``load`` calls this too."""
        return cls(config, model_storage, resource)

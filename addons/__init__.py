"""Rasa plug-ins of this assistant: offline featurizer, URL-configured tracker and lock stores."""

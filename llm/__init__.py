"""Embedded OpenAI-compatible LLM service.

SmolLM2-135M-Instruct for chat and all-MiniLM-L6-v2 for embeddings, both from local packages.
"""

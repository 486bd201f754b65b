"""Shopper web chat page: a static page plus a tiny server (``python -m web``)."""

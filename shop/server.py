"""ASGI entry point for uvicorn workers (`shop.server:app`), configured from the environment."""

from shop.app import create_app

app = create_app()

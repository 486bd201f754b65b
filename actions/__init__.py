"""Custom actions of the shop assistant (rasa-sdk): `rasa run actions --actions actions`.

The SDK imports every module of this package and registers each Action subclass, so modules
here stay independent: shop_client (all HTTP to the shop), common (shared helpers), identity,
orders, catalog, handoff, fallback; llm/knowledge are the grounded-answer library.
"""

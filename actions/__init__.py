"""Custom actions of the shop assistant (rasa-sdk): `rasa run actions --actions actions`.

The SDK imports every module of this package and registers each concrete Action subclass.
The map (docs/architecture.md): shop_client + shop_records + shop_errors (all HTTP to the
shop, its answers as typed records), llm_client (the LLM service), text_parsing (reading the
shopper's text), wording (the text built from the shop's data), tracker_helpers (what every
action needs from Rasa); the actions: session (a new session ends the identification),
identity, orders, catalog, changes + change_actions + change_plans + turn_shop (every order
change), handoff, feedback, fallback; resolvers and
address_parsing turn words into shop values; knowledge, grounding and answer_checks ground
the LLM's free-form answers.
"""

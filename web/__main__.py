"""Entry point of ``python -m web`` (what ``make web`` runs)."""

from web.server import main

if __name__ == "__main__":
    main()

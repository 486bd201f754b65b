"""Create .env from .env.example with fresh random secrets (run once by `make install`)."""

import secrets
import sys
from pathlib import Path

SECRETS = ("SHOP_API_TOKEN", "RASA_AUTH_TOKEN", "ACTIONS_TOKEN", "WEB_SESSION_SECRET")


def main(example: str = ".env.example", target: str = ".env") -> None:
    if Path(target).exists():
        return
    lines = []
    for line in Path(example).read_text().splitlines():
        name = line.split("=", 1)[0]
        if name in SECRETS:
            # hex: a secret never starts with "-", which a command line would take for an option
            line = f"{name}={secrets.token_hex(24)}"
        lines.append(line)
    Path(target).write_text("\n".join(lines) + "\n")
    print(f"wrote {target} with new random secrets", file=sys.stderr)


if __name__ == "__main__":
    main(*sys.argv[1:])

"""Create .env from .env.example with fresh random secrets (run once by `make install`).

Secrets: the shop's bearer token, Rasa's API token, the action server's secret, the web page's
session secret, and AGENT_TOKEN, the password of the agent desk's shared account (agent id
``desk``), so a fresh `make run` has a desk login. Nothing secret is printed: the message says
where to find it. A value set in the shell still wins over .env (the Makefile reads it with ?=).
"""

import secrets
import sys
from pathlib import Path

SECRETS = ("SHOP_API_TOKEN", "RASA_AUTH_TOKEN", "ACTIONS_TOKEN", "WEB_SESSION_SECRET",
           "AGENT_TOKEN")


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
    print(f"wrote {target} with new random secrets; the agent desk's shared login is agent id "
          f"'desk' with the password AGENT_TOKEN in {target}", file=sys.stderr)


if __name__ == "__main__":
    main(*sys.argv[1:])

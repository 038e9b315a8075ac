"""Write the README's command table from the CLI's registry (between the commands markers).

python tools/readme_commands.py          # rewrite README.md
python tools/readme_commands.py --check  # exit 1 if README.md is out of date
"""

from __future__ import annotations

import sys
from pathlib import Path

from malaria_tui.cli.registry import markdown_table

START, END = "<!-- commands:start -->", "<!-- commands:end -->"
README = Path(__file__).resolve().parent.parent / "README.md"


def with_table(text: str) -> str:
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{markdown_table()}\n{END}{tail}"


def main(argv: list[str]) -> int:
    text = README.read_text()
    new = with_table(text)
    if "--check" in argv:
        if new != text:
            print("README.md's command table is out of date: python tools/readme_commands.py")
            return 1
        return 0
    README.write_text(new)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

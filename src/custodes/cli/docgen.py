"""Generate docs/cli.md from the command line's own help, so the docs cannot drift.

``python -m custodes.cli.docgen > docs/cli.md`` rewrites it; a test fails when it is stale.
"""

from __future__ import annotations

from typing import Any

import typer

INTRO = """# custodes command line

Generated from the commands' own help by `python -m custodes.cli.docgen > docs/cli.md`;
a test fails when this page and the CLI disagree. Errors print one line,
`error[code]: detail`, on standard error and exit with status 1 (2 for usage errors).
"""


# typer carries its own copy of click, so commands and parameters are read by duck typing.
def _walk(cmd: Any, path: list[str]) -> list[tuple[list[str], Any]]:
    out = [(path, cmd)]
    commands = getattr(cmd, "commands", None)
    if commands:
        for name in sorted(commands):
            out += _walk(commands[name], [*path, name])
    return out


def _params(cmd: Any) -> list[str]:
    lines = []
    for p in cmd.params:
        if p.param_type_name == "argument":
            help_text = " ".join((getattr(p, "help", None) or "").split())
            lines.append(f"- `{p.name.upper()}` (argument): {help_text}".rstrip(": "))
        elif p.param_type_name == "option":
            names = " / ".join(f"`{o}`" for o in [*p.opts, *p.secondary_opts])
            help_text = " ".join((p.help or "").split())
            default = ""
            if p.default is not None and not p.is_flag and p.show_default is not False:
                default = f" (default: `{p.default}`)"
            lines.append(f"- {names}: {help_text}{default}".rstrip())
    return lines


def cli_markdown(app: typer.Typer) -> str:
    root = typer.main.get_command(app)
    parts = [INTRO]
    for path, cmd in _walk(root, ["custodes"]):
        if len(path) == 1:
            continue
        parts.append(f"## `{' '.join(path)}`\n")
        help_text = (cmd.help or "").strip()
        if help_text:
            parts.append(help_text + "\n")
        params = _params(cmd)
        if params:
            parts.append("\n".join(params) + "\n")
    return "\n".join(parts)


def main() -> None:
    from custodes.cli import app
    from custodes.cli.output import console

    console.print(cli_markdown(app), end="", markup=False, highlight=False)


if __name__ == "__main__":
    main()

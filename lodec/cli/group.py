"""The ``lodec`` click group: every command of ``commands`` and ``run_commands``, registered once."""

from __future__ import annotations

from . import author_commands, commands, run_commands
from .commands import main

for _command in (*commands.COMMANDS, *run_commands.COMMANDS, author_commands.build):
    main.add_command(_command)

__all__ = ["main"]

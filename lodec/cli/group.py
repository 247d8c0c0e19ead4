"""The ``lodec`` click group: every command of ``commands`` and ``run_commands``, registered once."""

from __future__ import annotations

from . import commands, run_commands
from .commands import main

for _command in (*commands.COMMANDS, *run_commands.COMMANDS):
    main.add_command(_command)

__all__ = ["main"]

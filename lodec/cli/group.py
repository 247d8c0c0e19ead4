"""The ``lodec`` click group: every command of ``commands``, ``run_commands``, ``author_commands`` and
``dist_commands``, registered once."""

from __future__ import annotations

from . import author_commands, commands, dist_commands, run_commands
from .commands import main

for _command in (*commands.COMMANDS, *run_commands.COMMANDS, author_commands.build, *dist_commands.COMMANDS):
    main.add_command(_command)
run_commands.skill.add_command(author_commands.skill_init)

__all__ = ["main"]

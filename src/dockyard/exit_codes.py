"""Every exit code of the `dockyard` command, in one place.

Scripts may rely on these numbers; they only ever gain members.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    FAILURE = 1  # an error with no more specific code
    USAGE = 2  # the command line is wrong (argparse's own number)
    INVALID_PROJECT = 3  # the Compose project was refused by validation
    ENGINE_UNAVAILABLE = 4  # the container engine does not answer
    INTERRUPTED = 130  # Ctrl-C
    INTERNAL = 70  # a bug: an unexpected exception (EX_SOFTWARE)

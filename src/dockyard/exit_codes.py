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
    DEPLOYMENT_FAILED = 5  # a service of the deployment failed (build, start or health)
    WAIT_TIMEOUT = 6  # `up --wait-timeout` passed before every service settled
    SERVER_UNAVAILABLE = 7  # the Dockyard server cannot be reached or started
    KEY_REFUSED = 8  # the server's config key is missing or does not open its stored values
    INTERRUPTED = 130  # Ctrl-C
    INTERNAL = 70  # a bug: an unexpected exception (EX_SOFTWARE)

"""Entry point for `pulumi up`: bad config stops the run with the list of problems."""

import pulumi

import program
from core.settings import SettingsError

try:
    program.main()
except SettingsError as error:
    raise pulumi.RunError(str(error)) from None

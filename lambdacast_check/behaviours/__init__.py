"""The checks, registered in report order by importing their modules."""

from lambdacast_check.behaviours import basics, channels, errors, history, presence

__all__ = ["basics", "channels", "errors", "history", "presence"]

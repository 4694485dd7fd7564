"""Training: optimisers, losses, metrics, callbacks, the loop behind ``Model.fit``, and the
distributed strategy."""

from lstmkit.training import callbacks, losses, metrics, optimizers, schedules, state

__all__ = ["callbacks", "losses", "metrics", "optimizers", "schedules", "state"]

"""``keras.preprocessing.sequence``: ``pad_sequences``."""

from lstmkit.data.text import pad_sequences

__all__ = ["pad_sequences"]

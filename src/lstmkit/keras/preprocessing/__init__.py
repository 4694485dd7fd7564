"""``keras.preprocessing``: the older spellings still found in many examples
(``keras.preprocessing.sequence.pad_sequences``,
``keras.preprocessing.timeseries_dataset_from_array``)."""

from lstmkit.data.arrays import timeseries_dataset_from_array
from lstmkit.keras.preprocessing import sequence

__all__ = ["sequence", "timeseries_dataset_from_array"]

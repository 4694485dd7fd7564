"""``keras.utils``: ``pad_sequences``, ``to_categorical``, ``set_random_seed``,
``timeseries_dataset_from_array``, ``get_file`` (local files only: lstmkit never downloads)."""

from lstmkit.data.arrays import timeseries_dataset_from_array, to_categorical
from lstmkit.data.files import get_file
from lstmkit.data.text import pad_sequences
from lstmkit.utils import set_random_seed

__all__ = [
    "get_file", "pad_sequences", "set_random_seed", "timeseries_dataset_from_array",
    "to_categorical",
]  # fmt: skip

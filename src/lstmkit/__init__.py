"""lstmkit: LSTM networks and their gated relatives, readable, inspectable and fast."""

__version__ = "0.1.0"

"""A port of PyTorch's own RNN module tests (``test/test_nn.py`` and ``test/test_modules.py``
over ``module_db``'s RNN, GRU, LSTM, RNNCell, GRUCell and LSTMCell entries), written anew.

Every test takes the ``nn`` fixture and runs twice: on ``torch.nn`` (the control: the test
states torch's real behaviour) and on ``lstmkit.nn`` (the drop-in). Where lstmkit differs on
purpose the test says so with a ``# deviation: <name>`` comment; docs/torch_compat.md lists them.
"""

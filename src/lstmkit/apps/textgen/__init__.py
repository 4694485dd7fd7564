"""Character- and word-level LSTM language models on Shakespeare, with fast sampling.

    lstmkit textgen train [--level word] ...      # writes runs/textgen/<level>.lstmkit
    lstmkit textgen evaluate [--model FILE]
    lstmkit textgen generate --prompt "ROMEO:" --length 500 --temperature 0.8

Modules, read top to bottom: ``config`` (typed configurations), ``data`` (vocabularies and
contiguous TBPTT batches), ``model`` (the Keras-style network and its file), ``train``,
``generate`` (sampling: temperature, top-k, top-p, priming, seeds, streaming), ``fast`` (the
fused generation loop, optional int8/bf16 weights), ``cli``. Results: ``docs/textgen.md``.
"""

"""Sentiment classification of movie-review snippets: the seed program made real.

Modules, top to bottom: ``config`` (the typed config), ``data`` (splits, tokenizer), ``model``
(the seed network, its variants, the classifier that carries its tokenizer), ``train`` (with
the TF-IDF baseline), ``evaluate``, ``explain`` (gates and token-by-token prediction) and
``cli`` (``lstmkit sentiment ...``). See docs/sentiment.md for results and commands.
"""

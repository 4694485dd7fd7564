"""``make demo`` until the sentiment application takes over: build the seed model, train it a
few steps on generated data, and print one step's gates of an LSTM cell."""

from __future__ import annotations

import numpy as np
import torch

from lstmkit import engines
from lstmkit.layers import LSTM, Dense, Dropout, Embedding
from lstmkit.models import Sequential
from lstmkit.utils import set_random_seed


def main() -> None:
    set_random_seed(0)
    model = Sequential(
        [
            Embedding(input_dim=20000, output_dim=128),
            LSTM(128, return_sequences=True),
            Dropout(0.2),
            LSTM(64),
            Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x = rng.integers(1, 20000, size=(1024, 30))
    y = (x < 2000).any(axis=1).astype("float32")  # learnable: does a frequent token occur?
    model.fit(x, y, batch_size=32, epochs=2, validation_split=0.2)
    model.summary()
    records: list = []
    with engines.recording(lambda owner, direction, rec, mask: records.append((owner, rec))):
        model.predict(x[:1], verbose=0)
    owner, rec = records[0]
    print(f"\nGates of layer '{owner.name}' at step 0 (first 6 units):")
    for gate in ("i", "f", "g", "o", "c", "h"):
        print(f"  {gate}: {np.array2string(rec[gate][0, 0, :6].numpy(), precision=3)}")
    c_prev = torch.zeros(6)
    i, f, g = (rec[k][0, 0, :6] for k in ("i", "f", "g"))
    print(f"  check c = f*c_prev + i*g: {torch.allclose(rec['c'][0, 0, :6], f * c_prev + i * g)}")


if __name__ == "__main__":
    main()

"""Request and response bodies of the HTTP API (pydantic models; they are also the OpenAPI docs).

Every request model forbids unknown fields, so a misspelt option (``"temprature"``) is a 422
naming the field instead of being silently ignored, and is strict about types: each field takes
its JSON type only (``"length": "5"``, ``"stream": "yes"``, ``"top_k": true`` or ``"length": 5.0``
are 422s naming the field, what it takes and what came; a number field takes integers too).
Sizes are bounded here (text lengths, batch sizes, generation lengths) so that no single
request can ask for unbounded work; the byte size of a whole body is bounded before it is read
(:mod:`lstmkit.serve.app`).

``model`` selects a loaded model by name (``GET /v1/models`` lists them); when it is left out,
the first loaded model that serves the endpoint answers.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: Longest text accepted by the text endpoints, in characters.
MAX_TEXT_CHARS = 5_000
#: Most texts in one ``texts`` batch.
MAX_BATCH = 64
#: Longest generation, in tokens.
MAX_GENERATE_TOKENS = 2_000

ModelName = Annotated[
    str | None,
    Field(
        default=None,
        max_length=200,
        description="Name of a loaded model (see GET /v1/models); default: the first loaded "
        "model that serves this endpoint.",
    ),
]
Text = Annotated[str, Field(max_length=MAX_TEXT_CHARS)]


class _Request(BaseModel):
    # Subclasses' model_config entries are merged with these: every request is strict.
    model_config = ConfigDict(extra="forbid", strict=True)


class _OneOrMany(_Request):
    """``text`` (one) or ``texts`` (a batch), exactly one of them."""

    text: Text | None = Field(default=None, description="One input text.")
    texts: list[Text] | None = Field(
        default=None, max_length=MAX_BATCH, description=f"Up to {MAX_BATCH} input texts."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> _OneOrMany:
        if (self.text is None) == (self.texts is None):
            raise ValueError("give exactly one of 'text' (a string) or 'texts' (a list of strings)")
        return self

    def all_texts(self) -> list[str]:
        return [self.text] if self.text is not None else list(self.texts or [])


# -- sentiment ----------------------------------------------------------------------------------


class SentimentRequest(_OneOrMany):
    model: ModelName = None

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"text": "a gripping, beautifully acted film"}]},
    )


class SentimentPrediction(BaseModel):
    text: str
    label: str = Field(description="The predicted class ('positive' or 'negative' for the demo).")
    probability: float = Field(description="Probability of the predicted label.")
    p_positive: float | None = Field(
        description="Two-class models: the second class's probability (the sigmoid); null for "
        "more classes."
    )
    scores: dict[str, float] = Field(description="Every class's probability.")
    tokens: int = Field(description="Tokens the model read (after truncation to maxlen).")
    known: int = Field(description="Of those, tokens in the vocabulary.")


class SentimentResponse(BaseModel):
    model: str
    predictions: list[SentimentPrediction]


# -- gates ---------------------------------------------------------------------------------------


class GatesRequest(_Request):
    model: ModelName = None
    text: str = Field(
        min_length=1,
        max_length=2_000,
        description="The input: a review (sentiment), a prompt (textgen) or a German sentence "
        "(translate: the encoder's gates).",
    )
    gates: list[str] | None = Field(
        default=None,
        max_length=9,
        description="Which recorded values to return (i, f, g, o, c, h for an LSTM; r, z, n, h "
        "for a GRU); default all.",
    )

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"text": "not bad at all", "gates": ["f"]}]}
    )


class LayerGates(BaseModel):
    name: str = Field(description="The layer's name in the model.")
    direction: str = Field(description="'forward' or 'backward' (bidirectional layers).")
    kind: str = Field(description="'lstm', 'gru' or 'rnn'.")
    units: int
    values: dict[str, list[list[float]]] = Field(
        description="Gate or state name -> [token][unit] values."
    )
    mean: dict[str, list[float]] = Field(description="Gate or state name -> mean over units.")


class GatesResponse(BaseModel):
    model: str
    app: str
    tokens: list[str] = Field(description="What the network read, one entry per step.")
    layers: list[LayerGates]
    prediction: dict[str, Any] | None = Field(
        default=None,
        description="What the model made of the input: sentiment label, p(positive) and its "
        "token-by-token course (prefix); textgen the most likely next tokens.",
    )


# -- generation ----------------------------------------------------------------------------------


class GenerateRequest(_Request):
    model: ModelName = None
    prompt: str = Field(
        default="",
        max_length=MAX_TEXT_CHARS,
        description="Text to continue (empty: start a new speech).",
    )
    length: int = Field(default=200, ge=1, le=MAX_GENERATE_TOKENS, description="Tokens to draw.")
    temperature: float = Field(
        default=0.8, ge=0.0, le=5.0, description="Divide the logits by this (0 = greedy)."
    )
    top_k: int = Field(default=0, ge=0, le=100_000, description="Sample among the k most likely.")
    top_p: float = Field(default=1.0, gt=0.0, le=1.0, description="Nucleus sampling mass.")
    seed: int | None = Field(default=None, ge=0, le=2**63 - 1, description="Same seed, same text.")
    stream: bool = Field(
        default=True,
        description="Stream NDJSON lines {'token': …} then {'done': true, …} as tokens are drawn "
        "(application/x-ndjson); false: one JSON object when done.",
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"prompt": "ROMEO:", "length": 200, "temperature": 0.8, "top_k": 20}]
        },
    )


class GenerateResponse(BaseModel):
    model: str
    prompt: str
    text: str
    tokens: int
    finish_reason: str = Field(description="'length', or 'time_limit' when cut short.")


# -- translation ---------------------------------------------------------------------------------


class TranslateRequest(_OneOrMany):
    model: ModelName = None
    beam_size: int | None = Field(
        default=None, ge=1, le=16, description="Beam width (1 = greedy); default the model's."
    )

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"text": "Ich habe keine Zeit."}]}
    )


class Translation(BaseModel):
    source: str
    text: str
    source_pieces: list[str]
    target_pieces: list[str]
    attention: list[list[float]] | None = Field(
        description="[target piece][source piece] attention weights (rows sum to 1), or null."
    )
    score: float


class TranslateResponse(BaseModel):
    model: str
    translations: list[Translation]


# -- speech --------------------------------------------------------------------------------------


class TranscribeResponse(BaseModel):
    model: str
    text: str
    seconds: float = Field(description="Duration of the uploaded audio.")
    decoder: str


# -- service -------------------------------------------------------------------------------------


class ModelInfo(BaseModel):
    name: str
    app: str
    file: str
    endpoints: list[str]
    details: dict[str, Any] = Field(default_factory=dict)


class ModelsResponse(BaseModel):
    models: list[ModelInfo]
    unavailable: dict[str, str] = Field(
        default_factory=dict,
        description="Endpoints that no loaded model serves, with the reason.",
    )
    colormaps: dict[str, list[str]] = Field(
        default_factory=dict, description="The glass box's colour maps (anchor colours)."
    )
    gate_scales: dict[str, tuple[str, float, float]] = Field(
        default_factory=dict, description="Gate -> (colour map, vmin, vmax)."
    )


class HealthResponse(BaseModel):
    status: str
    models: dict[str, str] = Field(description="Model name -> application.")
    uptime_s: float
    pending: int = Field(description="Requests waiting for or running in the model workers.")


class ErrorResponse(BaseModel):
    detail: str
    errors: list[dict[str, Any]] | None = None

"""The request bodies: OpenAI's image generation request with the ``costroute`` extension, and ``/v1/route``.

The fields OpenAI's Images API defines and this server does not use (``quality``, ``style``,
``user``, ``background`` ...) are accepted and ignored, so that a client written for OpenAI
works unchanged; ``output_format`` may only ask for PNG, the format returned. Limits that
depend on the server's settings (prompt length, ``n``, the model and the size) are checked by
the endpoints, which name the field at fault.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

__all__ = ["CostrouteOptions", "ImageRequest", "RouteRequest"]

#: Largest seed a request may give (``torch.Generator.manual_seed`` takes < 2**63).
MAX_SEED = 2**63 - 1


class CostrouteOptions(BaseModel):
    """The ``costroute`` object of a request: its seed, its cost penalty, whether to return every candidate."""

    model_config = ConfigDict(extra="forbid")

    seed: StrictInt | None = Field(
        default=None, ge=0, le=MAX_SEED, description="Seed of the request: the same seed gives the same images."
    )
    cost_penalty: float | None = Field(
        default=None,
        ge=0,
        allow_inf_nan=False,
        description="λ for this request, instead of the server's (or its budget's); the hard guard still applies.",
    )
    candidates: StrictBool | None = Field(
        default=None,
        description="Return, per image, every candidate made for it (a cascade's other images too) with its "
        "pixels, scores and cost, in costroute.candidates.",
    )


class ImageRequest(BaseModel):
    """``POST /v1/images/generations``: OpenAI's fields, plus ``costroute``."""

    model_config = ConfigDict(extra="allow")

    prompt: StrictStr
    model: StrictStr | None = "auto"
    n: StrictInt | None = 1
    size: StrictStr | None = None
    response_format: StrictStr | None = None
    output_format: StrictStr | None = None
    costroute: CostrouteOptions | None = None


class RouteRequest(BaseModel):
    """``POST /v1/route``: prompts in (``prompts``, or one ``prompt``), decisions out."""

    model_config = ConfigDict(extra="forbid")

    prompts: list[StrictStr] | None = None
    prompt: StrictStr | None = None
    cost_penalty: float | None = Field(default=None, ge=0, allow_inf_nan=False)

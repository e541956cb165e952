"""Native generation API (`/api/v1`)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from ..llm.base import GenerationRequest
from ..schemas.errors import ERROR_RESPONSES
from ..schemas.generate import GenerateRequest, GenerateResponse, UsageInfo
from .deps import PrincipalDep, ProviderDep, SettingsDep

router = APIRouter(prefix="/api/v1", tags=["generation"], responses=ERROR_RESPONSES)


@router.post("/generate", summary="Generate text from a prompt")
async def generate(
    body: GenerateRequest, provider: ProviderDep, settings: SettingsDep, _: PrincipalDep
) -> GenerateResponse:
    completion = await provider.complete(
        GenerationRequest.from_prompt(
            body.prompt,
            max_tokens=body.max_tokens,
            temperature=body.temperature,
            model=settings.llm_model,
        )
    )
    usage = completion.usage
    return GenerateResponse(
        id=f"gen-{uuid.uuid4().hex}",
        text=completion.text,
        tokens_used=usage.completion_tokens,
        model=completion.model,
        finish_reason=completion.finish_reason,
        usage=UsageInfo(
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            total_tokens=usage.total_tokens,
        ),
    )

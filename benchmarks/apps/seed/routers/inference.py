from fastapi import APIRouter, HTTPException
from pydantic import BaseModel
from typing import Optional

router = APIRouter(prefix="/api/v1", tags=["模型推理"])

class InferenceRequest(BaseModel):
    prompt: str
    max_tokens: Optional[int] = 200
    temperature: Optional[float] = 0.7

class InferenceResponse(BaseModel):
    text: str
    tokens_used: int

@router.post("/generate")
async def generate_text(request: InferenceRequest):
    # 实际开发中替换为模型调用逻辑
    try:
        response = {
            "text": "这是模型生成的文本...",
            "tokens_used": 42
        }
        return InferenceResponse(**response)
    except Exception as e:
        raise HTTPException(status_code=500, detail=str(e))

from fastapi import FastAPI

app = FastAPI(
    title="AI模型服务",
    version="1.0.0",
    description="基于FastAPI的大模型推理服务"
)

@app.get("/")
async def root():
    return {"message": "AI服务就绪"}

from routers.inference import router as inference_router
app.include_router(inference_router)

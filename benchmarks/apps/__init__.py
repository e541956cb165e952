"""The helper servers, each run as a script or `uvicorn module:app` from this folder."""

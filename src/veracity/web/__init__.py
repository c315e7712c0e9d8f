"""The FastAPI application: REST API under /api/v1 and the server-rendered web UI."""

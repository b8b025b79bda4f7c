"""The ceiling of any server on this stack, for bench_http.py: FastAPI on uvicorn, configured as
`tigao serve` runs it, answering `POST /api/v1/tasks/{id}/complete` with `{}` and doing nothing
else: no database, no authentication, no engine. What the clients of bench_http.py get from it is
the most completions per second that a FastAPI server can answer on this machine at all.

Usage: python bench/empty_server.py PORT
"""

from __future__ import annotations

import sys

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel


class Body(BaseModel):
    data: dict[str, object] = {}


app = FastAPI()


@app.get("/api/v1/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/api/v1/tasks/{task_id}/complete")
def complete(task_id: int, body: Body) -> dict[str, object]:
    # A sync handler, like the real one: FastAPI runs it in its thread pool.
    return {}


if __name__ == "__main__":
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))
    from web.app import SWITCH_INTERVAL

    sys.setswitchinterval(SWITCH_INTERVAL)
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)

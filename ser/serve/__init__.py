"""``python -m ser.serve``: a trained model behind HTTP, WebSocket and a live page.

Needs the ``serve`` extra (``pip install 'ser[serve]'``: FastAPI, fastapi-offline, uvicorn,
python-multipart). :mod:`ser.serve.app` holds the routes, :mod:`ser.serve.streaming` one live
stream's state, :mod:`ser.serve.limits` what one client may ask for (bytes, seconds, workers,
queue, streams), :mod:`ser.serve.access` who may ask (Host, Origin, token), ``static/`` the
page; the command is :mod:`ser.commands.serve` (``ser-serve``).
"""

from api.conftest import anyio_backend, api  # noqa: F401  (the real app over the ASGI transport)

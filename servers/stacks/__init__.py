"""The server stacks' adapters (`stacks.py` names them): each maps one framework's request,
response and WebSocket API onto the stack-neutral core, and runs its server on the socket
the driver bound."""
